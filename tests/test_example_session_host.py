"""examples/session_host over real HTTP on the wire server: Flask-Login, a form, a session cookie.

Progress asks the host who is calling (`identity=`): no JWT is read, no JWTManager is made,
signing out ends access at once, the host's own pages may write (same origin) while another
origin may not, and the host is the same with the mount as without it.
"""
import pytest
import requests
from bson import ObjectId
from flask import Flask
from flask.config import Config
from mongoengine.connection import get_db

from examples import session_host as host

from .hosting import (
    PASSWORD,
    School,
    example_uri,  # noqa: F401  (fixture)
    observe_hosts,
    served,
    stored_documents,
    walk_progress,
)
from .support import PREFIX, WIRE

SECRET_KEY = "the-academy's-session-signing-key"


class RecordingConfig(Config):
    """app.config that remembers every key read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def signed_in(base, email):
    """A requests.Session that signed in through the host's form (its session cookie kept)."""
    session = requests.Session()
    home = session.post(f"{base}/login", data={"email": email, "password": PASSWORD})
    assert home.status_code == 200 and "Signed in as" in home.text
    return session


def stored(user, course):
    """Our record, raw."""
    return get_db().courseprogresses.find_one({"user": user, "course": course})


@pytest.fixture
def academy(example_uri, monkeypatch):
    """The host (its config recording what is read), and the fixed school in its database."""
    monkeypatch.setattr(Flask, "config_class", RecordingConfig)
    app = host.create_app({"MONGODB_URI": example_uri, "SECRET_KEY": SECRET_KEY})
    return app, School.fixed(lambda number: ObjectId()).store(get_db())


@WIRE
def test_students_and_the_instructor_use_progress_with_the_hosts_session(academy):
    """The walk through progress with Flask-Login's cookie; no JWT anywhere."""
    app, school = academy
    with served(app) as base:
        ada, bob, grace = (signed_in(base, f"{name}@example.com") for name in ("ada", "bob", "grace"))
        walk_progress(base + PREFIX, ada, bob, grace, school, stored)
        assert requests.get(f"{base}{PREFIX}/{school.course}").json() == {"status": "fail",
                                                                          "message": "Authentication required"}
    assert "flask-jwt-extended" not in app.extensions
    assert not [key for key in app.config.read if key.startswith("JWT_")]
    assert not [key for key in app.config if key.startswith("JWT_")]


@WIRE
def test_signing_out_ends_access_at_once(academy):
    """logout_user(): the next progress call is 401, as the host's own /me is."""
    app, school = academy
    with served(app) as base:
        ada = signed_in(base, "ada@example.com")
        url = f"{base}{PREFIX}/{school.course}/lectures/{school.lectures[0]}"
        assert ada.patch(url, json={"isCompleted": True}).status_code == 200
        assert ada.get(f"{base}/me").status_code == 200
        ada.post(f"{base}/logout")
        refused = ada.patch(url, json={"isCompleted": False})
        assert (refused.status_code, refused.json()) == (401, {"status": "fail", "message": "Authentication required"})
        assert ada.get(f"{base}/me").status_code == 401
    assert stored(school.ada, school.course)["lectureProgress"][0]["isCompleted"] is True


@WIRE
def test_the_hosts_own_pages_may_write_and_other_origins_may_not(academy):
    """The session cookie is sent by the browser on its own: writes from another origin are 403,
    from the host's own origin (its pages) they pass, with no CLIENT_URL set."""
    app, school = academy
    assert "CLIENT_URL" not in app.config
    with served(app) as base:
        ada = signed_in(base, "ada@example.com")
        url = f"{base}{PREFIX}/{school.course}/lectures/{school.lectures[0]}"
        foreign = ada.patch(url, json={"isCompleted": True}, headers={"Origin": "https://evil.example"})
        assert (foreign.status_code, foreign.json()["message"]) == (403, "Origin not allowed")
        assert stored(school.ada, school.course) is None
        own = ada.patch(url, json={"isCompleted": True}, headers={"Origin": base})
        assert own.status_code == 200 and own.json()["data"]["completionPercentage"] == 33
        from_page = ada.post(f"{base}{PREFIX}/{school.course}/complete", headers={"Referer": f"{base}/"})
        assert from_page.json()["data"]["completionPercentage"] == 100


@WIRE
def test_the_host_is_as_it_was_with_progress_mounted(example_uri):
    """Config, its session, its pages' answers and its documents: the same with the mount."""

    def drive(app, base):
        """The host's own sign-in, pages and enrolling, on a fresh copy of the fixed school."""
        db = get_db()
        db.client.drop_database(db.name)
        school = School.fixed(lambda number: ObjectId(f"{number:024x}")).store(db)
        bob = signed_in(base, "bob@example.com")
        session = app.session_interface.get_signing_serializer(app).loads(bob.cookies["session"])
        answers = []
        for client, method, path in [(bob, "GET", "/"), (bob, "GET", "/me"),
                                     (bob, "POST", f"/programs/{school.course}/enroll"),
                                     (bob, "POST", f"/programs/{'f' * 24}/enroll"), (requests, "GET", "/me"),
                                     (bob, "POST", "/logout"), (bob, "GET", "/me")]:
            answer = client.request(method, base + path, allow_redirects=False)
            answers.append((method, path, answer.status_code, answer.headers.get("Content-Type"), answer.content))
        wrong = requests.post(f"{base}/login", data={"email": "bob@example.com", "password": "wrong"})
        answers.append(("login", wrong.status_code, wrong.content))
        return {"session": session, "answers": answers, "documents": stored_documents(db)}

    def build(mounted):
        return host.create_app({"MONGODB_URI": example_uri, "SECRET_KEY": SECRET_KEY, "MOUNT_PROGRESS": mounted})

    seen = observe_hosts([False, True], build, drive)
    assert {**seen[True]["config"], "MOUNT_PROGRESS": None} == {**seen[False]["config"], "MOUNT_PROGRESS": None}
    assert {**seen[True], "config": None} == {**seen[False], "config": None}
    plain = seen[False]
    assert plain["session"]["_user_id"] == f"{3:024x}"
    assert [answer[2] for answer in plain["answers"][:-1]] == [200, 200, 200, 404, 401, 302, 401]
    assert plain["answers"][-1] == ("login", 401, b"Wrong email or password.")
    assert plain["documents"]["courses"][0]["enrolledStudents"] == [ObjectId(f"{2:024x}"), ObjectId(f"{3:024x}")]
