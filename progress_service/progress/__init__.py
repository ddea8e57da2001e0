"""The progress feature: everything a host LMS mounts, as a Flask extension.

    from progress_service.progress import Progress
    Progress(app)                                  # or progress.init_app(app, url_prefix=...)
"""
from dataclasses import dataclass

from flask_jwt_extended import JWTManager

from .. import auth
from ..db import init_db
from . import signals  # noqa: F401  (re-exported for hosts)
from .catalog import CourseInfo, MongoCatalog, UserInfo  # noqa: F401  (the host hook's types)
from .openapi import SUFFIX as OPENAPI_SUFFIX, bp as openapi_bp
from .routes import bp

DEFAULT_PREFIX = "/api/v1/progress"
MAX_BODY_BYTES = 64 * 1024
# Read from the host's app.config; these defaults apply only where the host set nothing.
DEFAULTS = {
    "JWT_IDENTITY_CLAIM": "sub",
    "CLIENT_URL": "http://localhost:5173",
    "PROGRESS_LEGACY_FIRST_PATCH": False,
    "PROGRESS_DB_ALIAS": "default",
    "PROGRESS_MAX_BODY_BYTES": MAX_BODY_BYTES,
}
# Only used when the host has no JWTManager of its own (contract section 4).
JWT_DEFAULTS = {
    "JWT_TOKEN_LOCATION": ["cookies", "headers"],
    "JWT_ACCESS_COOKIE_NAME": "token",
    "JWT_COOKIE_CSRF_PROTECT": False,
}


@dataclass(frozen=True)
class ProgressState:
    """Per-app settings the views read (app.extensions["progress"])."""

    catalog: object
    identity_claim: str
    origins: frozenset
    legacy_first_patch: bool
    db_alias: str
    max_body: int


class Progress:
    """Mounts the progress blueprint; reuses the host's JWTManager and MongoEngine alias."""

    def __init__(self, app=None, *, url_prefix=None, catalog=None, name="progress"):
        self.url_prefix = url_prefix
        self.catalog = catalog
        self.name = name
        if app is not None:
            self.init_app(app)

    def init_app(self, app, url_prefix=None, catalog=None, name=None):
        """Register the blueprint under `url_prefix` (default /api/v1/progress)."""
        config = app.config
        for key, value in DEFAULTS.items():
            config.setdefault(key, value)
        if "flask-jwt-extended" not in app.extensions:
            self._own_jwt(app)
        alias = config["PROGRESS_DB_ALIAS"]
        init_db(config, alias)
        app.extensions["progress"] = ProgressState(
            catalog=catalog or self.catalog or MongoCatalog(),
            identity_claim=config["JWT_IDENTITY_CLAIM"],
            origins=auth.allowed_origins(config["CLIENT_URL"]),
            legacy_first_patch=bool(config["PROGRESS_LEGACY_FIRST_PATCH"]),
            db_alias=alias,
            max_body=int(config["PROGRESS_MAX_BODY_BYTES"]),
        )
        prefix = url_prefix or self.url_prefix or DEFAULT_PREFIX
        name = name or self.name
        app.register_blueprint(bp, url_prefix=prefix, name=name)
        # GET <prefix>/openapi.json: werkzeug prefers the static segment to <course_id>.
        app.register_blueprint(openapi_bp, url_prefix=prefix, name=name + OPENAPI_SUFFIX)

    @staticmethod
    def _own_jwt(app):
        """A JWTManager of our own, HS256 only, when the host has none."""
        for key, value in JWT_DEFAULTS.items():
            app.config.setdefault(key, value)
        # Pinned, whatever the config says: no alg=none, no HS/RS confusion.
        app.config["JWT_ALGORITHM"] = auth.ALGORITHM
        app.config["JWT_DECODE_ALGORITHMS"] = [auth.ALGORITHM]
        JWTManager(app)
