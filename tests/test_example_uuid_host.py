"""examples/uuid_host over real HTTP on the wire server: UUID ids in MongoEngine's collection names.

Progress reads the host's `course`, `lecture` and `user` with `MongoCatalog(parse_id=uuid.UUID)`,
stores the host's UUIDs the way MongoEngine's UUIDField does by default (binary subtype 3),
and the host's own ProgressRecord document finds the records. Through a client of the mount's
own the URI must say so (uuidRepresentation=pythonLegacy): the doctor names it otherwise.
"""
import uuid

import pymongo
import requests
from bson import Binary, UuidRepresentation
from mongoengine.connection import get_db

from examples import uuid_host as host
from examples.uuid_host.models import ProgressRecord
from progress_service.progress import MongoCatalog, Progress, mount_of

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
from .support import PREFIX, SECRET, WIRE, make_token

HOST_NAMES = {"users": "user", "courses": "course", "lectures": "lecture"}


def signed_in(base, email):
    """A requests.Session holding the host's token cookie for `email`."""
    session = requests.Session()
    assert session.post(f"{base}/login", json={"email": email, "password": PASSWORD}).status_code == 200
    return session


def stored(user, course):
    """Our record, raw, through the host's connection (UUIDs read back as UUIDs)."""
    return get_db().courseprogresses.find_one({"user": user, "course": course})


@WIRE
def test_students_and_the_instructor_use_progress_with_uuid_ids(example_uri):
    """The walk through progress, then the host's own ProgressRecord finds the record by UUID."""
    app = host.create_app({"MONGODB_URI": example_uri, "JWT_SECRET_KEY": SECRET})
    school = School.fixed(lambda number: uuid.uuid4()).store(get_db(), HOST_NAMES)
    with served(app) as base:
        ada, bob, grace = (signed_in(base, f"{name}@example.com") for name in ("ada", "bob", "grace"))
        walk_progress(base + PREFIX, ada, bob, grace, school, stored)
        # The host's own query by id (its ReferenceField to Person) finds what we stored.
        assert ada.get(f"{base}/me/progress").json() == [{"course": "Flask 101", "percentage": 67, "completed": False}]
        assert [record.course.title for record in ProgressRecord.objects(user=school.ada)] == ["Flask 101"]
        not_uuid = ada.get(f"{base}{PREFIX}/{'a' * 24}")
        assert (not_uuid.status_code, not_uuid.json()) == (400, {"status": "fail", "message": "Invalid request",
                                                                 "errors": {"courseId": ["Not a valid id."]}})
        batch = ada.patch(f"{base}{PREFIX}/{school.course}/lectures",
                          json={"lectures": [{"lecture": str(school.lectures[2]), "isCompleted": True},
                                             {"lecture": "3", "isCompleted": True}]})
        assert batch.json()["errors"] == {"lectures": {"1": {"lecture": ["Not a valid id."]}}}
    # As MongoEngine's UUIDField stores them by default: binary subtype 3.
    raw = pymongo.MongoClient(example_uri).get_default_database().courseprogresses.find_one()
    assert raw["user"] == Binary.from_uuid(school.ada, UuidRepresentation.PYTHON_LEGACY)
    assert raw["lectureProgress"][0]["lecture"] == Binary.from_uuid(school.lectures[0], UuidRepresentation.PYTHON_LEGACY)
    assert raw["lectureProgress"][0]["lecture"].subtype == 3


@WIRE
def test_a_token_for_nobody_of_the_hosts_is_refused_by_its_user_lookup(example_uri):
    """The host's loaders decide on our routes too: a subject its user_lookup_loader cannot find is 401."""
    app = host.create_app({"MONGODB_URI": example_uri, "JWT_SECRET_KEY": SECRET})
    client = app.test_client()
    client.set_cookie("access_token_cookie", make_token("6b0897dc94f58f7a4a4533b4", type="access"))
    answer = client.get(f"{PREFIX}/{uuid.uuid4()}")
    assert (answer.status_code, answer.json) == (401, {"status": "fail", "message": "Invalid token"}), \
        "the host's user lookup finds nobody"


