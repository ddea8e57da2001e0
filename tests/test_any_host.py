"""Contract section 11, rule by rule: who is calling, refusals at mount, own-origin writes, any ids.

The example hosts (tests/test_example_*.py) show each host style end to end; here each rule is
pinned on a bare Flask host: the identity hook, the host's JWTManager made after the mount,
MountError for a mount that could never authenticate, the app's own origin (behind ProxyFix
too, and the standalone /docs page's "Try it out" over real HTTP), and integer ids.
"""
import copy

import pytest
import requests
from bson import ObjectId
from flask import Flask, request
from flask_jwt_extended import JWTManager
from werkzeug.middleware.proxy_fix import ProxyFix

from progress_service import create_app
from progress_service.progress import MongoCatalog, MountError, Progress, mount_of

from .hosting import served
from .support import PREFIX, SECRET, WIRE, Lms, close_mounts, make_token, mounted_database


@pytest.fixture
def bare_host():
    """A bare host app on a mongomock database: `make(config, **mount_kwargs)` mounts it."""
    apps = []

    def make(config=None, **kwargs):
        app = Flask("bare_host")
        app.config.update(config or {})
        app.config.update(database)
        Progress(app, **kwargs)
        apps.append(app)
        return app

    with mounted_database() as database:
        yield make
        for app in apps:
            close_mounts(app)


def lms_of(app):
    """The original LMS's collections in the app's mount's database."""
    with app.app_context():
        return Lms(mount_of(app).database.db())


# --- the identity hook ----------------------------------------------------------------------


def test_the_identity_hook_says_who_is_calling(bare_host):
    """A string is parsed by the catalog; None is 401; nothing of JWT is made or read."""
    app = bare_host(identity=lambda: request.headers.get("X-User"))
    lms = lms_of(app)
    student = lms.user(name="Hooked")
    course, lectures = lms.course(2)
    client = app.test_client()
    url = f"{PREFIX}/{course}/lectures/{lectures[0]}"
    written = client.patch(url, json={"isCompleted": True}, headers={"X-User": str(student)})
    assert written.json["data"]["user"]["name"] == "Hooked"
    assert lms.record(student, course)["user"] == student
    assert client.patch(url, json={"isCompleted": True}).json == {"status": "fail", "message": "Authentication required"}
    assert client.get(f"{PREFIX}/{course}", headers={"X-User": "ada"}).json == \
        {"status": "fail", "message": "Token does not identify a user"}
    # A JWT means nothing to a mount with a hook.
    assert client.get(f"{PREFIX}/{course}", headers={"Authorization": f"Bearer {make_token(student)}"}).status_code \
        == 401
    assert "flask-jwt-extended" not in app.extensions
    assert not [key for key in app.config if key.startswith("JWT_")]


def test_a_hook_may_return_the_hosts_id_itself(bare_host):
    """The hook's value is the host's id when it is not a string (an ObjectId here)."""
    holder = {}
    app = bare_host(identity=lambda: holder.get("user"))
    lms = lms_of(app)
    holder["user"] = lms.user()
    course, lectures = lms.course(1)
    answer = app.test_client().patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", json={"isCompleted": True})
    assert answer.json["data"]["user"]["_id"] == str(holder["user"])


def test_cookie_like_hooks_get_the_origin_check_and_the_preflight_no_csrf_header(bare_host):
    """A session is sent by the browser on its own: a write from another origin is 403."""
    app = bare_host({"CLIENT_URL": "https://spa.example"}, identity=lambda: request.headers.get("X-User"))
    lms = lms_of(app)
    student = lms.user()
    course, lectures = lms.course(1)
    client = app.test_client()
    url = f"{PREFIX}/{course}/lectures/{lectures[0]}"
    refused = client.patch(url, json={"isCompleted": True}, headers={"X-User": str(student), "Origin": "https://x.example"})
    assert (refused.status_code, refused.json["message"]) == (403, "Origin not allowed")
    preflight = client.options(url, headers={"Origin": "https://spa.example", "Access-Control-Request-Method": "PATCH"})
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization, X-Request-ID, Prefer"


# --- the host's JWTManager, also one made after the mount --------------------------------------


