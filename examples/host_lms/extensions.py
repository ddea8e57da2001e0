"""The LMS's extensions, unbound: create_app binds them to an app (one object, many apps)."""
from flask_jwt_extended import JWTManager
from flask_mongoengine import MongoEngine

db = MongoEngine()
jwt = JWTManager()
