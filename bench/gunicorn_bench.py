"""Gunicorn configuration for benchmark runs: counts MongoDB commands per request.

The counting lives in gunicorn's hooks so that both apps run untouched. Each worker registers a
pymongo CommandListener right after the fork, before it imports the app (no --preload), so
every MongoClient the app builds reports to it. Sync workers serve one request at a time, so
the commands started between `pre_request` and `post_request` belong to that request. A daemon
thread writes the worker's totals to $BENCH_STATS_DIR/<pid>.json four times a second (and once
more at exit); bench.run sums the files before and after a load run.
"""
import json
import os
import threading
import time
from collections import Counter

from pymongo import monitoring

worker_class = "sync"
timeout = 60
# bench.run passes --workers and --bind; these are the fallbacks for a manual run.
workers = int(os.environ.get("BENCH_WORKERS", "2"))
FLUSH_INTERVAL = 0.25

_lock = threading.Lock()
_totals = {}          # method -> Counter(requests=..., commands=..., cmd:<name>=..., misses=...)
_current = "outside"  # the method of the request in progress, or "outside"
_dirty = False


def _count(**increments):
    """Add to the counters of the request in progress (thread-safe against the flusher)."""
    global _dirty
    with _lock:
        _totals.setdefault(_current, Counter()).update(increments)
        _dirty = True


class CommandCounter(monitoring.CommandListener):
    """Counts started commands by name, and the writes that matched nothing.

    A conditional update on `__v` that lost to another writer matches no document (`n` is 0,
    or `value` is null for findAndModify): counting those gives an app's retries without
    asking the app. Duplicate-key inserts (a lost create race) show up as write errors.
    """

    def started(self, event):
        _count(commands=1, **{f"cmd:{event.command_name}": 1})

    def succeeded(self, event):
        reply = event.reply
        if event.command_name == "update" and reply.get("n") == 0:
            _count(misses=1)
        elif event.command_name == "findAndModify" and reply.get("value") is None:
            _count(misses=1)
        if reply.get("writeErrors"):
            _count(write_errors=len(reply["writeErrors"]))

    def failed(self, event):
        _count(failed=1)


def _write_totals(path):
    """Replace the stats file atomically so a reader never sees half of it."""
    global _dirty
    with _lock:
        data = {method: dict(counter) for method, counter in _totals.items()}
        _dirty = False
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def _flusher(path):
    """Write the totals whenever they changed, a few times a second."""
    while True:
        time.sleep(FLUSH_INTERVAL)
        if _dirty:
            _write_totals(path)


def _stats_path(pid):
    return os.path.join(os.environ["BENCH_STATS_DIR"], f"{pid}.json")


def post_fork(server, worker):
    """Register the listener before the worker imports the app and builds its MongoClient."""
    monitoring.register(CommandCounter())
    threading.Thread(target=_flusher, args=(_stats_path(worker.pid),), daemon=True).start()


def pre_request(worker, req):
    """Attribute what follows to this request's method."""
    global _current
    _current = req.method
    _count(requests=1)


def post_request(worker, req, environ, resp):
    """Count the response status, then stop attributing to the request."""
    global _current
    _count(**{f"status:{getattr(resp, 'status_code', None)}": 1})
    _current = "outside"


def worker_exit(server, worker):
    """Last totals, so a worker that exits between two flushes loses nothing."""
    _write_totals(_stats_path(worker.pid))