def test_a_jwt_manager_made_after_the_mount_decides_with_its_loaders(bare_host):
    """Progress(app) first, JWTManager(app) next: the host's manager and blocklist are used."""
    revoked = set()
    app = bare_host({"JWT_SECRET_KEY": SECRET, "JWT_TOKEN_LOCATION": ["headers"]})
    ours = app.extensions["flask-jwt-extended"]
    manager = JWTManager(app)
    manager.token_in_blocklist_loader(lambda header, claims: claims["jti"] in revoked)
    lms = lms_of(app)
    student = lms.user()
    course, _ = lms.course(1)
    token = make_token(student, jti="session-1", type="access")
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.get(f"{PREFIX}/{course}", headers=headers).json["message"] == \
        "No progress record found for this user and course"
    revoked.add("session-1")
    assert client.get(f"{PREFIX}/{course}", headers=headers).json == {"status": "fail", "message": "Invalid token"}
    assert app.extensions["flask-jwt-extended"] is manager is not ours
    assert "the host's JWTManager" in mount_of(app).signin.describe(app)


def test_our_own_check_honours_a_csrf_double_submit_the_host_turned_on(bare_host):
    """No manager of the host's, JWT_COOKIE_CSRF_PROTECT on: a cookie write needs the csrf claim's header."""
    app = bare_host({"JWT_SECRET_KEY": SECRET, "JWT_COOKIE_CSRF_PROTECT": True})
    lms = lms_of(app)
    student = lms.user()
    course, lectures = lms.course(1)
    client = app.test_client()
    client.set_cookie("token", make_token(student, csrf="double-submit"))
    url = f"{PREFIX}/{course}/lectures/{lectures[0]}"
    assert client.patch(url, json={"isCompleted": True}).json == {"status": "fail",
                                                                 "message": "Missing or invalid CSRF token"}
    assert client.patch(url, json={"isCompleted": True}, headers={"X-CSRF-TOKEN": "wrong"}).status_code == 401
    assert client.patch(url, json={"isCompleted": True}, headers={"X-CSRF-TOKEN": "double-submit"}).status_code == 200
    assert client.get(f"{PREFIX}/{course}").status_code == 200, "reads need no CSRF header"


def test_refresh_tokens_are_not_for_calling_the_api(bare_host):
    """Our own check takes access tokens (flask-jwt-extended's `type`), or tokens without a type."""
    app = bare_host({"JWT_SECRET_KEY": SECRET})
    course, _ = lms_of(app).course(1)
    client = app.test_client()
    refresh = {"Authorization": f"Bearer {make_token(ObjectId(), type='refresh')}"}
    assert client.get(f"{PREFIX}/{course}", headers=refresh).json == {"status": "fail", "message": "Invalid token"}


# --- refused at mount -----------------------------------------------------------------------


REFUSED_MOUNTS = {
    "none as the algorithm": ({"JWT_SECRET_KEY": SECRET, "JWT_ALGORITHM": "none"}, "'none' is among"),
    "none among the decode algorithms": ({"JWT_SECRET_KEY": SECRET, "JWT_DECODE_ALGORITHMS": ["HS256", "None"]},
                                         "'none' is among"),
    "no secret for HS256": ({}, "no key to verify HS256 tokens: set JWT_SECRET_KEY (or Flask's SECRET_KEY)"),
    "no secret for HS512": ({"JWT_ALGORITHM": "HS512"}, "no key to verify HS512 tokens"),
    "RS256 without a public key": ({"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY": "pem"},
                                   "JWT_ALGORITHM is RS256 but JWT_PUBLIC_KEY is not set"),
    "an algorithm PyJWT does not know": ({"JWT_SECRET_KEY": SECRET, "JWT_ALGORITHM": "HS999"},
                                         "JWT_ALGORITHM 'HS999' cannot be verified here"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED_MOUNTS))
@pytest.mark.parametrize("host_manager", [False, True], ids=["no-manager", "host-manager"])
def test_a_mount_that_could_never_authenticate_is_refused_naming_what_is_missing(kind, host_manager):
    """MountError at mount, nothing registered, no manager of ours left behind."""
    config, message = REFUSED_MOUNTS[kind]
    app = Flask("refused")
    app.config.update(copy.deepcopy(config))
    manager = JWTManager(app) if host_manager else None
    with mounted_database() as database:
        app.config.update(database)
        with pytest.raises(MountError, match="pass identity=|Remove it|cannot be verified") as refused:
            Progress(app)
    assert message in str(refused.value)
    assert "progress" not in app.blueprints and "progress" not in app.extensions
    assert app.extensions.get("flask-jwt-extended") is manager


