"""Tokens and the OWASP API Security Top 10 (2023) items that apply (issue 3, points 5 and 6).

Each refused token is checked on the wire server with every command the driver sends
recorded: a 401 must be decided before any database query.
"""
import base64
import json

import pytest
from bson import ObjectId
from flask import Flask
from flask_jwt_extended import JWTManager

from progress_service import create_app
from progress_service.standalone.config import ConfigError
from progress_service.progress import Progress, service
from progress_service.progress.schemas import MAX_BATCH, MAX_PAGE, MAX_PAGE_SIZE

from .command_audit import AUDIT
from .support import BOTH, PREFIX, SECRET, WIRE, Api, b64, database_config, forged, make_token, mounted_database

PUBLIC_KEY = ("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEexampleexampleexampleexample\n"
              "-----END PUBLIC KEY-----\n")


def claims(user_id, **extra):
    """A payload that would be valid: sub, iat, exp."""
    return {"sub": str(user_id), "iat": 1_700_000_000, "exp": 4_000_000_000, **extra}


REFUSED_TOKENS = {
    "alg none": lambda uid: forged({"alg": "none", "typ": "JWT"}, claims(uid)),
    "alg None, signed anyway": lambda uid: forged({"alg": "None", "typ": "JWT"}, claims(uid), SECRET.encode()),
    "HS512 with the right secret": lambda uid: make_token(uid, algorithm="HS512"),
    "RS256 header, HMAC body": lambda uid: forged({"alg": "RS256", "typ": "JWT"}, claims(uid), SECRET.encode()),
    "HS256 keyed with the public key": lambda uid: forged({"alg": "HS256", "typ": "JWT"}, claims(uid),
                                                          PUBLIC_KEY.encode()),
    "no exp": lambda uid: make_token(uid, expires_in=None),
    "expired": lambda uid: make_token(uid, expires_in=-5),
    "payload edited": lambda uid: _edit_payload(make_token(uid), sub=str(ObjectId())),
    "identity missing": lambda uid: make_token(uid, claim="uid"),
    "identity an int": lambda uid: make_token(12345),
    "identity an object": lambda uid: make_token({"$oid": str(uid)}),
    "identity an array": lambda uid: make_token([str(uid)]),
    "identity not an ObjectId": lambda uid: make_token("ada@example.com"),
    "identity 23 hex digits": lambda uid: make_token(str(uid)[:-1]),
    "identity with a newline": lambda uid: make_token(str(uid) + "\n"),
}


def _edit_payload(token, **changes):
    """The same header and signature over a changed payload."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    return f"{header}.{b64(data)}.{signature}"


@pytest.fixture
def course(lms, api):
    """A course in which the `api` student already has a record."""
    course_id, lectures = lms.course(3)
    assert api.patch(course_id, lectures[0], {"isCompleted": True}).status_code == 200
    return course_id, lectures


# --- 5. tokens ------------------------------------------------------------------------------

# The refusals are pinned whatever the configuration asks: alg none, HS512 and RS256 listed,
# a public key configured for RS256.
LOOSE_JWT = {"JWT_DECODE_ALGORITHMS": ["HS256", "HS512", "RS256", "none"], "JWT_ALGORITHM": "HS512",
             "JWT_PUBLIC_KEY": PUBLIC_KEY}


@WIRE
@pytest.mark.parametrize("app_config", [{}, LOOSE_JWT], ids=["default", "loose-config"])
@pytest.mark.parametrize("kind", sorted(REFUSED_TOKENS))
def test_refused_tokens_are_401_before_any_database_query(client, api, course, kind, app_config):
    """Every refused token: 401 in the envelope, and not one command reaches the database."""
    course_id, lectures = course
    token = REFUSED_TOKENS[kind](api.user_id)
    with AUDIT.capture() as commands:
        responses = [client.get(f"{PREFIX}/{course_id}", headers={"Authorization": f"Bearer {token}"}),
                     client.get(PREFIX, headers={"Authorization": f"Bearer {token}"})]
        # The cookie too (Werkzeug's test client drops a hand-written Cookie header).
        client.set_cookie("token", token)
        responses.append(client.patch(f"{PREFIX}/{course_id}/lectures/{lectures[1]}", data='{"isCompleted": true}'))
        client.delete_cookie("token")
    for response in responses:
        assert response.status_code == 401, (kind, response.json)
        assert response.json["status"] == "fail" and set(response.json) == {"status", "message"}
    assert commands == [], f"{kind}: {[name for name, _, _ in commands]}"


@WIRE
@pytest.mark.parametrize("app_config", [{"JWT_IDENTITY_CLAIM": "userId"}])
@pytest.mark.parametrize("value", [12345, {"$oid": "6b0897dc94f58f7a4a4533b4"}, ["6b0897dc94f58f7a4a4533b4"],
                                   None, True, "6b0897dc94f58f7a4a4533b4 ", ""])
def test_lms_identity_claim_of_the_wrong_type_is_401_without_a_query(client, lms, value, app_config):
    """The original LMS's userId claim: anything but a 24-hex string is refused before the database."""
    course_id, _ = lms.course(1)
    token = make_token(value, claim="userId")
    with AUDIT.capture() as commands:
        response = client.get(f"{PREFIX}/{course_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json == {"status": "fail",
                                                             "message": "Token does not identify a user"}
    assert commands == []


