"""The LMS's JSON API: sign-in, the signed-in person, their progress, courses, enrolling."""
import uuid

from flask import Blueprint, abort, jsonify, request
from flask_jwt_extended import create_access_token, current_user, jwt_required, set_access_cookies

from .models import Person, ProgressRecord, Subject

bp = Blueprint("lms", __name__)


@bp.post("/login")
def login():
    """{"email", "password"}: the HTTP-only token cookie."""
    data = request.get_json(silent=True) or {}
    person = Person.objects(email=data.get("email")).first()
    if person is None or not person.check_password(data.get("password") or ""):
        return jsonify(error="invalid credentials"), 401
    response = jsonify(id=str(person.id), name=person.name)
    set_access_cookies(response, create_access_token(identity=str(person.id)))
    return response


@bp.get("/me")
@jwt_required()
def me():
    """The signed-in person."""
    return jsonify(id=str(current_user.id), name=current_user.name, role=current_user.role)


@bp.get("/me/progress")
@jwt_required()
def my_progress():
    """The signed-in person's progress, read through our own ProgressRecord document."""
    return jsonify([{"course": record.course.title, "percentage": record.completion_percentage,
                     "completed": record.is_completed}
                    for record in ProgressRecord.objects(user=current_user.id).order_by("course")])


@bp.get("/courses")
def courses():
    """Every course with its lectures' ids."""
    return jsonify([{"id": str(course.id), "title": course.title,
                     "lectures": [str(lecture.id) for lecture in course.lectures]}
                    for course in Subject.objects.order_by("title")])


@bp.post("/courses/<course_id>/enroll")
@jwt_required()
def enroll(course_id):
    """The signed-in person joins the course."""
    try:
        course_uuid = uuid.UUID(course_id)
    except ValueError:
        abort(404)
    if not Subject.objects(id=course_uuid).update_one(add_to_set__enrolled_students=current_user.id):
        abort(404)
    return jsonify(enrolled=course_id)
