"""The LMS's pages: home (with the sign-in form), sign-in and out, the signed-in member, enrolling."""
from flask import Blueprint, abort, jsonify, redirect, render_template_string, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from mongoengine.errors import ValidationError

from .models import Member, Program

bp = Blueprint("lms", __name__)

HOME = """<!doctype html>
<html><head><title>Example academy</title></head>
<body><h1>Example academy</h1>
{% if current_user.is_authenticated %}<p>Signed in as {{ current_user.name }}.</p>
<form method="post" action="/logout"><button>Sign out</button></form>
{% else %}<form method="post" action="/login"><input name="email"><input name="password" type="password">
<button>Sign in</button></form>{% endif %}
<ul>{% for program in programs %}<li>{{ program.title }}</li>{% endfor %}</ul></body></html>
"""


@bp.get("/")
def home():
    """The home page: the programs, and the sign-in form or the member's name."""
    return render_template_string(HOME, programs=Program.objects.only("title").order_by("title"))


@bp.post("/login")
def login():
    """The sign-in form: a session cookie, then back home; 401 for wrong credentials."""
    member = Member.objects(email=request.form.get("email")).first()
    if member is None or not member.check_password(request.form.get("password") or ""):
        return "Wrong email or password.", 401
    login_user(member)
    return redirect(url_for("lms.home"))


@bp.post("/logout")
def logout():
    """Sign out: the session forgets the member at once."""
    logout_user()
    return redirect(url_for("lms.home"))


@bp.get("/me")
@login_required
def me():
    """The signed-in member."""
    return jsonify(id=current_user.get_id(), name=current_user.name, role=current_user.role)


@bp.post("/programs/<program_id>/enroll")
@login_required
def enroll(program_id):
    """The signed-in member joins the program."""
    try:
        updated = Program.objects(id=program_id).update_one(add_to_set__enrolled_students=current_user.id)
    except ValidationError:
        updated = 0
    if not updated:
        abort(404)
    return jsonify(enrolled=program_id)
