"""Auth (contract section 4): where the token comes from, what is refused, the origin check."""
import base64
import json

import jwt
import pytest
from bson import ObjectId

from .support import BOTH, PREFIX, SECRET, Api, make_token


def unsigned(payload, alg="none"):
    """A token with alg=none (or another header) and no valid signature."""
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(payload)}."


def get_with(client, course, token, where="header"):
    """GET the course with the token in a header or the cookie."""
    if where == "cookie":
        client.set_cookie("token", token)
        return client.get(f"{PREFIX}/{course}")
    return client.get(f"{PREFIX}/{course}", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def course_with_record(api, lms):
    """A course in which the `api` user has a record."""
    course, lectures = lms.course(2)
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    return course


BAD_TOKENS = {
    "expired": lambda uid: make_token(uid, expires_in=-60),
    "no exp": lambda uid: make_token(uid, expires_in=None),
    "wrong secret": lambda uid: make_token(uid, secret="another-secret-that-is-32-bytes-long!!"),
    "alg none": lambda uid: unsigned({"sub": str(uid), "exp": 9999999999}),
    "HS512": lambda uid: make_token(uid, algorithm="HS512"),
    "garbage": lambda uid: "garbage",
    "sub int": lambda uid: make_token(12345),
    "sub object": lambda uid: make_token({"id": str(uid)}),
    "sub array": lambda uid: make_token([str(uid)]),
    "sub not an ObjectId": lambda uid: make_token("alice"),
    "claim missing": lambda uid: make_token(uid, claim="userId"),
}


@pytest.mark.parametrize("where", ["header", "cookie"])
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_tokens_are_401_in_the_envelope(client, api, course_with_record, kind, where):
    """Every refused token: 401 with our envelope, never 422 or {"msg": ...}."""
    response = get_with(client, course_with_record, BAD_TOKENS[kind](api.user_id), where)
    assert response.status_code == 401
    assert response.json["status"] == "fail" and isinstance(response.json["message"], str)
    assert "msg" not in response.json


@pytest.mark.parametrize("app_config", [{"JWT_DECODE_ALGORITHMS": ["HS256", "RS256"],
                                          "JWT_PUBLIC_KEY": SECRET}])
def test_rs256_is_refused_whatever_the_config(client, api, course_with_record, app_config):
    """HS/RS confusion: the decode algorithms are pinned to HS256 even if configured wider."""
    token = unsigned({"sub": str(api.user_id), "exp": 9999999999}, alg="RS256") + "c2ln"
    assert get_with(client, course_with_record, token).status_code == 401
    assert client.application.config["JWT_DECODE_ALGORITHMS"] == ["HS256"]


def test_no_token_is_401(client, course_with_record):
    """No cookie, no header."""
    response = client.get(f"{PREFIX}/{course_with_record}")
    assert response.status_code == 401
    assert response.json == {"status": "fail", "message": "Authentication required"}


@BOTH
def test_cookie_token_works(client, api, course_with_record):
    """The original's way: the HTTP-only cookie `token`."""
    response = get_with(client, course_with_record, api.token, "cookie")
    assert response.status_code == 200
    assert response.json["data"]["user"]["_id"] == str(api.user_id)


def test_cookie_wins_over_header(client, lms, api, course_with_record):
    """Both sent: the cookie's user is the caller (and a bad cookie is not rescued)."""
    other = lms.user(name="Other")
    client.set_cookie("token", make_token(other))
    response = client.get(f"{PREFIX}/{course_with_record}", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 404, "the cookie's user has no record"
    client.set_cookie("token", "garbage")
    response = client.get(f"{PREFIX}/{course_with_record}", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 401


@pytest.mark.parametrize("app_config", [{"JWT_IDENTITY_CLAIM": "userId"}])
def test_original_lms_tokens_work_as_they_are(client, lms, app_config):
    """{userId, iat, exp}, no csrf claim, no type: accepted with JWT_IDENTITY_CLAIM=userId."""
    user = lms.user()
    course, lectures = lms.course(1)
    token = jwt.encode({"userId": str(user), "iat": 1, "exp": 9999999999}, SECRET, algorithm="HS256")
    client.set_cookie("token", token)
    response = client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", data='{"isCompleted": true}')
    assert response.status_code == 200
    assert response.json["data"]["user"]["_id"] == str(user)
    assert lms.record(user, course)["completionPercentage"] == 100
    # A `sub` token is not a `userId` token.
    assert Api(client, user).get(course).status_code == 200  # the cookie still wins
    client.delete_cookie("token")
    assert Api(client, user).get(course).status_code == 401


@pytest.mark.parametrize("headers,expected", [
    ({"Origin": "https://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Referer": "https://evil.example/page"}, 403),
    ({"Origin": "http://localhost:5173"}, 200),
    ({"Origin": "http://localhost:5173/"}, 200),
    ({"Referer": "http://localhost:5173/courses/1"}, 200),
    ({}, 200),
])
def test_cookie_writes_check_the_origin(client, lms, headers, expected):
    """A cookie-authenticated write from a foreign origin is refused; nothing is stored."""
    user = lms.user()
    course, lectures = lms.course(1)
    client.set_cookie("token", make_token(user))
    response = client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", data='{"isCompleted": true}',
                            headers=headers)
    assert response.status_code == expected
    assert (lms.record(user, course) is not None) == (expected == 200)


def test_bearer_writes_and_reads_are_not_origin_checked(client, api, lms):
    """Bearer carries no ambient credential; GET never changes state."""
    course, lectures = lms.course(1)
    response = api.patch(course, lectures[0], {"isCompleted": True}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    client.set_cookie("token", api.token)
    assert client.get(f"{PREFIX}/{course}", headers={"Origin": "https://evil.example"}).status_code == 200


@pytest.mark.parametrize("app_config", [{"CLIENT_URL": "https://lms.example/, https://admin.example"}])
def test_client_url_lists_origins(client, lms, app_config):
    """CLIENT_URL is comma-separated with trailing slashes ignored; CORS allows the same."""
    user = lms.user()
    course, lectures = lms.course(1)
    client.set_cookie("token", make_token(user))
    url = f"{PREFIX}/{course}/lectures/{lectures[0]}"
    ok = client.patch(url, data='{"isCompleted": true}', headers={"Origin": "https://admin.example"})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://admin.example"
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    refused = client.patch(url, data='{"isCompleted": true}', headers={"Origin": "http://localhost:5173"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_cors_preflight(client, lms):
    """OPTIONS from an allowed origin: methods, headers and credentials allowed."""
    course, lectures = lms.course(1)
    response = client.options(f"{PREFIX}/{course}/lectures/{lectures[0]}", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "PATCH"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    foreign = client.options(f"{PREFIX}/{course}", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_jwt_settings_are_pinned(app):
    """HS256 only, CSRF double-submit off, cookie `token`, cookie before header."""
    assert app.config["JWT_DECODE_ALGORITHMS"] == ["HS256"]
    assert app.config["JWT_ALGORITHM"] == "HS256"
    assert app.config["JWT_COOKIE_CSRF_PROTECT"] is False
    assert app.config["JWT_ACCESS_COOKIE_NAME"] == "token"
    assert app.config["JWT_TOKEN_LOCATION"] == ["cookies", "headers"]


@pytest.mark.parametrize("app_config", [{"JWT_DECODE_AUDIENCE": "lms-progress", "JWT_DECODE_ISSUER": "https://lms.example"}])
@pytest.mark.parametrize("claims,status", [
    ({"aud": "lms-progress", "iss": "https://lms.example"}, 200),
    ({"aud": ["other", "lms-progress"], "iss": "https://lms.example"}, 200),
    ({"iss": "https://lms.example"}, 401),
    ({"aud": "lms-progress"}, 401),
    ({"aud": "someone-else", "iss": "https://lms.example"}, 401),
    ({"aud": "lms-progress", "iss": "https://evil.example"}, 401),
], ids=["both", "audience in a list", "no aud", "no iss", "wrong aud", "wrong iss"])
def test_a_required_audience_and_issuer_are_checked(client, api, lms, app_config, claims, status):
    """JWT_DECODE_AUDIENCE / JWT_DECODE_ISSUER: a token must carry them, else 401 in the envelope."""
    course, lectures = lms.course(1)
    token = make_token(api.user_id, **claims)
    response = client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", json={"isCompleted": True},
                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status, response.json
    if status == 401:
        assert response.json == {"status": "fail", "message": "Invalid token"}
        assert lms.record(api.user_id, course) is None
    else:
        assert response.json["data"]["completionPercentage"] == 100


def test_audience_and_issuer_come_from_the_environment(monkeypatch):
    """The standalone app reads both from its environment (contract section 5)."""
    from progress_service.standalone.config import from_env

    config = from_env({"JWT_DECODE_AUDIENCE": "lms-progress", "JWT_DECODE_ISSUER": "https://lms.example"})
    assert (config["JWT_DECODE_AUDIENCE"], config["JWT_DECODE_ISSUER"]) == ("lms-progress", "https://lms.example")
    assert "JWT_DECODE_AUDIENCE" not in from_env({})


def test_cors_preflight_allows_the_prefer_header_and_exposes_its_answer(client, lms, api):
    """A cross-origin video player may send Prefer: return=minimal and read Preference-Applied."""
    course, lectures = lms.course(1)
    url = f"{PREFIX}/{course}/lectures/{lectures[0]}"
    preflight = client.options(url, headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "PATCH",
                                             "Access-Control-Request-Headers": "prefer, content-type"})
    allowed = [header.strip().lower() for header in preflight.headers["Access-Control-Allow-Headers"].split(",")]
    assert {"prefer", "content-type", "x-csrf-token"} <= set(allowed)
    answer = client.patch(url, json={"watchTime": 3}, headers={"Origin": "http://localhost:5173",
                                                               "Authorization": f"Bearer {api.token}",
                                                               "Prefer": "return=minimal"})
    assert answer.status_code == 204
    assert "Preference-Applied" in answer.headers["Access-Control-Expose-Headers"]
