"""The LMS's sign-in: a JWTManager whose tokens are RS256-signed, and who is signed in."""
from bson import ObjectId
from flask import jsonify
from flask_jwt_extended import JWTManager

from .models import Account

jwt = JWTManager()


@jwt.user_lookup_loader
def load_user(header, claims):
    """The signed-in account (flask_jwt_extended.current_user), or None (then 401)."""
    identity = claims.get("sub")
    if not ObjectId.is_valid(identity):
        return None
    return Account.objects(id=identity).first()


@jwt.unauthorized_loader
def login_required(reason):
    """No token: our own JSON shape."""
    return jsonify(error="login required"), 401


@jwt.invalid_token_loader
def bad_token(reason):
    """A token we did not sign (a forged HS256 one included)."""
    return jsonify(error="invalid token"), 401
