"""An example host LMS signing people in with Flask-Login: a form, a session cookie, no JWT.

    LMS_SECRET_KEY=... flask --app examples.session_host run   # POST /login (a form), then /api/v1/progress/...

Course progress learns who is calling from Flask-Login through the `identity=` hook, so
signing out ends its access at once. README.md walks through it with curl;
tests/test_example_session_host.py drives it over HTTP.
"""
import mongoengine
from bson import ObjectId
from flask import Flask
from flask_login import LoginManager, current_user

from .cli import lms_cli
from .models import Member
from .views import bp

DEFAULTS = {"MONGODB_URI": "mongodb://127.0.0.1:27017/lms?directConnection=true", "MOUNT_PROGRESS": True}
login_manager = LoginManager()


@login_manager.user_loader
def load_user(user_id):
    """The member of a session (Flask-Login keeps str(member.id) in it), or None."""
    return Member.objects(id=user_id).first() if ObjectId.is_valid(user_id) else None


def create_app(config=None):
    """The LMS: settings, its database, Flask-Login, its pages, then course progress."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LMS")
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("set SECRET_KEY (LMS_SECRET_KEY in the environment): it signs the session cookie")
    mongoengine.connect(host=app.config["MONGODB_URI"], uuidRepresentation="standard")
    login_manager.init_app(app)
    app.register_blueprint(bp)
    app.cli.add_command(lms_cli)
    if app.config["MOUNT_PROGRESS"]:
        mount_progress(app)
    return app


def signed_in_user_id():
    """Who is calling, for course progress: Flask-Login's user, or None (then 401)."""
    return current_user.get_id() if current_user.is_authenticated else None


def mount_progress(app):
    """Course progress under /api/v1/progress, asking Flask-Login who is calling."""
    from progress_service.progress import Progress

    Progress(app, identity=signed_in_user_id)
