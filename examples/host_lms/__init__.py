"""An example host LMS: flask-mongoengine models, its own sign-in and pages, progress mounted.

    flask --app examples.host_lms lms add-user ada@example.com "Ada" --password pw
    flask --app examples.host_lms run      # POST /login, then /lms/api/progress/...

README.md walks through it with curl; tests/test_mounting.py drives it end to end.
"""
from bson import ObjectId
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from .auth import init_auth
from .cli import lms_cli
from .errors import register_error_pages
from .extensions import db
from .views import bp as lms_bp

DEFAULTS = {
    # flask-mongoengine connects this under MongoEngine's default alias, which is also the
    # progress feature's default PROGRESS_DB_ALIAS: both use this one connection.
    "MONGODB_SETTINGS": {"host": "mongodb://127.0.0.1:27017/lms?directConnection=true"},
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Sign-in: the token in an HTTP-only cookie named `token`, the user id in `userId`,
    # as the original Node LMS issued them.
    "JWT_TOKEN_LOCATION": ["cookies"],
    "JWT_ACCESS_COOKIE_NAME": "token",
    "JWT_IDENTITY_CLAIM": "userId",
    "JWT_COOKIE_CSRF_PROTECT": False,
    "JWT_COOKIE_SECURE": False,  # the example serves plain http on localhost
    # Our pages call the progress API from the address `flask run` serves them on.
    "CLIENT_URL": "http://127.0.0.1:5000",
    "LMS_MOUNT_PROGRESS": True,
    "LMS_PROGRESS_PREFIX": "/lms/api/progress",
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
    """The LMS: settings, its database, its sign-in, its pages and commands, then course progress."""
    app = Flask(__name__)
    load_config(app, config)
    connect_database(app)
    register_auth(app)
    register_routes(app)
    if app.config["LMS_MOUNT_PROGRESS"]:
        mount_progress(app)
    return app


def load_config(app, overrides):
    """Defaults, then LMS_* environment variables, then `overrides`; a secret is required."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LMS")
    app.config.update(overrides or {})
    if not app.config.get("JWT_SECRET_KEY"):
        raise RuntimeError("set JWT_SECRET_KEY (LMS_JWT_SECRET_KEY in the environment)")


def connect_database(app):
    """Our JSON and the database (flask-mongoengine)."""
    # The provider class, not an app.json instance: flask-mongoengine's init_app rebuilds
    # app.json from app.json_provider_class (adding Document and QuerySet support to ours).
    app.json_provider_class = LmsJSONProvider
    # flask-mongoengine-3 1.1.0 keeps the first app's config on the shared `db` (init_app
    # fills db.config only while it is empty): without this, a second app of the process
    # (a test, another factory call) would connect with the first app's MONGODB_SETTINGS.
    db.config = None
    db.init_app(app)


def register_auth(app):
    """Sign-in: our JWTManager and its loaders."""
    init_auth(app)


def register_routes(app):
    """Our error pages, pages and JSON API; `flask --app examples.host_lms lms add-user|add-course|enroll`."""
    register_error_pages(app)
    app.register_blueprint(lms_bp)
    app.cli.add_command(lms_cli)


def mount_progress(app):
    """Course progress under LMS_PROGRESS_PREFIX, reading our data through our catalog."""
    # Imported here: the LMS, its models and its commands work without the feature.
    from progress_service.progress import Progress

    from .catalog import LmsCatalog

    Progress(app, url_prefix=app.config["LMS_PROGRESS_PREFIX"], catalog=LmsCatalog(), name="lms_progress")