@BOTH
def test_a_token_whose_user_is_not_in_users_is_served_with_null_name(client, lms):
    """Contract section 3: the record is served, user name/email/avatar null, _id from the token."""
    stranger = ObjectId()
    course_id, lectures = lms.course(2)
    lms.enroll(stranger, course_id)
    api = Api(client, stranger)
    written = api.patch(course_id, lectures[1], {"isCompleted": True})
    assert written.status_code == 200
    expected_user = {"_id": str(stranger), "name": None, "email": None, "avatar": None}
    assert written.json["data"]["user"] == expected_user
    assert written.json["data"]["completionPercentage"] == 50
    read = api.get(course_id)
    assert read.status_code == 200 and read.json["data"] == written.json["data"]
    assert lms.record(stranger, course_id)["user"] == stranger
    assert lms.db.users.count_documents({"_id": stranger}) == 0, "no user was invented"


def test_a_host_jwt_manager_decides_the_algorithms_but_never_none_or_no_exp():
    """Contract section 11: the host's JWTManager allows HS512, so we do; `alg: none` (even signed)
    and a token without exp stay refused; an algorithm the host does not list is refused."""
    host = Flask("host")
    host.config.update(JWT_SECRET_KEY=SECRET, JWT_DECODE_ALGORITHMS=["HS256", "HS512"],
                       JWT_TOKEN_LOCATION=["headers"])
    JWTManager(host)
    user = ObjectId()
    with mounted_database() as database:
        host.config.update(database)
        Progress(host)
        client = host.test_client()

        def get(token):
            return client.get(f"{PREFIX}/{ObjectId()}", headers={"Authorization": f"Bearer {token}"})

        for token in (make_token(user), make_token(user, algorithm="HS512")):
            assert get(token).json == {"status": "fail", "message": "Course not found"}
        refused = {"alg none": forged({"alg": "none", "typ": "JWT"}, claims(user)),
                   "alg None, signed": forged({"alg": "None", "typ": "JWT"}, claims(user), SECRET.encode()),
                   "no exp": make_token(user, expires_in=None),
                   "HS384, not listed": make_token(user, algorithm="HS384")}
        for kind, token in refused.items():
            response = get(token)
            assert response.status_code == 401 and response.json["status"] == "fail", kind
        assert get(refused["no exp"]).json["message"] == "Token has no expiry"


# --- 6. OWASP API Security Top 10 (2023) --------------------------------------------------

