"""GET /metrics: what the mount counts, in Prometheus's format, summed over gunicorn's workers.

The app counts into a CollectorRegistry of its own, never prometheus_client's global one, so
a process may make any number of apps (a test suite does). Under gunicorn,
scripts/gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client: each worker then keeps its counts in files there, and a scrape, served by
any one worker, reads every worker's files (the library's MultiProcessCollector) and adds the
database's figures, asked once by that worker.
"""
import os

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from ..progress import mount_of
from ..progress.settings import flag

KEY = "progress_metrics"
# prometheus_client's own test for its multiprocess mode (the lower-case name is its old one).
MULTIPROCESS_DIR = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")

bp = Blueprint("metrics", __name__)


def registry(app):
    """The app's registry (made on first call), or None with PROGRESS_METRICS=off."""
    if not flag(app.config.get("PROGRESS_METRICS", True)):
        return None
    if KEY not in app.extensions:
        app.extensions[KEY] = CollectorRegistry()
    return app.extensions[KEY]


def scraped(app):
    """What a scrape reads: every worker's counts and the database's figures under gunicorn,
    else this process's registry."""
    if not any(os.environ.get(name) for name in MULTIPROCESS_DIR):
        return registry(app)
    serving = CollectorRegistry()
    MultiProcessCollector(serving)
    serving.register(mount_of(app).metrics.figures)
    return serving


@bp.get("/metrics")
def metrics():
    """The text format Prometheus asks for (OpenMetrics or the classic one)."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(scraped(current_app)), headers={"Content-Type": content_type, "Cache-Control": "no-store"})
