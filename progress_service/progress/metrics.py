"""What a mount counts for operators (contract section 13), into a registry it is handed.

Nothing here touches prometheus_client's process-global registry unless a host asks for it
(`Progress(app, metrics=True)`): a mount counts into the `CollectorRegistry` it is given, and
the metric objects are made once per registry, so any number of mounts and apps in one
process (a test suite) share them instead of failing with "Duplicated timeseries". Labels are
route templates (Flask's `url_rule`, never the path), methods, statuses, command, collection
and mount names: never a user, course or lecture id.

Counts live in the worker that made them; under gunicorn prometheus_client's multiprocess
mode sums them (scripts/gunicorn.conf.py sets its directory up). The database's own figures
(the outbox, the unique index) are asked when scraped, by the worker that serves the scrape:
they are the same for every worker, so one answer is right and nothing is summed.
"""
import logging
import threading
import time
import weakref

import pymongo
from flask import current_app, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from pymongo import monitoring
from pymongo.errors import PyMongoError

from .envelope import UNAVAILABLE

log = logging.getLogger("progress_service")

# Database commands take about a millisecond; the driver gives up at 6 s (database.py).
COMMAND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 6.0)
# A scrape must answer even while the database is away: the figures it asks for are left out.
FIGURES_TIMEOUT_SECONDS = 2.0
EXPLICIT, WATCHING = "explicit", "watching"
DELIVERED, FAILED, PARKED = "delivered", "failed", "parked"
_STARTED = "_progress_metrics_started"  # flask.g: when this request reached the mount


class NoMetrics:
    """A mount that was not asked to count: every event is dropped."""

    command_listeners = ()

    def write_retried(self):
        """A conditional write lost a race and is redone."""

    def write_given_up(self):
        """A write spent its retry budget (a 409)."""

    def write_stored(self, done):
        """A write was stored (service.Write): the completions it made."""

    def statements_sent(self, outcome, count):
        """`count` statements were delivered, failed for now, or parked."""


OFF = NoMetrics()


class Metrics(NoMetrics):
    """The metric objects of one registry, shared by every mount that counts into it."""

    def __init__(self, registry):
        """Make and register the metrics (no I/O: the database figures are asked when scraped)."""
        self.requests = Counter("progress_http_requests", "API requests answered, by route template, "
                                "method and status", ["route", "method", "status"], registry=registry)
        self.request_seconds = Histogram("progress_http_request_duration_seconds", "Time to answer an API "
                                         "request, by route template and method", ["route", "method"],
                                         registry=registry)
        self.in_progress = Gauge("progress_http_requests_in_progress", "API requests being answered now",
                                 registry=registry, multiprocess_mode="livesum")
        self.command_seconds = Histogram("progress_db_command_duration_seconds", "Database commands and their "
                                         "time as the driver saw it, by command and collection",
                                         ["command", "collection"], buckets=COMMAND_BUCKETS, registry=registry)
        self.command_failures = Counter("progress_db_command_failures", "Database commands that failed, "
                                        "by command and collection", ["command", "collection"], registry=registry)
        self.retries = Counter("progress_write_retries", "Writes redone from a fresh read after another "
                               "writer changed the record first", registry=registry)
        self.conflicts = Counter("progress_write_conflicts", "Writes given up after their retry budget "
                                 "(answered 409)", registry=registry)
        self.lecture_completions = Counter("progress_lecture_completions", "Lectures that became completed, "
                                           "by how: explicit (a flag or POST complete) or watching",
                                           ["how"], registry=registry)
        self.course_completions = Counter("progress_course_completions", "Records that became completed",
                                          registry=registry)
        self.sends = Counter("progress_xapi_statements_sent", "xAPI statements the relay handed the LRS, by "
                             "outcome: delivered, failed (to be sent again) or parked", ["outcome"],
                             registry=registry)
        self.figures = DatabaseFigures()
        registry.register(self.figures)
        self.command_listeners = (CommandTimer(self),)
        # Children by label values: labels() validates its arguments on every call.
        self._children = {}

    def child(self, metric, *values):
        """The child of `metric` for these label values, made once."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children.setdefault(key, metric.labels(*values))
        return found

    def request_started(self):
        """Before a request of a counting mount: the clock starts."""
        setattr(g, _STARTED, time.perf_counter())
        self.in_progress.inc()

    def request_finished(self, response):
        """After it: counted by route template, method and status, and timed."""
        started = g.get(_STARTED)
        if started is None:
            return
        rule = request.url_rule
        route = rule.rule if rule is not None else "unrouted"
        self.child(self.requests, route, request.method, str(response.status_code)).inc()
        self.child(self.request_seconds, route, request.method).observe(time.perf_counter() - started)

    def request_ended(self):
        """Teardown, whatever happened: no longer in progress."""
        if g.pop(_STARTED, None) is not None:
            self.in_progress.dec()

    def write_retried(self):
        """A conditional write lost a race and is redone."""
        self.retries.inc()

    def write_given_up(self):
        """A write spent its retry budget (a 409)."""
        self.conflicts.inc()

    def write_stored(self, done):
        """The lectures and the course this stored write completed."""
        for lecture in done.completed_lectures:
            self.child(self.lecture_completions, WATCHING if lecture in done.watched else EXPLICIT).inc()
        if done.record.is_completed and not done.was_completed:
            self.course_completions.inc()

    def statements_sent(self, outcome, count):
        """`count` statements were delivered, failed for now, or parked."""
        if count:
            self.child(self.sends, outcome).inc(count)

    def watch(self, mount):
        """Report `mount`'s database figures too."""
        self.figures.add(mount)


