"""Test helpers: tokens, the embedded server, the LMS's data, an API client."""
import base64
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import mongoengine
import mongomock
import pymongo
import pytest
from bson import ObjectId

SECRET = "test-secret-key-that-is-at-least-32-bytes-long"
PREFIX = "/api/v1/progress"
# Run a test on mongomock and on the real wire server, or on the wire server only.
BOTH = pytest.mark.parametrize("db_uri", ["mongomock", "wire"], indirect=True)
WIRE = pytest.mark.parametrize("db_uri", ["wire"], indirect=True)


def make_token(user_id, secret=SECRET, claim="sub", expires_in=600, algorithm="HS256", **extra):
    """A JWT as the LMS's sign-in would issue it; `expires_in=None` leaves out exp."""
    payload = {claim: user_id if not isinstance(user_id, ObjectId) else str(user_id),
               "iat": int(time.time())}
    if expires_in is not None:
        payload["exp"] = int(time.time()) + expires_in
    payload.update(extra)
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64(data):
    """base64url without padding, as JWTs write it."""
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged(header, payload, key=b""):
    """A token with any header, HMAC-SHA256-signed with `key` (PyJWT refuses to build these)."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{b64(signature)}"


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def secantus_command():
    """The SecantusDB daemon next to this Python."""
    found = Path(sys.executable).with_name("secantusd-py")
    return str(found) if found.exists() else shutil.which("secantusd-py")


class EmbeddedServer:
    """A SecantusDB daemon in a subprocess: can be stopped and started again on its data."""

    def __init__(self, storage, port=None, args=()):
        """A daemon on `storage`; `args` are extra flags (e.g. --enable-test-commands)."""
        self.storage = Path(storage)
        self.port = port or free_port()
        self.args = list(args)
        self.process = None

    def uri(self, database="test"):
        """A MongoDB URI for one database on this server."""
        return f"mongodb://127.0.0.1:{self.port}/{database}?directConnection=true"

    def start(self, timeout=30):
        """Start the daemon and wait until it answers a ping."""
        self.process = subprocess.Popen(
            [secantus_command(), "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", str(self.storage), "--log-level", "WARNING", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = pymongo.MongoClient(self.uri(), serverSelectionTimeoutMS=500)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.admin.command("ping")
                    return self
                except pymongo.errors.PyMongoError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the embedded MongoDB-wire server did not start")
                    time.sleep(0.2)
        finally:
            client.close()

    def stop(self, kill=False):
        """Stop the daemon (SIGKILL with kill=True) and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _mongomock_find_with_expressions():
    """Teach mongomock what find projections with aggregation expressions do (MongoDB 4.4+).

    mongomock refuses `{"enrolled": {"$in": [...]}}` in a find projection, which the real
    servers take; its aggregation evaluates the same expressions, so such a find runs as
    $match + $project there. The gap is mongomock's, so it is filled here, not in the product.
    """
    original = mongomock.collection.Collection.find
    if getattr(original, "expressions_filled", False):
        return

    def find(self, filter=None, projection=None, *args, **kwargs):
        """find, with aggregation expressions in the projection evaluated by $project."""
        if isinstance(projection, dict) and any(
                isinstance(value, dict) and any(str(key).startswith("$") for key in value)
                for value in projection.values()):
            return iter(list(self.aggregate([{"$match": filter or {}}, {"$project": projection}])))
        return original(self, filter, projection, *args, **kwargs)

    find.expressions_filled = True
    mongomock.collection.Collection.find = find


_mongomock_find_with_expressions()


def _mongomock_bulk_takes_sort():
    """Let mongomock's bulk_write take pymongo 4.9+'s UpdateOne/ReplaceOne, which hand their
    builder a `sort` argument mongomock does not know (None unless asked for: ignored)."""
    builder = mongomock.collection.BulkOperationBuilder
    if getattr(builder.add_update, "sort_filled", False):
        return
    for name in ("add_update", "add_replace"):
        original = getattr(builder, name)

        def without_sort(self, *args, sort=None, _original=original, **kwargs):
            """The builder's method, with `sort` (unset) left out."""
            assert sort is None, "mongomock cannot sort a bulk update"
            return _original(self, *args, **kwargs)

        without_sort.sort_filled = True
        setattr(builder, name, without_sort)


_mongomock_bulk_takes_sort()


def database_config(db_uri):
    """(config, disconnect) pointing an app at `db_uri`.

    A wire URI is the app's MONGODB_URI. A mongomock:// one becomes a MongoEngine connection
    to an in-memory fake under an alias of its own, which the app uses through
    PROGRESS_DB_ALIAS, as a host's connection: the product knows nothing of mongomock.
    """
    if not db_uri.startswith("mongomock://"):
        return {"MONGODB_URI": db_uri}, lambda: None
    alias = f"mock-{uuid.uuid4().hex[:8]}"
    mongoengine.connect(alias=alias, host="mongodb://" + db_uri[len("mongomock://"):], tz_aware=True,
                        uuidRepresentation="standard", mongo_client_class=mongomock.MongoClient)
    return {"PROGRESS_DB_ALIAS": alias}, lambda: mongoengine.disconnect(alias)


