"""An example host LMS whose ids are UUIDs, in MongoEngine's own collection names.

    LMS_JWT_SECRET_KEY=... flask --app examples.uuid_host run   # POST /login, then /api/v1/progress/...

Its documents have `UUIDField(primary_key=True)` ids and live in `user`, `course` and
`lecture` (the names MongoEngine gives classes User, Course and Lecture). Course progress reads
them with `MongoCatalog(parse_id=uuid.UUID, ...)`, stores the same UUIDs in its records, and
the LMS's own `ProgressRecord` document finds them. README.md walks through it with curl;
tests/test_example_uuid_host.py drives it over HTTP.
"""
import uuid

import mongoengine
from flask import Flask

from .auth import jwt
from .cli import lms_cli
from .views import bp

DEFAULTS = {
    "MONGODB_URI": "mongodb://127.0.0.1:27017/lms?directConnection=true",
    # Sign-in: an HS256 JWT in an HTTP-only cookie (flask-jwt-extended's cookie name).
    "JWT_TOKEN_LOCATION": ["cookies"],
    "JWT_COOKIE_CSRF_PROTECT": False,
    "JWT_COOKIE_SECURE": False,  # the example serves plain http on localhost
    "MOUNT_PROGRESS": True,
}


def create_app(config=None):
    """The LMS: settings, its database, its sign-in, its routes, then course progress."""
    app = Flask(__name__)
    load_config(app, config)
    connect_database(app)
    register_auth(app)
    register_routes(app)
    if app.config["MOUNT_PROGRESS"]:
        mount_progress(app)
    return app


def load_config(app, overrides):
    """Defaults, LMS_* environment variables, then `overrides`; a secret is required."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LMS")
    app.config.update(overrides or {})
    if not app.config.get("JWT_SECRET_KEY"):
        raise RuntimeError("set JWT_SECRET_KEY (LMS_JWT_SECRET_KEY in the environment)")


def connect_database(app):
    """MongoEngine's default connection. UUIDs as MongoEngine stores them by default (binary
    subtype 3), said out loud: MongoEngine warns when it is left unsaid."""
    mongoengine.connect(host=app.config["MONGODB_URI"], uuidRepresentation="pythonLegacy")


def register_auth(app):
    """Our JWTManager (HS256, the cookie)."""
    jwt.init_app(app)


def register_routes(app):
    """Sign-in, the signed-in person and their progress, courses, enrolling; `flask lms ...`."""
    app.register_blueprint(bp)
    app.cli.add_command(lms_cli)


def mount_progress(app):
    """Course progress under /api/v1/progress, reading our collections and our UUID ids."""
    from progress_service.progress import MongoCatalog, Progress

    catalog = MongoCatalog(parse_id=uuid.UUID, courses="course", lectures="lecture", users="user")
    Progress(app, catalog=catalog)