class CommandTimer(monitoring.CommandListener):
    """Times the mount's database commands; given to its MongoClient when it is made."""

    def __init__(self, metrics):
        """Count into `metrics`."""
        self.metrics = metrics
        self._pending = {}  # request id -> (command, collection): the reply does not name them

    def started(self, event):
        """Remember what the command addresses."""
        name = event.command_name
        target = event.command.get(name)
        if not isinstance(target, str):  # getMore names its cursor here; aggregate 1 the database
            target = event.command.get("collection")
        self._pending[event.request_id] = (name, target if isinstance(target, str) else "")

    def succeeded(self, event):
        """Time it."""
        labels = self._pending.pop(event.request_id, None)
        if labels is not None:
            self.metrics.child(self.metrics.command_seconds, *labels).observe(event.duration_micros / 1e6)

    def failed(self, event):
        """Time it and count the failure."""
        labels = self._pending.pop(event.request_id, None)
        if labels is not None:
            self.metrics.child(self.metrics.command_seconds, *labels).observe(event.duration_micros / 1e6)
            self.metrics.child(self.metrics.command_failures, *labels).inc()


class DatabaseFigures:
    """The database's figures of every counting mount, asked when scraped (a custom collector).

    Mounts that share a registry are told apart by the `mount` label (their name); of two
    live mounts with one name, the later one is reported. Mounts are held weakly: an app that
    is gone drops out.
    """

    def __init__(self):
        """No mount yet."""
        self._mounts = []
        self._lock = threading.Lock()

    def add(self, mount):
        """Report `mount` too."""
        with self._lock:
            self._mounts = [ref for ref in self._mounts if ref() is not None] + [weakref.ref(mount)]

    def _live(self):
        """{name: mount}, the later of two with one name."""
        return {mount.name: mount for mount in (ref() for ref in self._mounts) if mount is not None}

    @staticmethod
    def _families():
        """The families, empty."""
        return {
            "ready": GaugeMetricFamily("progress_unique_index_ready", "1 while the unique (user, course) index "
                                       "is in place and writes are served, 0 while writes are refused for its "
                                       "absence", labels=["mount"]),
            "waiting": GaugeMetricFamily("progress_xapi_statements_waiting", "xAPI statements waiting to be sent",
                                         labels=["mount"]),
            "parked": GaugeMetricFamily("progress_xapi_statements_parked", "xAPI statements the LRS refused for "
                                        "good, kept until `xapi-retry`", labels=["mount"]),
            "oldest": GaugeMetricFamily("progress_xapi_oldest_waiting_age_seconds", "Age of the oldest statement "
                                        "waiting to be sent (0 when none waits)", labels=["mount"]),
        }

    def describe(self):
        """The families, so that registering asks the database nothing."""
        return list(self._families().values())

    def collect(self):
        """Ask each mount's database, within a bound; a database that does not answer is left out."""
        families = self._families()
        for name, mount in self._live().items():
            try:
                with pymongo.timeout(FIGURES_TIMEOUT_SECONDS):
                    guard = mount.database.ensure_indexes(wait=FIGURES_TIMEOUT_SECONDS)
                    families["ready"].add_metric([name], 0 if guard.problem else 1)
                    if mount.outbox is not None:
                        status = mount.outbox.status()
                        families["waiting"].add_metric([name], status["waiting"])
                        families["parked"].add_metric([name], status["parked"])
                        families["oldest"].add_metric([name], status["oldest_waiting_seconds"] or 0)
            except (PyMongoError, *UNAVAILABLE) as exc:
                log.warning("metrics: the database figures of mount %s are left out: %s", name, exc)
        return [family for family in families.values() if family.samples]


_by_registry = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def for_registry(registry):
    """The Metrics counting into `registry` (made on first use, then shared)."""
    with _lock:
        found = _by_registry.get(registry)
        if found is None:
            found = _by_registry[registry] = Metrics(registry)
        return found


def for_mount(asked):
    """What `Progress(app, metrics=...)` asks for: None/False nothing, True prometheus_client's
    default registry, or a CollectorRegistry of the host's."""
    if asked is None or asked is False:
        return OFF
    if asked is True:
        return for_registry(REGISTRY)
    if isinstance(asked, CollectorRegistry):
        return for_registry(asked)
    raise TypeError(f"metrics= takes a prometheus_client CollectorRegistry, True or None, not {asked!r}")


def _mount_metrics():
    """The Metrics of the mount this request came in through."""
    return current_app.extensions["progress"][request.blueprint].metrics


def _request_started():
    """Blueprint hook: the clock starts (counting mounts only)."""
    metrics = _mount_metrics()
    if metrics is not OFF:
        metrics.request_started()


def _request_finished(response):
    """Blueprint hook: the request counted and timed."""
    metrics = _mount_metrics()
    if metrics is not OFF:
        metrics.request_finished(response)
    return response


def _request_ended(_exc):
    """Blueprint hook: no longer in progress."""
    metrics = _mount_metrics()
    if metrics is not OFF:
        metrics.request_ended()


def instrument(blueprint):
    """Count and time the requests of `blueprint` for mounts that count (call before any other
    before_request of it, so a request it refuses early is counted too)."""
    blueprint.before_request(_request_started)
    blueprint.after_request(_request_finished)
    blueprint.teardown_request(_request_ended)
