"""The example host LMS (examples/host_lms) in tests: build it, fill it, sign in, call progress.

The host connects through flask-mongoengine under MongoEngine's default alias, as it does in
production; `make_host` forgets that connection after the test so the next one starts clean.
"""
from urllib.parse import urlsplit

import mongoengine
import mongomock
import pytest
from bson import ObjectId
from mongoengine.connection import get_db
from werkzeug.security import generate_password_hash

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

    def make(mongo=None, **config):
        """A host app on the test database; `config` overrides its settings."""
        settings = {"JWT_SECRET_KEY": SECRET, "MONGODB_SETTINGS": mongo or host_mongo(db_uri), "CLIENT_URL": ALLOWED}
        app = create_host({**settings, **config})
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