def test_flask_secret_key_is_a_key_and_a_host_key_loader_needs_no_public_key(bare_host):
    """SECRET_KEY alone verifies HS256 (as flask-jwt-extended does); a decode_key_loader (a JWKS,
    say) finds the RS256 key itself; a hook needs no key at all; a non-function hook is refused."""
    app = bare_host({"SECRET_KEY": SECRET})
    course, _ = lms_of(app).course(1)
    token = make_token(ObjectId())
    assert app.test_client().get(f"{PREFIX}/{course}", headers={"Authorization": f"Bearer {token}"}).status_code == 403

    host = Flask("jwks_host")
    host.config.update(JWT_ALGORITHM="RS256")
    JWTManager(host).decode_key_loader(lambda header, claims: "a key from the host's JWKS")
    with mounted_database() as database:
        host.config.update(database)
        Progress(host)
        assert bare_host(identity=lambda: None).extensions["progress"]["progress"].signin.csrf_header is None
        odd = Flask("odd")
        odd.config.update(database)
        with pytest.raises(MountError, match="identity= must be a function"):
            Progress(odd, identity="ada")
        close_mounts(host)


# --- the app's own origin ---------------------------------------------------------------------


@pytest.fixture
def standalone_on_the_wire(db_uri):
    """The standalone app (CLIENT_URL naming another origin only), a student and a course."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": db_uri,
                      "CLIENT_URL": "https://spa.example"})
    lms = lms_of(app)
    student = lms.user()
    course, lectures = lms.course(2)
    yield app, student, course, lectures
    close_mounts(app)


@WIRE
def test_the_docs_pages_try_it_out_writes_with_the_cookie_and_another_origin_may_not(standalone_on_the_wire):
    """Over real HTTP: a cookie PATCH from the server's own origin (what /docs sends) is 200,
    the same from another origin is 403, whatever CLIENT_URL says."""
    app, student, course, lectures = standalone_on_the_wire
    with served(app) as base:
        assert requests.get(f"{base}/docs").status_code == 200
        browser = requests.Session()
        browser.cookies.set("token", make_token(student))
        url = f"{base}{PREFIX}/{course}/lectures/{lectures[0]}"
        page = {"Origin": base, "Referer": f"{base}/docs"}
        own = browser.patch(url, json={"isCompleted": True}, headers=page)
        assert own.status_code == 200 and own.json()["data"]["completionPercentage"] == 50
        foreign = browser.patch(url, json={"isCompleted": False}, headers={"Origin": "https://evil.example"})
        assert (foreign.status_code, foreign.json()) == (403, {"status": "fail", "message": "Origin not allowed"})
        listed = browser.patch(url, json={"isCompleted": False}, headers={"Origin": "https://spa.example"})
        assert listed.status_code == 200
    assert lms_of(app).record(student, course)["lectureProgress"][0]["isCompleted"] is False


@WIRE
def test_behind_proxy_fix_the_forwarded_origin_is_the_apps_own(standalone_on_the_wire):
    """Behind a proxy (werkzeug's ProxyFix): the public https origin is own; the inner one is not."""
    app, student, course, lectures = standalone_on_the_wire
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)
    with served(app) as base:
        browser = requests.Session()
        browser.cookies.set("token", make_token(student))
        url = f"{base}{PREFIX}/{course}/lectures/{lectures[1]}"
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "lms.example"}
        own = browser.patch(url, json={"isCompleted": True}, headers={**proxied, "Origin": "https://lms.example"})
        assert own.status_code == 200, own.text
        inner = browser.patch(url, json={"isCompleted": True}, headers={**proxied, "Origin": base})
        assert (inner.status_code, inner.json()["message"]) == (403, "Origin not allowed")
        plain_http = browser.patch(url, json={"isCompleted": True},
                                   headers={**proxied, "Origin": "http://lms.example"})
        assert plain_http.status_code == 403, "the scheme is part of the origin"


# --- ids of any type ------------------------------------------------------------------------


