"""examples/rs256_host over real HTTP on the wire server: an RS256 host with plain MongoEngine.

Its own JWTManager signs with a key pair generated here (never committed). Progress takes its
tokens through that manager; the host's login, routes, config and documents are the same
with the mount as without it, mounted before its JWTManager or after; and a token forged with
HS256 (keyed with Flask's SECRET_KEY or the public key) is refused everywhere.
"""
import time

import jwt
import pytest
import requests
from bson import ObjectId
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mongoengine.connection import get_db

from examples import rs256_host as host
from progress_service.progress import mount_of

from .hosting import (
    PASSWORD,
    School,
    build_in_order,
    example_uri,  # noqa: F401  (fixture)
    observe_hosts,
    served,
    stored_documents,
    token_shape,
    walk_progress,
)
from .support import PREFIX, WIRE, forged

FLASK_SECRET = "the-host's-flask-secret-key-for-its-sessions"


@pytest.fixture(scope="module")
def key_pair():
    """(private PEM, public PEM) of a fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def config_for(uri, key_pair, **extra):
    """The host's settings: its database, its key pair, Flask's secret."""
    private, public = key_pair
    return {"MONGODB_URI": uri, "JWT_PRIVATE_KEY": private, "JWT_PUBLIC_KEY": public, "SECRET_KEY": FLASK_SECRET,
            **extra}


def signed_in(base, email):
    """A requests.Session carrying the host's Bearer token for `email`."""
    session = requests.Session()
    answer = session.post(f"{base}/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    session.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return session


def forged_for(user_id, key):
    """An HS256 token for `user_id` that the host never issued, signed with `key` (a secret it knows,
    or its public key: the HS/RS confusion)."""
    claims = {"sub": str(user_id), "exp": int(time.time()) + 300, "type": "access", "fresh": False}
    return forged({"alg": "HS256", "typ": "JWT"}, claims, key.encode())


@WIRE
def test_students_and_the_instructor_use_progress_with_the_hosts_rs256_tokens(example_uri, key_pair):
    """The enrolled student reads and writes, the stranger gets 403, the instructor sees the summary."""
    app = host.create_app(config_for(example_uri, key_pair))
    school = School.fixed(lambda number: ObjectId()).store(get_db())
    with served(app) as base:
        sessions = [signed_in(base, f"{name}@example.com") for name in ("ada", "bob", "grace")]
        assert jwt.get_unverified_header(sessions[0].headers["Authorization"][7:])["alg"] == "RS256"
        walk_progress(base + PREFIX, *sessions, school,
                      lambda user, course: get_db().courseprogresses.find_one({"user": user, "course": course}))
        for key in (FLASK_SECRET, key_pair[1]):
            refused = requests.get(f"{base}{PREFIX}/{school.course}",
                                   headers={"Authorization": f"Bearer {forged_for(school.ada, key)}"})
            assert (refused.status_code, refused.json()) == (401, {"status": "fail",
                                                                   "message": "Invalid token"})
    assert "JWTManager (RS256" in mount_of(app).signin.describe(app)


@WIRE
def test_the_host_is_as_it_was_whether_progress_is_mounted_before_or_after_its_jwt_manager(example_uri, key_pair):
    """Config, its login's tokens, its routes' answers and its documents: the same in all three."""

    def drive(app, base):
        """The host's own sign-in and routes, on a fresh copy of the fixed school."""
        db = get_db()
        db.client.drop_database(db.name)
        school = School.fixed(lambda number: ObjectId(f"{number:024x}")).store(db)
        ada, bob = requests.Session(), requests.Session()
        token = ada.post(f"{base}/login", json={"email": "ada@example.com", "password": PASSWORD}).json()["token"]
        bob_token = bob.post(f"{base}/login", json={"email": "bob@example.com", "password": PASSWORD}).json()["token"]
        calls = [("GET", "/me", token), ("POST", f"/courses/{school.course}/enroll", bob_token),
                 ("POST", f"/courses/{'f' * 24}/enroll", token), ("GET", "/courses", None), ("GET", "/me", None),
                 ("GET", "/me", forged_for(school.ada, FLASK_SECRET)), ("GET", "/me", forged_for(school.ada, key_pair[1]))]
        answers = []
        for method, path, bearer in calls:
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            answer = requests.request(method, base + path, headers=headers)
            answers.append((method, path, answer.status_code, answer.headers["Content-Type"], answer.content))
        wrong = requests.post(f"{base}/login", json={"email": "ada@example.com", "password": "wrong"})
        answers.append(("login", wrong.status_code, wrong.content))
        return {"token": token_shape(token), "answers": answers, "documents": stored_documents(db)}

    seen = observe_hosts([None, "after", "before"], lambda order: build_in_order(host, config_for(example_uri, key_pair), order), drive)
    assert seen["after"] == seen[None]
    assert seen["before"] == seen[None]
    plain = seen[None]
    assert plain["token"][0] == {"alg": "RS256", "typ": "JWT"}
    assert plain["token"][1] == {"fresh": False, "iat": "(varies)", "jti": "(varies)", "type": "access",
                                 "sub": f"{2:024x}", "nbf": "(varies)", "csrf": "(varies)", "exp": "(varies)"}
    statuses = [answer[2] for answer in plain["answers"][:-1]]
    assert statuses == [200, 200, 404, 200, 401, 401, 401], "the forged tokens are refused by the host itself"
    assert plain["answers"][5][4] == b'{"error":"invalid token"}\n'
    assert plain["documents"]["courses"][0]["enrolledStudents"] == [ObjectId(f"{2:024x}"), ObjectId(f"{3:024x}")]
    assert plain["config"]["JWT_ALGORITHM"] == "RS256" and plain["config"]["JWT_DECODE_ALGORITHMS"] is None
