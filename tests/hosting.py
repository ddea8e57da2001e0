"""The example hosts (examples/) in tests: build them, fill them, sign in, call progress.

examples/host_lms connects through flask-mongoengine under MongoEngine's default alias, as it
does in production; `make_host` forgets that connection after the test so the next one starts
clean. The other examples are driven over real HTTP (`served`), on a fixed small school
(`School`), with one walk through the progress API for all (`walk_progress`) and one
comparison of the host with and without the mount (`observe_hosts`).
"""
import base64
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import mongoengine
import mongomock
import pytest
import requests
from bson import ObjectId
from flask import Flask
from mongoengine.connection import get_db
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

import examples.host_lms as host_lms
from examples.host_lms import create_app as create_host
from examples.host_lms.models import Course, Lecture, User

from .support import SECRET

ALLOWED = "https://lms.example"
EVIL = "https://evil.example"
PASSWORD = "correct horse"
FAST_HASH = "pbkdf2:sha256:1000"  # the host's hashing, made cheap for tests
HOST_ALIAS = mongoengine.DEFAULT_CONNECTION_NAME
MOUNT_NAME = "lms_progress"


def host_mongo(db_uri, **extra):
    """The host's MONGODB_SETTINGS for the test database (mongomock or the wire server)."""
    if db_uri.startswith("mongomock://"):
        return {"host": "mongodb://" + db_uri[len("mongomock://"):], "mongo_client_class": mongomock.MongoClient,
                **extra}
    return {"host": db_uri, **extra}


@pytest.fixture
def make_host(db_uri):
    """Build host apps on one fresh database (several may share it); disconnect afterwards."""
    assert HOST_ALIAS not in mongoengine.connection._connection_settings, "a test left the default alias connected"

    def make(mongo=None, order="after", **config):
        """A host app on the test database; `config` overrides its settings. `order` "before":
        progress mounted before the host's JWTManager (see build_in_order)."""
        settings = {"JWT_SECRET_KEY": SECRET, "MONGODB_SETTINGS": mongo or host_mongo(db_uri), "CLIENT_URL": ALLOWED,
                    **config}
        app = create_host(settings) if order == "after" else build_in_order(host_lms, settings, order)
        # This test's database, not an earlier app's (see the flask-mongoengine note in create_app).
        assert get_db(HOST_ALIAS).name == urlsplit(settings["MONGODB_SETTINGS"]["host"]).path.lstrip("/")
        return app

    yield make
    mongoengine.disconnect(HOST_ALIAS)


@pytest.fixture
def campus(make_host):
    """The example host with progress mounted, and its data."""
    return Campus(make_host())


def host_db():
    """The host's pymongo database (the one the progress feature shares)."""
    return get_db(HOST_ALIAS)


def stored(user_id, course_id):
    """The stored progress document, raw, from the host's database."""
    return host_db().courseprogresses.find_one({"user": user_id, "course": course_id})