@pytest.fixture
def numbered(bare_host):
    """A host whose ids are integers (a sequence), in the original LMS's collections."""
    app = bare_host({"JWT_SECRET_KEY": SECRET}, catalog=MongoCatalog(parse_id=int))
    db = lms_of(app).db
    db.users.insert_many([{"_id": 7, "name": "Seven", "email": "7@example.com", "role": "student"},
                          {"_id": 9, "name": "Nine", "email": "9@example.com", "role": "instructor"}])
    db.lectures.insert_many([{"_id": 101, "title": "One"}, {"_id": 102, "title": "Two"}])
    db.courses.insert_one({"_id": 55, "title": "Counting", "instructor": 9, "lectures": [101, 102],
                           "enrolledStudents": [7]})
    return app, db


def test_integer_ids_are_parsed_stored_as_integers_and_shown_as_strings(numbered):
    """Path ids, identities and batch items go through parse_id; records keep the host's ints."""
    app, db = numbered
    client = app.test_client()
    student = {"Authorization": f"Bearer {make_token('7')}"}
    data = client.patch(f"{PREFIX}/55/lectures/101", json={"isCompleted": True}, headers=student).json["data"]
    assert (data["user"]["_id"], data["course"]["_id"]) == ("7", "55")
    assert [entry["lecture"] for entry in data["lectureProgress"]] == ["101", "102"]
    batch = client.patch(f"{PREFIX}/55/lectures", json={"lectures": [{"lecture": "102", "isCompleted": True}]},
                         headers=student)
    assert batch.json["data"]["completionPercentage"] == 100
    record = db.courseprogresses.find_one()
    assert (record["user"], record["course"], [entry["lecture"] for entry in record["lectureProgress"]]) == \
        (7, 55, [101, 102])
    instructor = {"Authorization": f"Bearer {make_token('9')}"}
    students = client.get(f"{PREFIX}/55/students", headers=instructor).json["data"]["items"]
    assert students[0]["user"] == {"_id": "7", "name": "Seven", "email": "7@example.com"}
    summary = client.get(f"{PREFIX}/55/summary", headers=instructor).json["data"]
    assert [row["lecture"] for row in summary["lectures"]] == ["101", "102"]
    assert client.get(PREFIX, headers=student).json["data"]["items"][0]["course"]["_id"] == "55"


def test_ids_that_do_not_parse_are_400_naming_the_parameter_and_401_for_the_identity(numbered):
    """Not an integer, or too large for BSON: 400 (never a 500); the token's subject likewise 401."""
    app, _ = numbered
    client = app.test_client()
    student = {"Authorization": f"Bearer {make_token('7')}"}
    for path, field in ((f"{PREFIX}/abc", "courseId"), (f"{PREFIX}/{2 ** 70}", "courseId"),
                        (f"{PREFIX}/55/lectures/{'9' * 30}", "lectureId")):
        method = client.get if path.count("/") == 4 else client.patch
        answer = method(path, json={"isCompleted": True}, headers=student)
        assert (answer.status_code, answer.json["errors"]) == (400, {field: ["Not a valid id."]}), path
    answer = client.get(f"{PREFIX}/55", headers={"Authorization": f"Bearer {make_token(str(ObjectId()))}"})
    assert answer.json == {"status": "fail", "message": "Token does not identify a user"}


def test_the_openapi_document_has_the_24_hex_pattern_only_for_object_ids(numbered, bare_host):
    """Integer ids: plain strings. The default parse: the ObjectId pattern."""
    app, _ = numbered
    document = app.test_client().get(f"{PREFIX}/openapi.json").json
    assert document["paths"][f"{PREFIX}/{{courseId}}"]["get"]["parameters"][0]["schema"] == {"type": "string"}
    default = bare_host({"JWT_SECRET_KEY": SECRET}).test_client().get(f"{PREFIX}/openapi.json").json
    assert default["paths"][f"{PREFIX}/{{courseId}}"]["get"]["parameters"][0]["schema"] == \
        {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}
    hooked = bare_host(identity=lambda: None).test_client().get(f"{PREFIX}/openapi.json").json
    assert hooked["components"]["securitySchemes"] == {"cookieAuth": {
        "type": "apiKey", "in": "cookie", "name": "session", "description": "The LMS's session cookie"}}


def test_a_parse_id_that_is_not_a_function_is_refused():
    """MongoCatalog(parse_id=...) takes int, str, uuid.UUID or a function of one string."""
    with pytest.raises(TypeError, match="parse_id must be a function"):
        MongoCatalog(parse_id="uuid")
