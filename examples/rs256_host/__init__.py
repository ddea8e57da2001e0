"""An example host LMS signing its tokens with RS256: plain MongoEngine, its own JWTManager.

    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out var/rs256.pem
    openssl pkey -in var/rs256.pem -pubout -out var/rs256.pub
    LMS_PRIVATE_KEY_FILE=var/rs256.pem LMS_PUBLIC_KEY_FILE=var/rs256.pub \\
        flask --app examples.rs256_host run       # POST /login, then /api/v1/progress/...

README.md walks through it with curl; tests/test_example_rs256_host.py drives it over HTTP.
"""
from pathlib import Path

import mongoengine
from flask import Flask

from .auth import jwt
from .cli import lms_cli
from .views import bp

DEFAULTS = {
    "MONGODB_URI": "mongodb://127.0.0.1:27017/lms?directConnection=true",
    # Its sign-in: RS256 tokens in the Authorization header, the user id in `sub`.
    "JWT_ALGORITHM": "RS256",
    "JWT_TOKEN_LOCATION": ["headers"],
    "MOUNT_PROGRESS": True,
}


def create_app(config=None):
    """The LMS: settings and keys, its database, its sign-in, its routes, then course progress."""
    app = Flask(__name__)
    load_config(app, config)
    connect_database(app)
    register_auth(app)
    register_routes(app)
    if app.config["MOUNT_PROGRESS"]:
        mount_progress(app)
    return app


def load_config(app, overrides):
    """Defaults, LMS_* environment variables, `overrides`; the key pair from its files."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LMS")
    app.config.update(overrides or {})
    for name in ("PRIVATE", "PUBLIC"):
        if not app.config.get(f"JWT_{name}_KEY"):
            path = app.config.get(f"{name}_KEY_FILE")
            if not path:
                raise RuntimeError(f"set LMS_{name}_KEY_FILE (a PEM file) or JWT_{name}_KEY")
            app.config[f"JWT_{name}_KEY"] = Path(path).read_text()


def connect_database(app):
    """MongoEngine's default connection, made the plain way (no Flask extension)."""
    mongoengine.connect(host=app.config["MONGODB_URI"], uuidRepresentation="standard")


def register_auth(app):
    """Our JWTManager: RS256 with our key pair."""
    jwt.init_app(app)


def register_routes(app):
    """Sign-in, the signed-in user, courses and enrolling; `flask lms ...`."""
    app.register_blueprint(bp)
    app.cli.add_command(lms_cli)


def mount_progress(app):
    """Course progress under /api/v1/progress: our JWTManager checks its tokens, and it reads
    our `users`, `courses` and `lectures` as the original LMS kept them (the default catalog)."""
    from progress_service.progress import Progress

    Progress(app)
