"""The LMS's own sign-in: its JWTManager's loaders, signed-out tokens, the current user."""
from bson import ObjectId
from flask import current_app, jsonify

from .extensions import jwt
from .models import User


def init_auth(app):
    """Our JWTManager, and an in-memory list of signed-out tokens (one process: an example)."""
    app.extensions["lms_revoked_jtis"] = set()
    jwt.init_app(app)


@jwt.unauthorized_loader
def login_required(reason):
    """No token: our own JSON shape, not the progress feature's."""
    return jsonify(error="login required"), 401


@jwt.invalid_token_loader
def bad_token(reason):
    """A token we cannot read."""
    return jsonify(error="invalid session"), 401


@jwt.expired_token_loader
def session_expired(header, claims):
    """A token past its exp."""
    return jsonify(error="session expired"), 401


@jwt.revoked_token_loader
def signed_out(header, claims):
    """A token of a session that was signed out."""
    return jsonify(error="signed out"), 401


@jwt.token_in_blocklist_loader
def is_signed_out(header, claims):
    """Signed-out tokens stay refused until they expire."""
    return claims["jti"] in current_app.extensions["lms_revoked_jtis"]


@jwt.user_lookup_loader
def load_user(header, claims):
    """The signed-in account (flask_jwt_extended.current_user), or None."""
    identity = claims.get(current_app.config["JWT_IDENTITY_CLAIM"])
    if not isinstance(identity, str) or not ObjectId.is_valid(identity):
        return None
    return User.objects(id=identity).exclude("password_hash").first()
