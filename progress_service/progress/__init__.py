"""The progress feature: everything a host LMS mounts, as a Flask extension.

    from progress_service.progress import Progress
    Progress(app)                                  # or progress.init_app(app, url_prefix=...)
    Progress(app, identity=lambda: ...)            # the host says who is calling (Flask-Login)

Importing this package registers nothing anywhere and opens no socket; mounting it changes
nothing of the host's but the routes under its prefix and a `progress` CLI group (contract
sections 9 and 11). Each mount keeps its state in `app.extensions["progress"][name]`: its
settings, database, catalog, sign-in and outbox. It counts for Prometheus only when asked:
`Progress(app, metrics=registry)` (section 13).
"""
import logging
from dataclasses import dataclass, field

import pymongo
from mongoengine.connection import ConnectionFailure as AliasUnavailable
from pymongo.errors import PyMongoError

from . import commands, metrics as mount_metrics, privacy, settings as mount_settings, signals  # noqa: F401  (signals: re-exported for hosts)
from .catalog import CourseInfo, HostCatalog, MongoCatalog, UserInfo, bind_catalog  # noqa: F401
from .database import Database
from .exceptions import MountError
from .figures import KeptFigures
from .ids import parse_object_id
from .outbox import NoTransactions, Outbox
from .relay import Relay
from .openapi import SUFFIX as OPENAPI_SUFFIX, bp as openapi_bp
from .routes import bp
from .signin import sign_in_for

log = logging.getLogger("progress_service")

EXTENSION_KEY = "progress"
BOOT_CHECK_SECONDS = 2  # how long start-up asks the database whether it takes transactions
DEFAULT_NAME = "progress"

__all__ = ["Progress", "Mount", "MountError", "CourseInfo", "UserInfo", "MongoCatalog", "parse_object_id", "signals",
           "mount_of", "start_background", "stop_background", "NoTransactions"]


@dataclass
class Mount:
    """One mount of the extension on one app: what its requests use."""

    name: str
    prefix: str
    settings: mount_settings.Settings
    database: Database
    catalog: object
    # Who is calling: the host's identity hook or a JWT (signin.py).
    signin: object = None
    outbox: Outbox = None
    relay: Relay = None
    # What it counts for operators (metrics.OFF unless the host passed metrics=).
    metrics: mount_metrics.NoMetrics = mount_metrics.OFF
    # The instructor's figures kept per course (figures.py), and the keys this process learned.
    figures: KeptFigures = None
    # The OpenAPI document as served, by script root (built on first request).
    openapi_cache: dict = field(default_factory=dict)

    @property
    def parse_id(self):
        """The catalog's parse_id: an id from a path or an identity, as the host stores it."""
        return self.catalog.parse_id

    def export_user(self, user_id):
        """Every record of a user and their statements still waiting for the LRS, JSON-ready."""
        return privacy.export_user(self, user_id)

    def erase_user(self, user_id):
        """Delete a user's records and their waiting statements (a host's retirement code calls it)."""
        return privacy.erase_user(self, user_id)

    def erase_course(self, course_id):
        """Delete a course's records and their waiting statements."""
        return privacy.erase_course(self, course_id)


def mount_of(app, name=DEFAULT_NAME):
    """The Mount registered on `app` under blueprint name `name`."""
    return app.extensions[EXTENSION_KEY][name]


def start_background(app):
    """Start what runs beside the requests: each xAPI mount's relay, in this process.

    Call it after the fork (gunicorn's post_worker_init does, see docs/xapi.md); a mount's
    first request starts its relay too. It first asks the database, briefly, whether it takes
    transactions: a definite no raises NoTransactions (a gunicorn worker then fails to boot,
    saying why). A database that does not answer is no reason to stop (contract section 12):
    the relay starts anyway and asks again until it answers.
    """
    for mount in getattr(app, "extensions", {}).get(EXTENSION_KEY, {}).values():
        if mount.relay is not None:
            try:
                with pymongo.timeout(BOOT_CHECK_SECONDS):
                    mount.outbox.check_deployment()
            except (PyMongoError, AliasUnavailable) as exc:
                log.warning("xAPI: the database did not answer at start-up (%s); the relay starts and "
                            "checks again when it does", type(exc).__name__)
            mount.relay.ensure_started()


def stop_background(app):
    """Stop this process's relays and give their lease up (a worker shutting down)."""
    for mount in getattr(app, "extensions", {}).get(EXTENSION_KEY, {}).values():
        if mount.relay is not None:
            mount.relay.stop()


class Progress:
    """Mounts the progress blueprint; reuses the host's sign-in and MongoEngine connection."""

    def __init__(self, app=None, *, url_prefix=None, catalog=None, name=DEFAULT_NAME, identity=None, metrics=None):
        """Remember the defaults for init_app; mount at once when given an app."""
        self.url_prefix = url_prefix
        self.catalog = catalog
        self.name = name
        self.identity = identity
        self.metrics = metrics
        if app is not None:
            self.init_app(app)

    def init_app(self, app, url_prefix=None, catalog=None, name=None, identity=None, metrics=None):
        """Register the blueprint under `url_prefix` (default /api/v1/progress) as `name`.

        `identity`: a function returning the caller's user id (or None) inside a request; without
        it, the caller comes from a JWT (signin.py). `metrics`: a prometheus_client
        CollectorRegistry to count into, True for the library's default registry, None for no
        counting (the default); the host serves it itself. Raises MountError (no I/O: nothing
        connects yet) when the mount cannot work: no database, a name already mounted on this
        app, an unusable setting, or no way to authenticate anyone.
        """
        name = name or self.name
        mounts = app.extensions.get(EXTENSION_KEY, {})
        if name in mounts or name in app.blueprints or name + OPENAPI_SUFFIX in app.blueprints:
            raise MountError(f"progress is already mounted on this app as {name!r}: give the second "
                             f"mount another name (Progress(app, url_prefix=..., name=...))")
        try:
            config = mount_settings.read(app.config)
            counts = mount_metrics.for_mount(metrics if metrics is not None else self.metrics)
        except (ValueError, TypeError) as exc:
            raise MountError(str(exc)) from exc
        database = Database(config, event_listeners=counts.command_listeners)
        catalog = bind_catalog(catalog or self.catalog, database)
        prefix = url_prefix or self.url_prefix or mount_settings.DEFAULT_PREFIX
        mount = Mount(name, prefix, config, database, catalog, metrics=counts, figures=KeptFigures(database))
        if config.xapi is not None:
            # Objects only: no thread and no socket until start_background() or a request.
            mount.outbox = Outbox(config, database, counts)
            mount.relay = Relay(mount.outbox, config.xapi)
        # Last of the checks: it may make a JWTManager, which a refused mount must not leave behind.
        mount.signin = sign_in_for(app, identity or self.identity)
        if counts is not mount_metrics.OFF:
            counts.watch(mount)
        app.extensions[EXTENSION_KEY] = {**mounts, name: mount}
        app.register_blueprint(bp, url_prefix=prefix, name=name)
        # GET <prefix>/openapi.json: werkzeug prefers the static segment to <course_id>.
        app.register_blueprint(openapi_bp, url_prefix=prefix, name=name + OPENAPI_SUFFIX)
        commands.register(app)
        return mount