def mount_with_own_client(uri, alias, options=""):
    """The host with a mount that reads the database through a client of its own (made from the
    URI with `options`: the host's connection is made first, from the URI alone)."""
    app = host.create_app({"MONGODB_URI": uri, "JWT_SECRET_KEY": SECRET, "MOUNT_PROGRESS": False})
    app.config.update(PROGRESS_DB_ALIAS=alias, MONGODB_URI=uri + options)
    Progress(app, catalog=MongoCatalog(parse_id=uuid.UUID, **HOST_NAMES))
    return app


@WIRE
def test_a_mount_with_its_own_client_stores_uuids_as_the_uri_says(example_uri):
    """Its own client: with uuidRepresentation=pythonLegacy in the URI, the host finds our records;
    without it, the doctor says what to change."""
    school = School.fixed(lambda number: uuid.uuid4())
    app = mount_with_own_client(example_uri, "progress-own", "&uuidRepresentation=pythonLegacy")
    school.store(get_db(), HOST_NAMES)
    mount = mount_of(app)
    try:
        assert not mount.database.uses_host_connection
        client = app.test_client()
        client.set_cookie("access_token_cookie", make_token(str(school.ada), type="access"))
        written = client.patch(f"{PREFIX}/{school.course}/lectures/{school.lectures[0]}", json={"isCompleted": True})
        assert written.status_code == 200, written.json
        assert [record.completion_percentage for record in ProgressRecord.objects(user=school.ada)] == [33]
    finally:
        mount.database.close()

    unsaid = mount_with_own_client(example_uri, "progress-own-standard")
    try:
        result = unsaid.test_cli_runner().invoke(args=["progress", "doctor"])
        assert result.exit_code == 1
        assert "UUIDs stored the legacy way" in result.output
        assert "add uuidRepresentation=pythonLegacy to MONGODB_URI" in result.output
    finally:
        mount_of(unsaid).database.close()


@WIRE
def test_the_host_is_as_it_was_whether_progress_is_mounted_before_or_after_its_jwt_manager(example_uri):
    """Config, its login's token, its routes' answers and its documents: the same in all three."""
    config = {"MONGODB_URI": example_uri, "JWT_SECRET_KEY": SECRET}

    def drive(app, base):
        """The host's own sign-in and routes, on a fresh copy of the fixed school."""
        db = get_db()
        db.client.drop_database(db.name)
        school = School.fixed(lambda number: uuid.UUID(int=number)).store(db, HOST_NAMES)
        ada, bob = signed_in(base, "ada@example.com"), signed_in(base, "bob@example.com")
        calls = [(ada, "GET", "/me"), (ada, "GET", "/me/progress"), (bob, "POST", f"/courses/{school.course}/enroll"),
                 (bob, "POST", "/courses/not-a-uuid/enroll"), (ada, "GET", "/courses"), (requests, "GET", "/me")]
        answers = []
        for session, method, path in calls:
            answer = session.request(method, base + path)
            answers.append((method, path, answer.status_code, answer.headers["Content-Type"], answer.content))
        return {"token": token_shape(ada.cookies["access_token_cookie"]), "answers": answers,
                "documents": stored_documents(db)}

    seen = observe_hosts([None, "after", "before"], lambda order: build_in_order(host, config, order), drive)
    assert seen["after"] == seen[None]
    assert seen["before"] == seen[None]
    plain = seen[None]
    assert plain["token"][0] == {"alg": "HS256", "typ": "JWT"}
    assert plain["token"][1]["sub"] == str(uuid.UUID(int=2))
    assert [answer[2] for answer in plain["answers"]] == [200, 200, 200, 404, 200, 401]
    enrolled = plain["documents"]["course"][0]["enrolledStudents"]
    assert enrolled == [uuid.UUID(int=2), uuid.UUID(int=3)]
    assert "courseprogresses" not in plain["documents"]

