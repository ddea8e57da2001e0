"""The host's own pages and API: home, sign-in, the signed-in user, the course list."""
from flask import Blueprint, current_app, jsonify, render_template_string, request
from flask_jwt_extended import (
    create_access_token,
    current_user,
    get_jwt,
    jwt_required,
    set_access_cookies,
    unset_jwt_cookies,
)
from werkzeug.security import check_password_hash

from .models import Course, User

bp = Blueprint("lms", __name__)

HOME = """<!doctype html>
<html><head><title>Example LMS</title></head>
<body><h1>Example LMS</h1><ul>{% for course in courses %}<li>{{ course.name }}</li>{% endfor %}</ul>
<form method="post" action="/login"><input name="email"><input name="password" type="password">
<button>Sign in</button></form></body></html>
"""


@bp.get("/")
def home():
    """The public home page."""
    return render_template_string(HOME, courses=Course.objects.only("name"))


@bp.post("/login")
def login():
    """Check the password and set the `token` cookie (a form post or a JSON body)."""
    data = request.get_json(silent=True) or request.form
    user = User.objects(email=data.get("email")).first()
    if user is None or not check_password_hash(user.password_hash, data.get("password") or ""):
        return jsonify(error="invalid credentials"), 401
    response = jsonify(user={"id": user.id, "name": user.full_name})
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
    return jsonify(id=current_user.id, name=current_user.full_name, role=current_user.role)


@bp.get("/courses")
def courses():
    """The course list, with each course's lectures."""
    return jsonify([
        {"id": course.id, "name": course.name,
         "lectures": [{"id": lesson.lesson_id, "title": lesson.title}
                      for lesson in course.course_lectures]}
        for course in Course.objects.order_by("name")
    ])
