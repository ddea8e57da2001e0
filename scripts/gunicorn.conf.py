"""gunicorn settings for `make run` and production (`gunicorn -c scripts/gunicorn.conf.py wsgi:app`)."""
import os
import shutil
import tempfile
from pathlib import Path

# Longer than the driver's timeouts (3 s server selection, 6 s per operation), so a database
# outage answers 503 instead of getting a worker killed.
timeout = 30
graceful_timeout = 20
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# gunicorn 25.1+ opens a control socket for `gunicornc` at ONE path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl): a second instance on the
# machine takes it over, and the first to stop removes it. Off unless a path of this
# deployment's own is given in GUNICORN_CONTROL_SOCKET.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or None
control_socket_disable = control_socket is None

# One stream, stdout, one JSON object per line: gunicorn's own lines (boot, worker exits,
# errors) and the app's request lines. The app logs each request itself (request id, user
# id, duration), so gunicorn's access log stays off rather than logging every request twice.
accesslog = None
errorlog = "-"
logconfig_dict = {
    # Other libraries' warnings, in the same format.
    "root": {"level": "WARNING", "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        # create_app() sees this JSON handler and adds no second one.
        "progress_service": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
    "handlers": {"stdout": {"()": "progress_service.standalone.logs.StdoutHandler"}},
}


# /metrics sums every worker's counts through files in one directory (prometheus_client's
# multiprocess mode), which must be in the environment before anything imports
# prometheus_client: the logging set-up below imports the service's package, and --preload the
# app, both before any server hook runs, so it is chosen here, as the file is read. The
# operator's PROMETHEUS_MULTIPROC_DIR (scripts/run.sh: var/metrics), else a temporary one of
# this server's own; on a reload (SIGHUP) the variable is set, so the directory stays.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
TEMPORARY_METRICS_DIR = "PROGRESS_METRICS_DIR_IS_TEMPORARY"
if not os.environ.get(METRICS_DIR):
    os.environ[METRICS_DIR] = tempfile.mkdtemp(prefix="progress-metrics-")
    os.environ[TEMPORARY_METRICS_DIR] = "1"


def on_starting(server):
    """Start the metrics from an empty directory: an earlier run's files would be added in."""
    directory = Path(os.environ[METRICS_DIR])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A worker is gone (exited, or killed: SIGKILL included): drop its live gauges from /metrics.

    Its counters stay in the directory, so the sums over workers never go down.
    """
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory when it was a temporary one of ours."""
    if os.environ.get(TEMPORARY_METRICS_DIR):
        shutil.rmtree(os.environ[METRICS_DIR], ignore_errors=True)


def post_worker_init(worker):
    """In each worker, after the fork: start the xAPI relay (nothing without PROGRESS_XAPI_ENDPOINT).

    Only a database that answers that it takes no transactions makes the worker fail to boot
    (and gunicorn stop, saying why); a database that is unreachable does not: the worker boots,
    /readyz says 503, and the relay starts sending once the database is back.
    """
    from progress_service.progress import start_background

    start_background(worker.wsgi)


def worker_exit(server, worker):
    """A worker stopping: its relay gives the lease up, so another worker takes over at once."""
    from progress_service.progress import stop_background

    stop_background(getattr(worker, "wsgi", None))
