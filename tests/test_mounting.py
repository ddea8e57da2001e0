"""Progress mounted into a realistic host LMS (examples/host_lms) without changing it.

The host is written the usual way: flask-mongoengine connects it from MONGODB_SETTINGS, its
documents User, Course, Lecture and CourseProgress reference each other by class name, it
has its own sign-in (JWTManager, loaders, the `token` cookie with a `userId` claim), HTML
error pages, JSON provider, collections (`accounts`, `catalog_courses`, `catalog_lectures`)
and enrollment, handed to the extension through its catalog. Every test drives it through
its own test client. The guarantees of contract section 9 that need more than one app or a
fresh interpreter are in test_mounting_guarantees.py.
"""
import logging
from contextlib import ExitStack, contextmanager

import jwt as pyjwt
from bson import ObjectId
from flask import url_for

from examples.host_lms import LmsJSONProvider, auth as host_auth
from examples.host_lms.catalog import LmsCatalog
from examples.host_lms.extensions import jwt as host_jwt
from examples.host_lms.models import Course, CourseProgress, User
from progress_service.progress import Progress, mount_of, service, signals, store

from .hosting import (
    ALLOWED,
    EVIL,
    HOST_ALIAS,
    MOUNT_NAME,
    PASSWORD,
    Campus,
    campus,  # noqa: F401  (fixture)
    host_db,
    make_host,  # noqa: F401  (fixture)
    stored,
)
from .support import BOTH, make_token

ENVELOPE_401 = {"status": "fail", "message": "Authentication required"}
EVENTS = ("lecture_completed", "course_completed", "progress_reset")


# --- end to end ---------------------------------------------------------------------------


@BOTH
def test_sign_in_on_the_host_then_use_progress_with_its_cookie(campus):
    """Log in on the host; every progress endpoint works with the host's `token` cookie."""
    student = campus.account()
    course, lectures = campus.course(3)
    login = campus.login(student)
    assert login.headers["Set-Cookie"].startswith("token=") and "HttpOnly" in login.headers["Set-Cookie"]
    assert campus.client.get(campus.url(course.id)).json == {
        "status": "fail", "message": "No progress record found for this user and course"}

    patched = campus.patch(course.id, lectures[1], {"isCompleted": True, "watchTime": 42})
    assert patched.status_code == 200
    data = patched.json["data"]
    assert data["user"] == {"_id": str(student.id), "name": "Ada Learner", "email": student.email, "avatar": None}
    assert data["course"] == {"_id": str(course.id), "title": "Flask 101", "thumbnail": None}
    assert [(e["lecture"], e["isCompleted"], e["watchTime"]) for e in data["lectureProgress"]] == [
        (str(lectures[0]), False, 0), (str(lectures[1]), True, 42), (str(lectures[2]), False, 0)]
    assert data["completionPercentage"] == 33 and data["isCompleted"] is False
    assert campus.client.get(campus.url(course.id)).json == patched.json

    completed = campus.client.post(campus.url(course.id, "complete"))
    assert completed.json["message"] == "Course marked as completed"
    assert completed.json["data"]["completionPercentage"] == 100
    dashboard = campus.client.get(campus.prefix).json["data"]
    assert [(item["course"]["title"], item["completionPercentage"]) for item in dashboard["items"]] == [("Flask 101", 100)]
    reset = campus.client.post(campus.url(course.id, "reset"))
    assert reset.json["message"] == "Course progress has been reset"

    record = stored(student.id, course.id)
    assert record["completionPercentage"] == 0 and record["__v"] == 2
    assert [entry["lecture"] for entry in record["lectureProgress"]] == lectures
    # The host's schema only: the original LMS's collections were never created or read.
    assert set(host_db().list_collection_names()) == {
        "accounts", "catalog_courses", "catalog_lectures", "courseprogresses"}
    for response in (patched, completed, reset):
        assert student.password_hash not in response.get_data(as_text=True)


