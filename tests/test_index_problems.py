"""The unique (user, course) index, when the database will not give it (contract section 2).

Writes need it: without it two first writes can create two records. When it cannot be had
(a non-unique index in its place, a user without the right to create indexes, duplicates
that make the build fail), writes answer 503 naming the problem, /readyz answers 503 with
the reason, reads go on, and the log tells the operator what to do. Against a real wire
server, whose failCommand fail point gives the database's own refusal (code 13).
"""
import logging

import pymongo
import pytest
from bson import ObjectId

from progress_service import create_app
from progress_service.progress import mount_of
from progress_service.progress.database import IndexGuard

from .support import SECRET, Api, EmbeddedServer, Lms, utc_ms


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory):
    """A SecantusDB daemon with test commands on, so a command can be made to fail."""
    server = EmbeddedServer(tmp_path_factory.mktemp("failpoints"), args=["--enable-test-commands"]).start()
    yield server
    server.stop()


@pytest.fixture
def setting(failing_server, request, monkeypatch):
    """(app, lms, admin client) on a fresh database of the fail-point server."""
    monkeypatch.setattr(IndexGuard, "RECHECK_SECONDS", 0)
    name = f"idx_{ObjectId()}"
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": failing_server.uri(name)})
    client = pymongo.MongoClient(failing_server.uri(), tz_aware=True)
    yield app, Lms(client[name]), client
    client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    mount_of(app).database.close()
    client.close()


def fail_index_creation(client, code):
    """Every createIndexes answers `code`, as a database would."""
    client.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn",
                          "data": {"failCommands": ["createIndexes"], "errorCode": code}})


def assert_refused_and_reads_go_on(app, lms, words):
    """A write is 503 naming the problem; GET still answers; /readyz says why."""
    student = lms.user()
    course, lectures = lms.course(2)
    api = Api(app.test_client(), student)
    refused = api.patch(course, lectures[0], {"isCompleted": True})
    assert refused.status_code == 503 and refused.json["status"] == "error"
    assert all(word in refused.json["message"] for word in words), refused.json
    assert refused.headers["Retry-After"]
    assert lms.db.courseprogresses.count_documents({"user": student}) == 0
    assert api.get(course).json == {"status": "fail", "message": "No progress record found for this user and course"}
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and all(word in ready.json["message"] for word in words)
    return api, course, lectures


def test_a_non_unique_index_in_its_place_refuses_writes_until_it_is_dropped(setting, caplog):
    """The original operator's plain (user, course) index is not taken as ours."""
    app, lms, client = setting
    lms.db.courseprogresses.create_index([("user", 1), ("course", 1)], name="user_1_course_1")
    with caplog.at_level(logging.ERROR, logger="progress_service"):
        api, course, lectures = assert_refused_and_reads_go_on(app, lms, ["not unique", "dropIndex"])
    assert any("writes refused" in record.getMessage() and "dropIndex" in record.getMessage()
               for record in caplog.records)

    lms.db.courseprogresses.drop_index("user_1_course_1")
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    assert lms.db.courseprogresses.index_information()["user_1_course_1"]["unique"] is True
    assert app.test_client().get("/readyz").status_code == 200


def test_a_user_who_may_not_create_indexes_gets_a_503_naming_the_grant(setting):
    """createIndexes refused with Unauthorized (13): the operator is told to grant it or create it."""
    app, lms, client = setting
    fail_index_creation(client, 13)
    api, course, lectures = assert_refused_and_reads_go_on(app, lms, ["may not create the index", "createIndex"])
    client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200


def test_duplicates_that_make_the_build_fail_are_named(setting):
    """Two records of one (user, course) already stored: the unique build fails (11000), writes wait."""
    app, lms, client = setting
    twin = {"user": ObjectId(), "course": ObjectId(), "lectureProgress": [], "updatedAt": utc_ms(), "__v": 0}
    lms.db.courseprogresses.insert_many([dict(twin), dict(twin)])
    api, course, lectures = assert_refused_and_reads_go_on(app, lms, ["duplicates", "user_1_course_1"])
    lms.db.courseprogresses.delete_one({"user": twin["user"]})
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    assert lms.db.courseprogresses.index_information()["user_1_course_1"]["unique"] is True
