"""An example host LMS: its own pages, sign-in, error pages and database, with progress mounted.

    export LMS_JWT_SECRET_KEY=... LMS_MONGODB_SETTINGS='{"host": "mongodb://127.0.0.1:27017/lms"}'
    flask --app examples.host_lms lms add-user ada@example.com "Ada" --password pw
    flask --app examples.host_lms lms add-course "Flask 101" Intro Routing Testing
    flask --app examples.host_lms run     # POST /login, then /lms/api/progress/...

It is also what tests/test_mounting.py drives end to end.
"""
import mongoengine
from bson import ObjectId
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from progress_service.progress import Progress

from .auth import init_auth
from .catalog import LmsCatalog
from .errors import register_error_pages
from .models import ALIAS

DEFAULTS = {
    "MONGODB_SETTINGS": {"host": "mongodb://127.0.0.1:27017/lms"},
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Sign-in: the token in an HTTP-only cookie named `token`, the user id in `userId`,
    # as the original Node LMS issued them.
    "JWT_TOKEN_LOCATION": ["cookies"],
    "JWT_ACCESS_COOKIE_NAME": "token",
    "JWT_IDENTITY_CLAIM": "userId",
    "JWT_COOKIE_CSRF_PROTECT": False,
    "JWT_COOKIE_SECURE": False,  # the example serves plain http on localhost
    # The progress feature reads these from our config.
    "LMS_MOUNT_PROGRESS": True,
    "LMS_PROGRESS_PREFIX": "/lms/api/progress",
    "PROGRESS_DB_ALIAS": ALIAS,
    "CLIENT_URL": "http://localhost:5000",
}


class LmsJSONProvider(DefaultJSONProvider):
    """Our JSON: keys in the order we wrote them, ObjectIds as strings."""

    sort_keys = False

    @staticmethod
    def default(o):
        """ObjectIds as their hex string; everything else as Flask does it."""
        if isinstance(o, ObjectId):
            return str(o)
        return DefaultJSONProvider.default(o)


def create_app(config=None):
    """The host app: settings, database, sign-in, error pages, pages, commands, then progress."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LMS")
    app.config.update(config or {})
    if not app.config.get("JWT_SECRET_KEY"):
        raise RuntimeError("set JWT_SECRET_KEY (LMS_JWT_SECRET_KEY in the environment)")
    app.json = LmsJSONProvider(app)
    connect_database(app)
    init_auth(app)
    register_error_pages(app)
    register_views(app)
    register_commands(app)
    if app.config["LMS_MOUNT_PROGRESS"]:
        mount_progress(app)
    return app


def connect_database(app):
    """Our own MongoEngine connection, under our own alias (lazy: no socket yet)."""
    mongoengine.connect(alias=ALIAS, **{"uuidRepresentation": "standard", **app.config["MONGODB_SETTINGS"]})


def register_views(app):
    """Our pages and API."""
    from .views import bp

    app.register_blueprint(bp)


def register_commands(app):
    """`flask --app examples.host_lms lms add-user|add-course`."""
    from .cli import lms_cli

    app.cli.add_command(lms_cli)


def mount_progress(app):
    """Course progress under our prefix, on our database alias, reading our course schema."""
    Progress(app, url_prefix=app.config["LMS_PROGRESS_PREFIX"], catalog=LmsCatalog(),
             name="lms_progress")