class Campus:
    """The host's data, sign-in and progress URLs, through its test client.

    Like tests.support.Lms, every student it makes is enrolled in every course it makes
    (before or after), through the host's own `Course.students`; `account(enrolled=False)`
    makes one who is not.
    """

    def __init__(self, app, prefix=None):
        """Drive `app` through its own test client."""
        self.app = app
        self.client = app.test_client()
        self.prefix = prefix or app.config["LMS_PROGRESS_PREFIX"]
        self.students = []
        self.courses = []

    def account(self, name="Ada Learner", role="student", enrolled=True):
        """A host account with a password."""
        user = User(name=name, email=f"{ObjectId()}@lms.example", role=role,
                    password_hash=generate_password_hash(PASSWORD, FAST_HASH)).save()
        if role == "student" and enrolled:
            self.students.append(user)
            if self.courses:
                Course.objects(id__in=self.courses).update(add_to_set__students=user)
        return user

    def course(self, lectures=3, instructor=None, title="Flask 101", durations=None, enrolled=None):
        """A host course with its lectures; returns (course, [lecture ids]).

        `enrolled`: its students (default: every student made so far and later).
        """
        course = Course(id=ObjectId(), title=title, instructor=instructor,
                        students=self.students if enrolled is None else list(enrolled))
        course.lectures = [Lecture(course=course, title=f"Lesson {i + 1}",
                                   duration=durations[i] if durations else None).save()
                           for i in range(lectures)]
        course.save()
        if enrolled is None:
            self.courses.append(course.id)
        return course, [lecture.id for lecture in course.lectures]

    def add_lecture(self, course, title, position=None):
        """The host adds a lecture to its course (at the end, or at `position`); returns its id."""
        lecture = Lecture(course=course, title=title).save()
        lectures = list(course.lectures)
        lectures.insert(len(lectures) if position is None else position, lecture)
        course.lectures = lectures
        course.save()
        return lecture.id

    def login(self, user, client=None):
        """Sign in on the host: its cookie lands in the client."""
        response = (client or self.client).post("/login", json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    def url(self, course_id, *rest):
        """A progress URL under the host's prefix."""
        return "/".join([self.prefix, str(course_id), *map(str, rest)])

    def patch(self, course_id, lecture_id, body, client=None, **kwargs):
        """PATCH one lecture with the client's cookie."""
        return (client or self.client).patch(self.url(course_id, "lectures", lecture_id), json=body, **kwargs)


# --- any example host, over real HTTP ----------------------------------------------------------

ORIGINAL_NAMES = {"users": "users", "courses": "courses", "lectures": "lectures"}
# Claims whose value changes on every sign-in: only their presence is compared.
VARYING_CLAIMS = ("iat", "exp", "jti", "nbf", "csrf")


@contextmanager
def served(app):
    """The app behind a real threaded HTTP server on a free port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def example_uri(db_uri):
    """The wire database an example host connects to (MongoEngine's default alias), forgotten after."""
    assert HOST_ALIAS not in mongoengine.connection._connection_settings, "a test left the default alias connected"
    yield db_uri
    mongoengine.disconnect(HOST_ALIAS)


@dataclass
class School:
    """A fixed small school: Grace teaches Flask 101 (three lectures of 120 s); Ada is enrolled, Bob not."""

    grace: object
    ada: object
    bob: object
    course: object
    lectures: list

    @classmethod
    def fixed(cls, make_id):
        """Its ids from `make_id(1..7)` (fixed ones: two runs store the same documents)."""
        grace, ada, bob, course, *lectures = (make_id(number) for number in range(1, 8))
        return cls(grace, ada, bob, course, lectures)

    def store(self, db, names=ORIGINAL_NAMES):
        """Write it as raw documents in the original LMS's shape (each password is PASSWORD)."""
        hashed = password_hash()
        db[names["users"]].insert_many([
            {"_id": self.grace, "name": "Grace Hopper", "email": "grace@example.com", "password": hashed,
             "role": "instructor"},
            {"_id": self.ada, "name": "Ada Lovelace", "email": "ada@example.com", "password": hashed, "role": "student"},
            {"_id": self.bob, "name": "Bob Outsider", "email": "bob@example.com", "password": hashed, "role": "student"},
        ])
        db[names["lectures"]].insert_many([{"_id": lecture, "title": title, "duration": 120}
                                           for lecture, title in zip(self.lectures, ("Intro", "Routing", "Testing"))])
        db[names["courses"]].insert_one({"_id": self.course, "title": "Flask 101", "instructor": self.grace,
                                         "lectures": self.lectures, "enrolledStudents": [self.ada]})
        return self


_HASH = []


def password_hash():
    """PASSWORD hashed once (cheaply): the same stored hash in every run."""
    if not _HASH:
        _HASH.append(generate_password_hash(PASSWORD, FAST_HASH))
    return _HASH[0]


def walk_progress(progress_url, student, stranger, instructor, school, stored):
    """The progress API over HTTP as a host's users meet it: the enrolled student reads and writes,
    the stranger gets 403, the instructor sees the summary; `stored(user, course)` is the raw record.

    `student`, `stranger` and `instructor` are requests.Sessions signed in on the host.
    """
    course, lectures = str(school.course), [str(lecture) for lecture in school.lectures]
    url = f"{progress_url}/{course}"
    assert student.get(url).json() == {"status": "fail", "message": "No progress record found for this user and course"}
    first = student.patch(f"{url}/lectures/{lectures[0]}", json={"isCompleted": True})
    assert first.status_code == 200, first.text
    data = first.json()["data"]
    assert data["user"] == {"_id": str(school.ada), "name": "Ada Lovelace", "email": "ada@example.com", "avatar": None}
    assert data["course"] == {"_id": course, "title": "Flask 101", "thumbnail": None}
    assert [(entry["lecture"], entry["isCompleted"]) for entry in data["lectureProgress"]] == \
        [(lectures[0], True), (lectures[1], False), (lectures[2], False)]
    # 110 of the lecture's 120 s: watching completes it.
    watched = student.patch(f"{url}/lectures/{lectures[1]}", json={"watchTime": 110}).json()["data"]
    assert (watched["completionPercentage"], watched["resume"]) == (67, {"lecture": lectures[2], "watchTime": 0})
    assert student.get(url).json()["data"] == watched
    record = stored(school.ada, school.course)
    assert (record["user"], record["course"]) == (school.ada, school.course), "stored as the host's ids"
    assert [entry["lecture"] for entry in record["lectureProgress"]] == list(school.lectures)
    assert (record["completionPercentage"], record["isCompleted"]) == (67, False)

    refused = stranger.patch(f"{url}/lectures/{lectures[0]}", json={"isCompleted": True})
    assert (refused.status_code, refused.json()) == (403, {"status": "fail", "message": "Not enrolled in this course"})
    assert stored(school.bob, school.course) is None

    summary = instructor.get(f"{url}/summary").json()
    assert summary["data"].pop("asOf")
    assert summary == {"status": "success", "data": {
        "students": 1, "completed": 0, "averagePercentage": 67.0,
        "lectures": [{"lecture": lectures[0], "title": "Intro", "completed": 1},
                     {"lecture": lectures[1], "title": "Routing", "completed": 1},
                     {"lecture": lectures[2], "title": "Testing", "completed": 0}]}}
    assert student.get(f"{url}/summary").status_code == 403
    return watched


def token_shape(token):
    """A JWT's header and claims, read without verifying; claims that change on every sign-in
    (times, ids, the CSRF value) only say that they are there."""
    header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                      for part in token.split(".")[:2])
    return header, {key: "(varies)" if key in VARYING_CLAIMS else value for key, value in claims.items()}


def stored_documents(db):
    """Every document of every collection, in _id order: what the host stored."""
    return {name: list(db[name].find().sort("_id", 1)) for name in sorted(db.list_collection_names())}


def build_in_order(host, config, order):
    """An example JWT host (a module with load_config, connect_database, register_auth,
    register_routes, mount_progress) built step by step: the mount nowhere (None), after its
    JWTManager ("after", as its create_app does) or before it ("before")."""
    app = Flask(host.__name__)
    host.load_config(app, config)
    host.connect_database(app)
    if order == "before":
        host.mount_progress(app)
    host.register_auth(app)
    host.register_routes(app)
    if order == "after":
        host.mount_progress(app)
    return app


def observe_hosts(variants, build, drive):
    """{variant: what the host showed}: each variant built (`build(variant)` -> app), served over
    HTTP and driven (`drive(app, base_url)` -> observations, on a fresh copy of its data); the
    app's config is observed too. Variant None is the host without the mount."""
    seen = {}
    for variant in variants:
        app = build(variant)
        with served(app) as base:
            seen[variant] = {"config": dict(app.config), **drive(app, base)}
    return seen