@BOTH
def test_the_hosts_own_enrollment_decides_who_may_use_a_course(campus):
    """Not among the course's students: 403 and no record; enrolled by the host: served."""
    teacher = campus.account(name="Grace Teacher", role="instructor")
    admin = campus.account(name="Root", role="admin")
    outsider = campus.account(name="Otto Outsider", enrolled=False)
    course, lectures = campus.course(2, instructor=teacher)
    campus.login(outsider)
    refused = campus.patch(course.id, lectures[0], {"isCompleted": True})
    assert (refused.status_code, refused.json) == (403, {"status": "fail", "message": "Not enrolled in this course"})
    assert stored(outsider.id, course.id) is None

    Course.objects(id=course.id).update_one(add_to_set__students=outsider)
    assert campus.patch(course.id, lectures[0], {"isCompleted": True}).json["data"]["completionPercentage"] == 50
    Course.objects(id=course.id).update_one(pull__students=outsider)  # the student drops the course
    assert campus.client.get(campus.url(course.id)).status_code == 403
    assert campus.client.get(campus.prefix).json["data"]["items"] == []

    for user in (teacher, admin):  # neither is a student of the course, both may use it
        client = campus.app.test_client()
        campus.login(user, client=client)
        assert campus.patch(course.id, lectures[1], {"isCompleted": True}, client=client).status_code == 200


def test_the_hosts_cookie_claim_and_token_locations_decide(campus):
    """The host's `userId` claim and cookie-only location apply on our routes too."""
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    token = campus.client.get_cookie("token").value
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["userId"] == str(student.id) and "sub" not in claims
    assert campus.patch(course.id, lectures[0], {"isCompleted": True}).status_code == 200

    stranger = campus.app.test_client()
    # This host reads cookies only: a Bearer header is not a token here.
    assert stranger.get(campus.url(course.id), headers={"Authorization": f"Bearer {token}"}).json == ENVELOPE_401
    # A token naming the user in `sub` is not one of this host's tokens: the host's own user
    # lookup (its loader, which we run through) already refuses it.
    stranger.set_cookie("token", make_token(student.id))
    response = stranger.get(campus.url(course.id))
    assert (response.status_code, response.json) == (401, {"status": "fail", "message": "Invalid token"})
    assert stranger.get("/me").json == {"error": "invalid session"}


def test_our_routes_answer_our_401_while_the_host_keeps_its_loaders(campus):
    """No second JWTManager, no loader replaced; each refusal in each app's own shape."""
    manager = campus.app.extensions["flask-jwt-extended"]
    assert manager is host_jwt
    assert manager._unauthorized_callback is host_auth.login_required
    assert manager._invalid_token_callback is host_auth.bad_token
    assert manager._expired_token_callback is host_auth.session_expired
    assert manager._revoked_token_callback is host_auth.signed_out
    assert manager._token_in_blocklist_callback is host_auth.is_signed_out
    assert manager._user_lookup_callback is host_auth.load_user
    student = campus.account()
    course, _ = campus.course(1)
    campus.login(student)
    revoked = campus.client.get_cookie("token").value
    assert campus.client.post("/logout").status_code == 200

    cases = {
        None: ({"error": "login required"}, "Authentication required"),
        make_token(student.id, claim="userId", expires_in=-60): ({"error": "session expired"}, "Token has expired"),
        make_token(student.id, claim="userId", secret="another-secret-of-at-least-32-bytes!!"):
            ({"error": "invalid session"}, "Invalid token"),
        revoked: ({"error": "signed out"}, "Invalid token"),
    }
    for token, (host_body, our_message) in cases.items():
        client = campus.app.test_client()
        if token:
            client.set_cookie("token", token)
        host = client.get("/me")
        assert (host.status_code, host.json) == (401, host_body)
        ours = client.get(campus.url(course.id))
        assert (ours.status_code, ours.json) == (401, {"status": "fail", "message": our_message})
        assert ours.mimetype == "application/json"