def start_embedded_server(storage):
    """A started EmbeddedServer on a fresh storage directory."""
    return EmbeddedServer(storage).start()


def utc_ms(**delta):
    """An aware UTC datetime at millisecond precision, shifted by `delta`."""
    now = datetime.now(timezone.utc) + timedelta(**delta)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Lms:
    """Writes the host LMS's collections in the original Node app's shape.

    The one place tests get their students and courses from: every student it creates is
    enrolled in every course it creates (before or after), as in a class where everyone
    signed up; `user(enrolled=False)` makes one who is not (contract section 8).
    """

    def __init__(self, db):
        """Write to the pymongo database `db`."""
        self.db = db
        self.students = []
        self.courses = []

    def user(self, role="student", name="Ada Student", enrolled=True, **fields):
        """Insert a user (with a password hash that must never be served); returns its id."""
        user_id = ObjectId()
        self.db.users.insert_one({
            "_id": user_id, "name": name, "email": f"{user_id}@example.com", "role": role,
            "password": "$2b$10$abcdefghijklmnopqrstuvSECRETHASHxxxxxxxxxxxxxxxxxxxx",
            "avatar": fields.pop("avatar", None), "__v": 0, **fields,
        })
        if role == "student" and enrolled:
            self.students.append(user_id)
            if self.courses:
                self.db.courses.update_many({"_id": {"$in": self.courses}, "enrolledStudents": {"$type": "array"}},
                                            {"$push": {"enrolledStudents": user_id}})
        return user_id

    def course(self, lectures=3, instructor=None, durations=None, **fields):
        """Insert a course with `lectures` new lectures; returns (course_id, [lecture_ids]).

        Its `enrolledStudents` are this LMS's students unless `fields` says otherwise
        (`enrolledStudents=[...]`, or `no_enrollment_list=True` for a course without the field).
        `durations`: each lecture's `duration` in seconds (default: none).
        """
        lecture_ids = [ObjectId() for _ in range(lectures)]
        if lecture_ids:
            self.db.lectures.insert_many([
                {"_id": lecture, "title": f"Lecture {index + 1}", "order": index + 1, "__v": 0,
                 **({"duration": durations[index]} if durations else {})}
                for index, lecture in enumerate(lecture_ids)
            ])
        course_id = ObjectId()
        document = {
            "_id": course_id, "title": fields.pop("title", "Course"), "thumbnail": None,
            "instructor": instructor or ObjectId(), "lectures": lecture_ids,
            "enrolledStudents": list(self.students), "__v": 0,
        }
        if fields.pop("no_enrollment_list", False):
            del document["enrolledStudents"]
        document.update(fields)
        self.db.courses.insert_one(document)
        self.courses.append(course_id)
        return course_id, lecture_ids

    def enroll(self, user_id, course_id):
        """Add a user to a course's enrolledStudents."""
        self.db.courses.update_one({"_id": course_id}, {"$addToSet": {"enrolledStudents": user_id}})

    def drop(self, user_id, course_id):
        """Remove a user from a course's enrolledStudents (the student dropped the course)."""
        self.db.courses.update_one({"_id": course_id}, {"$pull": {"enrolledStudents": user_id}})

    def set_lectures(self, course_id, lecture_ids):
        """The host edits the course's lecture list."""
        self.db.courses.update_one({"_id": course_id}, {"$set": {"lectures": list(lecture_ids)}})

    def record(self, user_id, course_id):
        """The stored progress document, raw."""
        return self.db.courseprogresses.find_one({"user": user_id, "course": course_id})


class Api:
    """The progress API as one student calls it (Bearer by default, or the `token` cookie)."""

    def __init__(self, client, user_id, token=None):
        self.client = client
        self.user_id = user_id
        self.token = token or make_token(user_id)

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, course_id, headers=None):
        """GET /:courseId"""
        return self.client.get(f"{PREFIX}/{course_id}", headers=self._headers(headers))

    def patch(self, course_id, lecture_id, body, headers=None, raw=False):
        """PATCH /:courseId/lectures/:lectureId with a JSON body (or raw text)."""
        data = body if raw else json.dumps(body)
        return self.client.patch(f"{PREFIX}/{course_id}/lectures/{lecture_id}", data=data,
                                 headers=self._headers(headers))

    def complete(self, course_id, headers=None):
        """POST /:courseId/complete"""
        return self.client.post(f"{PREFIX}/{course_id}/complete", headers=self._headers(headers))

    def reset(self, course_id, headers=None):
        """POST /:courseId/reset"""
        return self.client.post(f"{PREFIX}/{course_id}/reset", headers=self._headers(headers))


@contextmanager
def mounted_database(db_uri="mongomock://localhost/host"):
    """Config keys giving a host app a database for the test's length (see database_config)."""
    config, disconnect = database_config(db_uri)
    try:
        yield config
    finally:
        disconnect()


def close_mounts(app):
    """Close the clients the app's mounts made for themselves (a host's connection stays)."""
    for mount in app.extensions.get("progress", {}).values():
        mount.database.close()
