"""The LMS's JSON API: sign-in, the signed-in user, courses, enrolling."""
from flask import Blueprint, abort, jsonify, request
from flask_jwt_extended import create_access_token, current_user, jwt_required
from mongoengine.errors import ValidationError

from .models import Account, Training

bp = Blueprint("lms", __name__)


@bp.post("/login")
def login():
    """{"email", "password"} -> {"token": <RS256 JWT>}, sent back as `Authorization: Bearer`."""
    data = request.get_json(silent=True) or {}
    user = Account.objects(email=data.get("email")).first()
    if user is None or not user.check_password(data.get("password") or ""):
        return jsonify(error="invalid credentials"), 401
    return jsonify(token=create_access_token(identity=str(user.id)))


@bp.get("/me")
@jwt_required()
def me():
    """The signed-in user."""
    return jsonify(id=str(current_user.id), name=current_user.name, role=current_user.role)


@bp.get("/courses")
def courses():
    """Every course with its lectures' ids."""
    return jsonify([{"id": str(course.id), "title": course.title,
                     "lectures": [str(lecture.id) for lecture in course.lectures]}
                    for course in Training.objects.order_by("title")])


@bp.post("/courses/<course_id>/enroll")
@jwt_required()
def enroll(course_id):
    """The signed-in user joins the course."""
    try:
        updated = Training.objects(id=course_id).update_one(add_to_set__enrolled_students=current_user.id)
    except ValidationError:
        updated = 0
    if not updated:
        abort(404)
    return jsonify(enrolled=course_id)
