"""The LMS's sign-in: its JWTManager, and who is signed in."""
import uuid

from flask import jsonify
from flask_jwt_extended import JWTManager

from .models import Person

jwt = JWTManager()


@jwt.user_lookup_loader
def load_person(header, claims):
    """The signed-in person (flask_jwt_extended.current_user), or None (then 401)."""
    try:
        return Person.objects(id=uuid.UUID(claims["sub"])).first()
    except ValueError:
        return None


@jwt.unauthorized_loader
def login_required(reason):
    """No token: our own JSON shape."""
    return jsonify(error="login required"), 401