def test_a_host_with_csrf_protection_keeps_it_on_our_routes(make_host):
    """flask-jwt-extended's double submit, when the host has it on, guards our writes too."""
    campus = Campus(make_host(JWT_COOKIE_CSRF_PROTECT=True))
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    csrf = campus.client.get_cookie("csrf_access_token").value
    refused = campus.patch(course.id, lectures[0], {"isCompleted": True})
    assert (refused.status_code, refused.json) == (401, {"status": "fail", "message": "Invalid token"})
    assert stored(student.id, course.id) is None
    accepted = campus.patch(course.id, lectures[0], {"isCompleted": True}, headers={"X-CSRF-TOKEN": csrf})
    assert accepted.status_code == 200 and accepted.json["data"]["completionPercentage"] == 50


# --- no side effects on the host ----------------------------------------------------------


def boom():
    """A host route with a bug, to see the host's own 500 page."""
    raise RuntimeError("host bug")


def host_requests(app, token):
    """The host's own routes and error pages, recorded as (status, headers, body) each."""
    account = User.objects.first()
    course = Course.objects.first()
    calls = [
        ("GET", "/", {}),
        ("HEAD", "/", {}),
        ("OPTIONS", "/", {"headers": {"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}}),
        ("GET", "/courses", {"headers": {"Origin": ALLOWED}}),
        ("GET", "/me", {}),
        ("GET", "/me", {"cookie": token}),
        ("GET", "/me", {"cookie": "not-a-jwt"}),
        ("POST", "/login", {"json": {"email": account.email, "password": "wrong"}}),
        ("POST", "/login", {"json": {"email": account.email, "password": PASSWORD}, "headers": {"Origin": EVIL}}),
        ("POST", "/login", {"data": b"x" * (1024 * 1024 + 1), "content_type": "application/json"}),
        ("GET", "/login", {}),
        ("DELETE", "/courses", {}),
        ("GET", "/nope", {}),
        ("GET", "/api/v1/progress/6b0000000000000000000001", {}),
        ("GET", "/lms/api/progressive", {}),
        ("PATCH", "/lms/api", {}),
        ("GET", "/boom", {}),
        ("GET", f"/admin/courses/{course.id}/progress", {"cookie": token}),
    ]
    recorded = []
    for method, path, kwargs in calls:
        client = app.test_client()  # a fresh cookie jar for each call
        if "cookie" in kwargs:
            client.set_cookie("token", kwargs.pop("cookie"))
        response = client.open(path, method=method, **kwargs)
        headers = [(key, _without_token(value) if key == "Set-Cookie" else value)
                   for key, value in response.headers]
        recorded.append((method, path, response.status, headers, response.get_data()))
    return recorded


def _without_token(cookie):
    """A Set-Cookie with the JWT itself blanked (each sign-in has a new jti and iat)."""
    name, _, rest = cookie.partition("=")
    return f"{name}=<jwt>;{rest.partition(';')[2]}"


def app_wide(app):
    """What a mount could change app-wide: hooks, handlers, JSON, logging, host rules."""
    hooks = {}
    for kind in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs",
                 "url_value_preprocessors", "url_default_functions", "template_context_processors"):
        hooks[kind] = [getattr(f, "__qualname__", repr(f)) for f in getattr(app, kind).get(None, [])]
    handlers = {code: {cls.__name__: fn.__qualname__ for cls, fn in spec.items()}
                for code, spec in app.error_handler_spec[None].items()}
    prefix = app.config["LMS_PROGRESS_PREFIX"]
    rules = sorted((rule.rule, sorted(rule.methods), rule.endpoint) for rule in app.url_map.iter_rules()
                   if not rule.rule.startswith(prefix))
    # flask-mongoengine makes a provider class per app, on top of the host's: compare its bases.
    provider = type(app.json)
    return {"hooks": hooks, "handlers": handlers, "rules": rules,
            "json": (provider.__qualname__, provider.__mro__[1:], provider.sort_keys),
            "response": app.response_class, "logger": (app.logger.level, list(app.logger.handlers)),
            "root_logger": (logging.getLogger().level, list(logging.getLogger().handlers)),
            "jwt": app.extensions["flask-jwt-extended"], "mongoengine": list(app.extensions["mongoengine"])}


@BOTH
def test_the_hosts_own_responses_are_byte_for_byte_the_same_with_progress_mounted(make_host):
    """Routes, 401s, 403, 404, 405, 413 and 500 pages of the host: identical with and without us,
    mounted after its JWTManager (as it does) or before it."""
    plain = make_host(LMS_MOUNT_PROGRESS=False)
    mounted = make_host()
    first = make_host(order="before")
    for app in (plain, mounted, first):
        app.add_url_rule("/boom", "boom", boom)
    campus = Campus(mounted)
    student = campus.account()
    campus.course(2)
    token = make_token(student.id, claim="userId")

    without = host_requests(plain, token)
    with_progress = host_requests(mounted, token)
    assert with_progress == without
    assert host_requests(first, token) == without
    assert dict(first.config) == dict(mounted.config)
    statuses = [status for _, _, status, _, _ in without]
    assert statuses == ["200 OK", "200 OK", "200 OK", "200 OK", "401 UNAUTHORIZED", "200 OK",
                        "401 UNAUTHORIZED", "401 UNAUTHORIZED", "200 OK", "413 REQUEST ENTITY TOO LARGE",
                        "405 METHOD NOT ALLOWED", "405 METHOD NOT ALLOWED", "404 NOT FOUND", "404 NOT FOUND",
                        "404 NOT FOUND", "404 NOT FOUND", "500 INTERNAL SERVER ERROR", "403 FORBIDDEN"]
    assert b"<h1>Not Found</h1>" in without[12][4]

    assert app_wide(mounted) == app_wide(plain)
    assert isinstance(mounted.json, LmsJSONProvider)
    assert set(mounted.extensions) - set(plain.extensions) == {"progress"}
    # The extension wrote nothing into the host's config (the switch itself differs).
    assert {**mounted.config, "LMS_MOUNT_PROGRESS": None} == {**plain.config, "LMS_MOUNT_PROGRESS": None}


def test_errors_under_our_prefix_are_our_envelope_despite_the_hosts_pages(campus, monkeypatch):
    """The host's @app.errorhandler(404/405/413/500) pages never answer under our prefix."""
    campus.app.add_url_rule("/boom", "boom", boom)
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    client = campus.client

    def check(response, status, message):
        """Our envelope, as JSON, not cached."""
        assert (response.status_code, response.json) == (status, {
            "status": "error" if status >= 500 else "fail", "message": message})
        assert response.mimetype == "application/json"
        assert response.headers["Cache-Control"] == "no-store"

    check(client.get(campus.prefix + "/a/b/c"), 404, "Not found")
    wrong_method = client.delete(campus.url(course.id))
    check(wrong_method, 405, "Method not allowed")
    assert "GET" in wrong_method.allow and "DELETE" not in wrong_method.allow
    put = client.put(campus.url(course.id, "lectures", lectures[0]))
    check(put, 405, "Method not allowed")
    assert "PATCH" in put.allow
    check(campus.patch(course.id, lectures[0], {"isCompleted": True, "pad": "x" * 70_000}), 413,
          "Request body too large")

    def broken(*args, **kwargs):
        """A bug in the service."""
        raise RuntimeError("bug in progress")

    monkeypatch.setattr(service, "get_progress", broken)
    check(client.get(campus.url(course.id)), 500, "Internal server error")
    host_page = client.get("/boom")
    assert host_page.status_code == 500 and host_page.mimetype == "text/html"
    assert "Cache-Control" not in host_page.headers


def test_cors_and_the_origin_check_apply_to_our_routes_only(campus):
    """A foreign origin is refused on our cookie writes; the host's routes are the host's."""
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    refused = campus.patch(course.id, lectures[0], {"isCompleted": True}, headers={"Origin": EVIL})
    assert (refused.status_code, refused.json) == (403, {"status": "fail", "message": "Origin not allowed"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    allowed = campus.patch(course.id, lectures[0], {"isCompleted": True}, headers={"Origin": ALLOWED})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    preflight = campus.client.options(campus.url(course.id, "lectures", lectures[0]), headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "PATCH"})
    assert preflight.status_code == 200 and "PATCH" in preflight.headers["Access-Control-Allow-Methods"]

    host_login = campus.client.post("/login", json={"email": student.email, "password": PASSWORD},
                                    headers={"Origin": EVIL})
    assert host_login.status_code == 200
    host_list = campus.client.get("/courses", headers={"Origin": ALLOWED})
    for response in (host_login, host_list):
        assert not any(key.startswith("Access-Control") for key in response.headers.keys())
        assert "Vary" not in response.headers


# --- mount options --------------------------------------------------------------------------


def test_the_prefix_and_blueprint_name_are_the_hosts(campus):
    """Under the host's prefix and name; the default prefix is just another host 404."""
    course, lectures = campus.course(1)
    with campus.app.test_request_context():
        assert url_for(f"{MOUNT_NAME}.get_progress", course_id=str(course.id)) == f"/lms/api/progress/{course.id}"
        assert url_for(f"{MOUNT_NAME}.mark_lecture", course_id=str(course.id), lecture_id=str(lectures[0])) == \
            f"/lms/api/progress/{course.id}/lectures/{lectures[0]}"
    default = campus.client.get(f"/api/v1/progress/{course.id}")
    assert default.status_code == 404 and default.mimetype == "text/html"
    document = campus.client.get("/lms/api/progress/openapi.json").json
    assert "/lms/api/progress/{courseId}/lectures/{lectureId}" in document["paths"]


def test_init_app_in_the_factory_style(make_host):
    """Progress(catalog=...) created once, then init_app(app, url_prefix=..., name=...)."""
    app = make_host(LMS_MOUNT_PROGRESS=False)
    progress = Progress(catalog=LmsCatalog())
    mount = progress.init_app(app, url_prefix="/learning/progress", name="learning")
    assert mount is mount_of(app, "learning")
    campus = Campus(app, prefix="/learning/progress")
    student = campus.account()
    course, lectures = campus.course(4)
    campus.login(student)
    response = campus.patch(course.id, lectures[3], {"isCompleted": True})
    assert response.status_code == 200 and response.json["data"]["completionPercentage"] == 25
    assert "learning.get_progress" in app.view_functions


@BOTH
def test_progress_uses_the_hosts_flask_mongoengine_connection(make_host):
    """The alias flask-mongoengine registered is PROGRESS_DB_ALIAS's default: MONGODB_URI is unused."""
    # Nothing listens there: any use of it would fail the requests below.
    campus = Campus(make_host(MONGODB_URI="mongodb://127.0.0.1:9/unused?serverSelectionTimeoutMS=200"))
    mount = mount_of(campus.app, MOUNT_NAME)
    assert mount.database.alias == HOST_ALIAS and mount.database.uses_host_connection
    host_connection = campus.app.extensions["mongoengine"]
    [(_, state)] = host_connection.items()
    assert list(state["conn"]) == [HOST_ALIAS]
    with campus.app.app_context():
        assert mount.database.db() is host_db()
        assert mount.database.db().client is state["conn"][HOST_ALIAS]
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    assert campus.patch(course.id, lectures[0], {"isCompleted": True}).status_code == 200
    assert stored(student.id, course.id)["completionPercentage"] == 50


@BOTH
def test_a_host_connection_without_tz_aware_is_used_as_it_is(campus):
    """The host connected without tz_aware: stored times come back naive, and still work."""
    assert not host_db().client.codec_options.tz_aware
    student = campus.account()
    course, lectures = campus.course(3)
    campus.login(student)
    campus.patch(course.id, lectures[0], {"isCompleted": False, "watchTime": 10})
    # Now one watched lecture read back from storage and one watched in this request.
    response = campus.patch(course.id, lectures[1], {"isCompleted": False, "watchTime": 20})
    assert response.status_code == 200
    assert response.json["data"]["resume"] == {"lecture": str(lectures[1]), "watchTime": 20}
    assert campus.client.get(campus.url(course.id)).json == response.json


def test_the_example_hosts_commands_make_a_usable_account_and_course(campus):
    """`flask lms add-user`, `add-course` and `enroll`, then sign in and use progress."""
    runner = campus.app.test_cli_runner()
    added = runner.invoke(args=["lms", "add-user", "bo@lms.example", "Bo", "--password", PASSWORD])
    assert added.exit_code == 0, added.output
    teacher = runner.invoke(args=["lms", "add-user", "ida@lms.example", "Ida", "--password", PASSWORD,
                                  "--role", "instructor"])
    assert teacher.exit_code == 0, teacher.output
    made = runner.invoke(args=["lms", "add-course", "Databases", "Tables", "Indexes", "--duration", "100",
                               "--instructor", "ida@lms.example"])
    assert made.exit_code == 0, made.output
    course_id, *lecture_ids = made.output.split()
    course = Course.objects.get(id=course_id)
    assert [str(lecture.id) for lecture in course.lectures] == lecture_ids
    assert [lecture.course for lecture in course.lectures] == [course, course]
    assert course.instructor.name == "Ida" and course.students == []
    user = User.objects.get(email="bo@lms.example")
    assert str(user.id) == added.output.strip()
    campus.login(user)
    assert campus.patch(course_id, lecture_ids[1], {"isCompleted": True}).status_code == 403

    enrolled = runner.invoke(args=["lms", "enroll", "bo@lms.example", course_id])
    assert (enrolled.exit_code, enrolled.output) == (0, "Bo is enrolled in Databases\n")
    response = campus.patch(course_id, lecture_ids[1], {"watchTime": 95})  # 95% of 100 s
    assert response.json["data"]["completionPercentage"] == 50
    unknown = runner.invoke(args=["lms", "enroll", "nobody@lms.example", course_id])
    assert unknown.exit_code == 2 and "no account with the email nobody@lms.example" in unknown.output


# --- the catalog hook -----------------------------------------------------------------------


@BOTH
def test_the_hosts_schema_through_its_catalog(campus):
    """Courses, lectures and accounts in the host's own collections: all served from them."""
    teacher = campus.account(name="Grace Teacher", role="instructor")
    student = campus.account()
    course, lectures = campus.course(3, instructor=teacher, durations=[100, 100, None])
    other, other_lectures = campus.course(1, title="Other")
    campus.login(student)
    assert campus.patch(course.id, lectures[0], {"isCompleted": True}).status_code == 200

    foreign = campus.patch(course.id, other_lectures[0], {"isCompleted": True})
    assert (foreign.status_code, foreign.json["errors"]) == (400, {"lectureId": ["Lecture does not belong to this course"]})
    missing = campus.client.get(campus.url(ObjectId()))
    assert (missing.status_code, missing.json["message"]) == (404, "Course not found")
    # Watching 90% of a lecture with a duration completes it; one without a duration never does.
    assert campus.patch(course.id, lectures[1], {"watchTime": 90}).json["data"]["completionPercentage"] == 67
    assert campus.patch(course.id, lectures[2], {"watchTime": 9999}).json["data"]["completionPercentage"] == 67

    # The host edits its course: the first lecture goes, a new one comes first.
    intro = campus.add_lecture(course, "Intro", position=0)
    course.lectures = [lecture for lecture in course.lectures if lecture.id != lectures[0]]
    course.save()
    current = [intro, lectures[1], lectures[2]]
    data = campus.client.get(campus.url(course.id)).json["data"]
    assert [entry["lecture"] for entry in data["lectureProgress"]] == [str(x) for x in current]
    assert data["completionPercentage"] == 33

    instructor = campus.app.test_client()
    campus.login(teacher, client=instructor)
    summary = instructor.get(campus.url(course.id, "summary"))
    assert summary.status_code == 200
    assert [(row["lecture"], row["title"], row["completed"]) for row in summary.json["data"]["lectures"]] == [
        (str(current[0]), "Intro", 0), (str(current[1]), "Lesson 2", 1), (str(current[2]), "Lesson 3", 0)]
    students = instructor.get(campus.url(course.id, "students")).json["data"]["items"]
    assert [row["user"] for row in students] == [{"_id": str(student.id), "name": "Ada Learner", "email": student.email}]
    assert campus.client.get(campus.url(course.id, "summary")).status_code == 403
    assert not {"courses", "lectures", "users"} & set(host_db().list_collection_names())


@BOTH
def test_the_hosts_admin_page_reads_our_records_through_its_course_progress(campus):
    """The host's CourseProgress (ReferenceField("User"), ("Course"), ("Lecture")) loads our records."""
    admin = campus.account(name="Root", role="admin")
    student = campus.account()
    course, lectures = campus.course(3)
    campus.login(student)
    campus.patch(course.id, lectures[1], {"isCompleted": True})

    record = CourseProgress.objects.get(user=student)
    assert (record.user, record.course) == (student, course)
    assert record.user.name == "Ada Learner" and record.course.title == "Flask 101"
    assert [(entry.lecture.title, entry.is_completed) for entry in record.lecture_progress] == [
        ("Lesson 1", False), ("Lesson 2", True), ("Lesson 3", False)]
    page = campus.app.test_client()
    campus.login(admin, client=page)
    assert page.get(f"/admin/courses/{course.id}/progress").json == {"course": "Flask 101", "students": [
        {"name": "Ada Learner", "email": student.email, "percentage": 33, "completed": False,
         "lecturesDone": ["Lesson 2"]}]}


# --- signals --------------------------------------------------------------------------------


@contextmanager
def recording():
    """Every progress signal sent meanwhile: (name, lecture_id or None), plus the payloads."""
    events, payloads = [], []

    def receiver_for(name):
        """A receiver recording `name` events."""

        def receive(sender, **kwargs):
            """Record the event and what was stored when it was sent."""
            record = stored(kwargs["user_id"], kwargs["course_id"])
            payloads.append({"name": name, "sender": sender, "stored_version": record["__v"], **kwargs})
            events.append((name, kwargs.get("lecture_id")))
        return receive

    with ExitStack() as stack:
        for name in EVENTS:
            stack.enter_context(getattr(signals, name).connected_to(receiver_for(name)))
        yield events, payloads


def events_of(action):
    """The (name, lecture_id) events that `action()` sent."""
    with recording() as (events, _):
        action()
    return events


@BOTH
def test_signals_fire_once_per_real_change(campus):
    """Each event once, after the change is stored; repeats and no-ops fire nothing."""
    student = campus.account()
    course, (first, second) = campus.course(2)
    campus.login(student)

    with recording() as (events, payloads):
        assert campus.patch(course.id, first, {"isCompleted": True}).status_code == 200
    assert events == [("lecture_completed", first)]
    payload = payloads[0]
    assert payload["sender"] is None
    assert (payload["user_id"], payload["course_id"]) == (student.id, course.id)
    assert payload["progress"].completion_percentage == 50
    assert payload["stored_version"] == payload["progress"].version == 0  # stored before it was sent

    def patch(lecture, done, **extra):
        """A PATCH of one lecture, to run later."""
        return lambda: campus.patch(course.id, lecture, {"isCompleted": done, **extra})

    assert events_of(patch(first, True, watchTime=30)) == []
    assert events_of(patch(second, False)) == []
    with recording() as (events, payloads):
        patch(second, True)()
    assert events == [("lecture_completed", second), ("course_completed", None)]
    assert payloads[1]["progress"].is_completed is True
    assert events_of(patch(second, True)) == []
    assert events_of(lambda: campus.client.post(campus.url(course.id, "complete"))) == []
    assert events_of(patch(second, False)) == []
    assert events_of(patch(second, True)) == [("lecture_completed", second), ("course_completed", None)]

    assert events_of(lambda: campus.client.post(campus.url(course.id, "reset"))) == [("progress_reset", None)]
    assert events_of(lambda: campus.client.post(campus.url(course.id, "reset"))) == []
    assert events_of(lambda: campus.client.post(campus.url(course.id, "complete"))) == [
        ("lecture_completed", first), ("lecture_completed", second), ("course_completed", None)]


def test_a_completed_course_that_gained_a_lecture_completes_again_once(campus):
    """The host adds a lecture: completing it completes the course again, one event."""
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    for lecture in lectures:
        campus.patch(course.id, lecture, {"isCompleted": True})
    bonus = campus.add_lecture(course, "Bonus")
    assert campus.client.get(campus.url(course.id)).json["data"]["isCompleted"] is False
    assert events_of(lambda: campus.patch(course.id, bonus, {"isCompleted": True})) == [
        ("lecture_completed", bonus), ("course_completed", None)]


def test_a_patch_that_changes_nothing_fires_nothing(campus):
    """Setting a completed lecture to completed again is stored (lastWatched) but no event."""
    student = campus.account()
    course, lectures = campus.course(1)
    campus.login(student)
    campus.patch(course.id, lectures[0], {"isCompleted": True})
    with recording() as (events, _):
        again = campus.patch(course.id, lectures[0], {"isCompleted": True})
    assert again.status_code == 200 and again.json["data"]["isCompleted"] is True
    assert events == []
    assert stored(student.id, course.id)["__v"] == 1


def test_a_failing_receiver_of_the_host_is_logged_and_the_write_still_answers(campus, caplog):
    """The change is stored before the events: a receiver's bug is the host's log line, not a 500."""
    student = campus.account()
    course, lectures = campus.course(1)
    campus.login(student)

    def broken(sender, **kwargs):
        """A host receiver with a bug."""
        raise RuntimeError("mailer down")

    with signals.course_completed.connected_to(broken), caplog.at_level(logging.ERROR, "progress_service"):
        response = campus.patch(course.id, lectures[0], {"isCompleted": True})
    assert response.status_code == 200 and response.json["data"]["isCompleted"] is True
    assert stored(student.id, course.id)["isCompleted"] is True
    assert any("course-completed" in record.getMessage() and record.exc_info for record in caplog.records)


def lose_first_race(monkeypatch, rival, when):
    """Make the first stored write that matches `when(record)` lose to `rival()`, a concurrent writer."""
    original = store.write
    raced = []

    def write(records, record, *args, **kwargs):
        """Let the rival write first, once, then write as usual (and lose the condition)."""
        if not raced and when(record):
            raced.append(True)
            rival()
        return original(records, record, *args, **kwargs)

    monkeypatch.setattr(store, "write", write)
    return raced


def rival_completes(campus, student, course, lecture):
    """Another worker's request completing `lecture`, straight through the service."""
    mount = mount_of(campus.app, MOUNT_NAME)
    return lambda: service.mark_lecture(mount, student.id, course.id, service.LectureChange(lecture, True, None))


@BOTH
def test_a_write_retried_after_losing_a_race_fires_once(campus, monkeypatch):
    """Two requests complete the same lecture at once: one lecture_completed, not two."""
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    campus.patch(course.id, lectures[0], {"isCompleted": False})

    with recording() as (events, _):
        raced = lose_first_race(monkeypatch, rival_completes(campus, student, course, lectures[1]),
                                lambda record: not record.is_new)
        response = campus.patch(course.id, lectures[1], {"isCompleted": True})
    assert raced and response.status_code == 200
    assert response.json["data"]["lectureProgress"][1]["isCompleted"] is True
    assert events == [("lecture_completed", lectures[1])]
    assert stored(student.id, course.id)["__v"] == 2  # the rival's write, then ours redone


@BOTH
def test_a_first_write_retried_after_a_concurrent_create_fires_once_each(campus, monkeypatch):
    """Two first PATCHes race to create the record: each lecture once, the course once."""
    student = campus.account()
    course, (first, second) = campus.course(2)
    campus.login(student)

    with recording() as (events, _):
        raced = lose_first_race(monkeypatch, rival_completes(campus, student, course, first),
                                lambda record: record.is_new)
        response = campus.patch(course.id, second, {"isCompleted": True})
    assert raced and response.json["data"]["completionPercentage"] == 100
    assert events == [("lecture_completed", first), ("lecture_completed", second), ("course_completed", None)]
    assert host_db().courseprogresses.count_documents({"user": student.id}) == 1
