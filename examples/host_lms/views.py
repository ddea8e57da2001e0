"""The LMS's own pages and JSON API: home, sign-in, the signed-in user, courses, admin."""
from bson import ObjectId
from flask import Blueprint, abort, current_app, jsonify, render_template_string, request
from flask_jwt_extended import (
    create_access_token,
    current_user,
    get_jwt,
    jwt_required,
    set_access_cookies,
    unset_jwt_cookies,
)
from werkzeug.security import check_password_hash

from .models import Course, CourseProgress, User

bp = Blueprint("lms", __name__)

HOME = """<!doctype html>
<html><head><title>Example LMS</title></head>
<body><h1>Example LMS</h1><ul>{% for course in courses %}<li>{{ course.title }}</li>{% endfor %}</ul>
<form method="post" action="/login"><input name="email"><input name="password" type="password">
<button>Sign in</button></form></body></html>
"""


@bp.get("/")
def home():
    """The public home page."""
    return render_template_string(HOME, courses=Course.objects.only("title").order_by("title"))


@bp.post("/login")
def login():
    """Check the password and set the HTTP-only `token` cookie (a form post or a JSON body)."""
    data = request.get_json(silent=True) or request.form
    user = User.objects(email=data.get("email")).first()
    if user is None or not check_password_hash(user.password_hash, data.get("password") or ""):
        return jsonify(error="invalid credentials"), 401
    response = jsonify(user={"id": user.id, "name": user.name, "role": user.role})
    # The identity lands in the `userId` claim (JWT_IDENTITY_CLAIM), as the Node LMS issued it.
    set_access_cookies(response, create_access_token(identity=str(user.id)))
    return response


@bp.post("/logout")
@jwt_required()
def logout():
    """Sign out: this token is refused from now on, and the cookie is cleared."""
    current_app.extensions["lms_revoked_jtis"].add(get_jwt()["jti"])
    response = jsonify(signedOut=True)
    unset_jwt_cookies(response)
    return response


@bp.get("/me")
@jwt_required()
def me():
    """The signed-in user."""
    return jsonify(id=current_user.id, name=current_user.name, role=current_user.role)


@bp.get("/courses")
def courses():
    """The course list, with each course's lectures (dereferenced: a small catalog)."""
    return jsonify([
        {"id": course.id, "title": course.title,
         "lectures": [{"id": lecture.id, "title": lecture.title, "duration": lecture.duration}
                      for lecture in course.lectures]}
        for course in Course.objects.order_by("title")
    ])


@bp.get("/admin/courses/<course_id>/progress")
@jwt_required()
def course_progress(course_id):
    """The course's students and their progress, for its instructor or an admin."""
    if not ObjectId.is_valid(course_id):
        abort(404)
    course = Course.objects.get_or_404(id=course_id)
    if current_user.role != "admin" and course.instructor != current_user:
        abort(403)
    return jsonify(course=course.title, students=[
        {"name": record.user.name, "email": record.user.email,
         "percentage": record.completion_percentage, "completed": record.is_completed,
         "lecturesDone": [entry.lecture.title for entry in record.lecture_progress if entry.is_completed]}
        for record in CourseProgress.objects(course=course).order_by("-last_accessed")
    ])
