"""Gunicorn configuration for benchmark runs: counts MongoDB commands per request.

The counting lives in gunicorn's hooks so that both apps run untouched. Each worker registers a
pymongo CommandListener right after the fork, before it imports the app (no --preload), so
every MongoClient the app builds reports to it. gunicorn calls `pre_request` and
`post_request` in the thread that serves the request (the worker's one thread for sync
workers, a pool thread for `--worker-class gthread`), and pymongo reports a command in the
thread that sends it: so the commands started in a thread between its `pre_request` and
`post_request` belong to that request, with any number of threads. A daemon thread writes the
worker's totals to $BENCH_STATS_DIR/<pid>.json four times a second (and once more at exit);
bench.run sums the files before and after a load run.

Each request's own CPU time is also added up (`request_cpu_us`: the serving thread's
`time.thread_time()` from `pre_request` to `post_request`, so neither other threads nor idle
time count), and per label when the request carries an `X-Bench-Label` header
(`label_cpu_us:<label>`, `label_requests:<label>`): one wrk run can then mix two kinds of
request and still give each its own CPU, measured in the same conditions.

Besides the totals per command name (`cmd:<name>`), each command is counted per name and
collection (`coll:<name>.<collection>`), and for the collections in $BENCH_REPLY_BYTES
(default: courses, lectures, users) the size of the reply is added up
(`bytes:<name>.<collection>`, `len(bson.encode(reply))`). Progress records are left out of the
byte count on purpose: re-encoding a 1,000-lecture reply would add worker CPU to both apps.
The time each command took as the driver saw it (sent to reply, queueing in the database
included) is added up per name and collection too (`wait_us:<name>.<collection>`).
"""
import json
import os
import threading
import time
from collections import Counter

import bson
from pymongo import monitoring

worker_class = "sync"
timeout = 60
# bench.run passes --workers and --bind; these are the fallbacks for a manual run.
workers = int(os.environ.get("BENCH_WORKERS", "2"))
FLUSH_INTERVAL = 0.25

_lock = threading.Lock()
_totals = {}          # method -> Counter(requests=..., commands=..., cmd:<name>=..., misses=...)
_local = threading.local()  # .method: the method of the request this thread serves
_pending = {}         # request_id -> ("<name>.<collection>", whether its reply size is counted)
_dirty = False
LABEL_HEADER = "X-BENCH-LABEL"  # gunicorn gives header names in upper case
BYTES_COLLECTIONS = frozenset(filter(None, os.environ.get(
    "BENCH_REPLY_BYTES", "courses,lectures,users").split(",")))


def _count(**increments):
    """Add to the counters of this thread's request in progress (thread-safe)."""
    global _dirty
    method = getattr(_local, "method", "outside")
    with _lock:
        _totals.setdefault(method, Counter()).update(increments)
        _dirty = True


class CommandCounter(monitoring.CommandListener):
    """Counts started commands by name, and the writes that matched nothing.

    A conditional update on `__v` that lost to another writer matches no document (`n` is 0,
    or `value` is null for findAndModify): counting those gives an app's retries without
    asking the app. Duplicate-key inserts (a lost create race) show up as write errors.
    """

    def started(self, event):
        name = event.command_name
        collection = event.command.get(name)
        collection = collection if isinstance(collection, str) else "-"
        key = f"{name}.{collection}"
        _count(commands=1, **{f"cmd:{name}": 1, f"coll:{key}": 1})
        with _lock:
            _pending[event.request_id] = (key, collection in BYTES_COLLECTIONS)

    def succeeded(self, event):
        reply = event.reply
        with _lock:
            key, measured = _pending.pop(event.request_id, (None, False))
        if key is not None:
            counts = {f"wait_us:{key}": event.duration_micros}
            if measured:
                counts.update({f"bytes:{key}": len(bson.encode(reply)), f"replies:{key}": 1})
            _count(**counts)
        if event.command_name == "update" and reply.get("n") == 0:
            _count(misses=1)
        elif event.command_name == "findAndModify" and reply.get("value") is None:
            _count(misses=1)
        if reply.get("writeErrors"):
            _count(write_errors=len(reply["writeErrors"]))

    def failed(self, event):
        with _lock:
            _pending.pop(event.request_id, None)
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
    if os.environ.get("BENCH_FIGURES_OFF"):
        keep_no_figures()


def keep_no_figures():
    """A measuring switch, for this benchmark only: the service as it would be without the
    instructor's kept figures (a write stores the record and leaves the figures alone), so
    that bench.instructor can say what keeping them costs a write."""
    from progress_service.progress import figures
    if not callable(getattr(figures, "record_written", None)):
        raise RuntimeError("progress_service.progress.figures.record_written is gone: update "
                           "bench/gunicorn_bench.py's keep_no_figures")
    figures.record_written = lambda mount, done: None


def pre_request(worker, req):
    """Attribute what this thread does next to this request's method (and label)."""
    _local.method = req.method
    _local.label = next((value for name, value in req.headers if name == LABEL_HEADER), None)
    _local.cpu = time.thread_time()
    _count(requests=1)


def post_request(worker, req, environ, resp):
    """Count the response status and the thread's CPU time since pre_request, then stop
    attributing to the request."""
    spent = round((time.thread_time() - _local.cpu) * 1e6)
    counts = {f"status:{getattr(resp, 'status_code', None)}": 1, "request_cpu_us": spent}
    if _local.label:
        counts.update({f"label_requests:{_local.label}": 1, f"label_cpu_us:{_local.label}": spent})
    _count(**counts)
    _local.method = "outside"


def worker_exit(server, worker):
    """Last totals, so a worker that exits between two flushes loses nothing."""
    _write_totals(_stats_path(worker.pid))