@BOTH
def test_api1_bola_a_token_never_reaches_another_users_record(client, lms):
    """A's token reads and writes A's record only, whatever A puts in the query or headers."""
    course_id, lectures = lms.course(3)
    alice, bob = Api(client, lms.user(name="Alice")), Api(client, lms.user(name="Bob"))
    assert bob.patch(course_id, lectures[2], {"isCompleted": True, "watchTime": 99}).status_code == 200
    bob_before = lms.record(bob.user_id, course_id)
    # Alice has no record yet: Bob's is never served in its place.
    sneaky = {"X-User-Id": str(bob.user_id)}
    assert alice.get(course_id, headers=sneaky).status_code == 404
    response = client.get(f"{PREFIX}/{course_id}?user={bob.user_id}&userId={bob.user_id}",
                          headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status_code == 404
    written = alice.patch(course_id, lectures[0], {"isCompleted": True}, headers=sneaky)
    assert written.status_code == 200
    assert written.json["data"]["user"]["_id"] == str(alice.user_id)
    assert [e["isCompleted"] for e in written.json["data"]["lectureProgress"]] == [True, False, False]
    assert alice.complete(course_id).json["data"]["user"]["_id"] == str(alice.user_id)
    assert alice.reset(course_id).status_code == 200
    assert lms.record(bob.user_id, course_id) == bob_before, "Bob's record untouched"
    dashboard = client.get(PREFIX, headers={"Authorization": f"Bearer {alice.token}"}).json["data"]
    assert dashboard["total"] == 1 and [i["course"]["_id"] for i in dashboard["items"]] == [str(course_id)]
    assert dashboard["items"][0]["completionPercentage"] == 0, "Alice's figures, not Bob's"


@BOTH
def test_api5_function_level_authorization_instructor_views(client, lms):
    """A student, or another course's instructor, gets 403 on a course's instructor views."""
    teacher, other_teacher = lms.user(role="instructor"), lms.user(role="instructor")
    course_id, lectures = lms.course(2, instructor=teacher)
    student = Api(client, lms.user())
    assert student.patch(course_id, lectures[0], {"isCompleted": True}).status_code == 200
    for caller in (student.user_id, other_teacher):
        headers = {"Authorization": f"Bearer {make_token(caller)}"}
        for view in ("summary", "students"):
            response = client.get(f"{PREFIX}/{course_id}/{view}", headers=headers)
            assert response.status_code == 403, (caller, view)
            assert response.json["status"] == "fail" and set(response.json) == {"status", "message"}
            assert str(student.user_id) not in response.get_data(as_text=True)
    own = client.get(f"{PREFIX}/{course_id}/students", headers={"Authorization": f"Bearer {make_token(teacher)}"})
    assert own.status_code == 200 and own.json["data"]["total"] == 1


@BOTH
@pytest.mark.parametrize("kind", ["no token", "garbage", "wrong secret", "expired", "payload edited",
                                  "cookie wins over a good header"])
def test_api2_broken_authentication(client, lms, course, api, kind):
    """No way in without a valid, unexpired token signed with our key; each way is a 401 envelope."""
    course_id, lectures = course
    good = api.token
    headers = {
        "no token": {},
        "garbage": {"Authorization": "Bearer not.a.token"},
        "wrong secret": {"Authorization": f"Bearer {make_token(api.user_id, secret='x' * 40)}"},
        "expired": {"Authorization": f"Bearer {make_token(api.user_id, expires_in=-1)}"},
        "payload edited": {"Authorization": f"Bearer {_edit_payload(good, exp=4_000_000_000)}"},
        "cookie wins over a good header": {"Authorization": f"Bearer {good}"},
    }[kind]
    if kind == "cookie wins over a good header":
        client.set_cookie("token", make_token(api.user_id, expires_in=-1))
    before = lms.record(api.user_id, course_id)
    for response in (client.get(f"{PREFIX}/{course_id}", headers=headers),
                     client.post(f"{PREFIX}/{course_id}/complete", headers=headers)):
        assert response.status_code == 401
        assert response.json["status"] == "fail" and "msg" not in response.json
    assert lms.record(api.user_id, course_id) == before


MASS_ASSIGNMENT = ["completionPercentage", "user", "course", "__v", "_id", "lectureProgress",
                   "completedAt", "lastAccessed", "createdAt", "lastWatched", "lecture"]


@BOTH
@pytest.mark.parametrize("field", MASS_ASSIGNMENT)
def test_api3_mass_assignment_is_refused_by_name(api, lms, course, field):
    """No stored property beyond isCompleted/watchTime can be set: 400 naming it, nothing stored."""
    course_id, lectures = course
    before = lms.record(api.user_id, course_id)
    value = {"user": str(ObjectId()), "course": str(ObjectId()), "_id": str(ObjectId())}.get(field, 100)
    single = api.patch(course_id, lectures[1], {"isCompleted": True, field: value})
    assert single.status_code == 400 and field in single.json["errors"], single.json
    if field != "lecture":  # in a batch item, `lecture` is the item's key
        item = {"lecture": str(lectures[1]), "isCompleted": True, field: value}
        batch = api.client.patch(f"{PREFIX}/{course_id}/lectures", json={"lectures": [item]},
                                 headers={"Authorization": f"Bearer {api.token}"})
        assert batch.status_code == 400 and field in json.dumps(batch.json["errors"]), batch.json
    assert lms.record(api.user_id, course_id) == before


@BOTH
def test_api3_no_secret_property_is_ever_served(client, lms, api, course):
    """Excessive data exposure: the user's password hash and role never leave the service."""
    course_id, lectures = course
    teacher_headers = {"Authorization": f"Bearer {make_token(lms.user(role='admin'))}"}
    bodies = [api.get(course_id).get_data(as_text=True),
              api.patch(course_id, lectures[2], {"isCompleted": True}).get_data(as_text=True),
              client.get(PREFIX, headers={"Authorization": f"Bearer {api.token}"}).get_data(as_text=True),
              client.get(f"{PREFIX}/{course_id}/students", headers=teacher_headers).get_data(as_text=True)]
    for body in bodies:
        assert "$2b$" not in body and "password" not in body and '"role"' not in body


@BOTH
def test_api4_resource_consumption_is_bounded(client, api, lms, course):
    """Body size, page size and batch size are capped; a cap exceeded is a 4xx in the envelope."""
    course_id, lectures = course
    auth = {"Authorization": f"Bearer {api.token}"}
    huge = api.patch(course_id, lectures[0], {"isCompleted": True, "pad": "x" * (64 * 1024)})
    assert huge.status_code == 413 and huge.json == {"status": "fail", "message": "Request body too large"}
    for query in (f"limit={MAX_PAGE_SIZE + 1}", "limit=0", "limit=1000000", "page=0", "page=-1", "limit=abc"):
        response = client.get(f"{PREFIX}?{query}", headers=auth)
        assert response.status_code == 400 and response.json["status"] == "fail", query
    assert client.get(f"{PREFIX}?limit={MAX_PAGE_SIZE}", headers=auth).status_code == 200
    too_many = [{"lecture": str(ObjectId()), "isCompleted": True} for _ in range(MAX_BATCH + 1)]
    response = client.patch(f"{PREFIX}/{course_id}/lectures", json={"lectures": too_many}, headers=auth)
    assert response.status_code == 400 and "lectures" in response.json["errors"]
    # A far page is an empty page, not an error and not a long scan.
    # The page number is capped too: the furthest page is an empty page, beyond it a 400 (not
    # a skip the database would overflow on).
    far = client.get(f"{PREFIX}?page={MAX_PAGE}&limit={MAX_PAGE_SIZE}", headers=auth)
    assert far.status_code == 200 and far.json["data"]["items"] == [] and far.json["data"]["total"] == 1
    for page in (MAX_PAGE + 1, 10**19):
        assert client.get(f"{PREFIX}?page={page}", headers=auth).status_code == 400


def test_api4_the_largest_legitimate_batch_fits_the_body_limit():
    """200 items with the longest numbers, pretty-printed, are far below 64 KB: the limits agree."""
    items = [{"lecture": str(ObjectId()), "isCompleted": False, "watchTime": 1.2345678901234567e+300}
             for _ in range(MAX_BATCH)]
    assert len(json.dumps({"lectures": items}, indent=4).encode()) < 64 * 1024 // 2


def test_api8_security_misconfiguration_refused_at_start(monkeypatch):
    """Production never starts on a missing or short secret, or an unknown environment."""
    for key in ("JWT_SECRET_KEY", "PROGRESS_ENV"):
        monkeypatch.delenv(key, raising=False)
    base = {"MONGODB_URI": "mongodb://127.0.0.1:9/misconfig"}
    with pytest.raises(ConfigError):
        create_app(base)
    with pytest.raises(ConfigError):
        create_app({**base, "JWT_SECRET_KEY": "short"})
    with pytest.raises(ConfigError):
        create_app({**base, "PROGRESS_ENV": "debug", "JWT_SECRET_KEY": SECRET})


def test_api8_security_misconfiguration_at_run_time(monkeypatch):
    """In production: no debug, no trace in a 500, CORS only for the configured origins, exactly."""
    database, disconnect = database_config("mongomock://localhost/misconfig")
    app = create_app({**database, "JWT_SECRET_KEY": SECRET, "PROGRESS_ENV": "production"})
    try:
        assert app.debug is False and app.testing is False
        client = app.test_client()

        def explode(*args, **kwargs):
            """A bug with internals in its message."""
            raise RuntimeError("secret internals at /srv/app/settings.py")

        monkeypatch.setattr(service, "get_progress", explode)
        headers = {"Authorization": f"Bearer {make_token(ObjectId())}", "Origin": "https://evil.example"}
        response = client.get(f"{PREFIX}/{ObjectId()}", headers=headers)
        assert response.status_code == 500
        assert response.json == {"status": "error", "message": "Internal server error"}
        assert "Access-Control-Allow-Origin" not in response.headers
        headers["Origin"] = "http://localhost:5173"
        allowed = client.get(f"{PREFIX}/{ObjectId()}", headers=headers)
        assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    finally:
        disconnect()
