"""The unique (user, course) index, when the database will not give it (contract section 2).

Writes need it: without it two first writes can create two records. When it cannot be had
(a non-unique index in its place, a user without the right to create indexes, duplicates
that make the build fail), writes answer 503 naming the problem, /readyz answers 503 with
the reason, reads go on, and the log tells the operator what to do. Against a real wire
server, whose failCommand fail point gives the database's own refusal (code 13).
"""
import logging
import time

import pymongo
import pytest
from bson import ObjectId

from progress_service import create_app
from progress_service.progress import mount_of
from progress_service.progress.database import IndexGuard

from .clients import wait_for
from .support import PREFIX, SECRET, Api, EmbeddedServer, Lms, utc_ms


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
    """A write is 503 naming the problem in the service's words; GET still answers; /readyz says why."""
    student = lms.user()
    course, lectures = lms.course(2)
    api = Api(app.test_client(), student)
    refused = api.patch(course, lectures[0], {"isCompleted": True})
    assert refused.status_code == 503 and refused.json["status"] == "error"
    assert refused.json["message"].startswith("Writes are paused: ") and words in refused.json["message"], refused.json
    assert refused.headers["Retry-After"]
    assert lms.db.courseprogresses.count_documents({"user": student}) == 0
    assert api.get(course).json == {"status": "fail", "message": "No progress record found for this user and course"}
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and ready.json["message"].startswith("Writes are refused: ")
    assert words in ready.json["message"], ready.json
    return api, course, lectures


def logged(caplog, *words):
    """Whether an error line of the service's log has all the words (what the operator reads)."""
    return any(all(word in record.getMessage() for word in words) for record in caplog.records
               if record.levelno >= logging.ERROR)


def test_a_non_unique_index_in_its_place_refuses_writes_until_it_is_dropped(setting, caplog):
    """The original operator's plain (user, course) index is not taken as ours."""
    app, lms, client = setting
    lms.db.courseprogresses.create_index([("user", 1), ("course", 1)], name="user_1_course_1")
    with caplog.at_level(logging.ERROR, logger="progress_service"):
        api, course, lectures = assert_refused_and_reads_go_on(app, lms, "a non-unique index")
    assert logged(caplog, "writes refused", "not unique", "dropIndex('user_1_course_1')")

    lms.db.courseprogresses.drop_index("user_1_course_1")
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    assert lms.db.courseprogresses.index_information()["user_1_course_1"]["unique"] is True
    assert app.test_client().get("/readyz").status_code == 200


def test_a_user_who_may_not_create_indexes_gets_a_503_naming_the_grant(setting, caplog):
    """createIndexes refused with Unauthorized (13): the operator is told to grant it or create it."""
    app, lms, client = setting
    fail_index_creation(client, 13)
    with caplog.at_level(logging.ERROR, logger="progress_service"):
        api, course, lectures = assert_refused_and_reads_go_on(app, lms, "may not create the unique (user, course)")
    assert logged(caplog, "may not create the index user_1_course_1", "grant it createIndex")
    client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200


def test_duplicates_that_make_the_build_fail_are_named(setting, caplog):
    """Two records of one (user, course) already stored: the unique build fails (11000), writes wait."""
    app, lms, client = setting
    twin = {"user": ObjectId(), "course": ObjectId(), "lectureProgress": [], "updatedAt": utc_ms(), "__v": 0}
    lms.db.courseprogresses.insert_many([dict(twin), dict(twin)])
    with caplog.at_level(logging.ERROR, logger="progress_service"):
        api, course, lectures = assert_refused_and_reads_go_on(app, lms, "some student has two records")
    assert logged(caplog, "merge or remove the duplicates", str(twin["user"]))
    lms.db.courseprogresses.delete_one({"user": twin["user"]})
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    assert lms.db.courseprogresses.index_information()["user_1_course_1"]["unique"] is True


# --- contract section 12: rechecked, and no database text in answers -----------------------

def test_no_database_text_reaches_a_client_when_duplicates_block_the_unique_index(setting, caplog):
    """Another student's duplicates block the build: the 503 and /readyz name none of their ids.

    The database's error quotes the database name, the collection and the duplicate key
    (another student's user and course ids); all of it goes to the log, none to a client.
    """
    app, lms, client = setting
    twin = {"user": ObjectId(), "course": ObjectId(), "lectureProgress": [], "updatedAt": utc_ms(), "__v": 0}
    lms.db.courseprogresses.insert_many([dict(twin), dict(twin)])
    student = lms.user()
    course, lectures = lms.course(1)
    with caplog.at_level(logging.ERROR, logger="progress_service"):
        refused = Api(app.test_client(), student).patch(course, lectures[0], {"isCompleted": True})
        ready = app.test_client().get("/readyz")
    assert refused.status_code == 503 and ready.status_code == 503
    assert logged(caplog, str(twin["user"]), str(twin["course"])), "the operator's log has the database's text"
    secrets = (str(twin["user"]), str(twin["course"]), lms.db.name, "E11000", "dup key", "ObjectId", "collection",
               "courseprogresses")
    for answer in (refused, ready):
        text = answer.get_data(as_text=True)
        assert not [secret for secret in secrets if secret in text], text
        assert "{" not in answer.json["message"] and "(" not in answer.json["message"].replace("(user, course)", "")
    assert refused.json == {"status": "error", "message": "Writes are paused: the unique (user, course) index cannot "
                            "be built: some student has two records of one course; retry later"}


@pytest.fixture
def rechecked(monkeypatch):
    """The guard looks at the indexes on every request (instead of every 30 s)."""
    monkeypatch.setattr(IndexGuard, "CHECK_SECONDS", 0, raising=False)


def test_a_unique_index_dropped_while_serving_is_made_again_or_refuses_writes(setting, rechecked):
    """Dropped: the next check makes it again. Dropped with duplicates stored since: writes are 503 until
    they are gone (they were 200, unprotected, when the index was checked only once per process)."""
    app, lms, client = setting
    student = lms.user()
    course, lectures = lms.course(2)
    api = Api(app.test_client(), student)
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    records = lms.db.courseprogresses

    records.drop_index("user_1_course_1")
    assert api.patch(course, lectures[1], {"watchTime": 3}).status_code == 200
    assert records.index_information()["user_1_course_1"]["unique"] is True, "made again"

    records.drop_index("user_1_course_1")
    twin = {"user": ObjectId(), "course": course, "lectureProgress": [], "updatedAt": utc_ms(), "__v": 0}
    records.insert_many([dict(twin), dict(twin)])
    refused = api.patch(course, lectures[1], {"isCompleted": True})
    assert refused.status_code == 503 and "two records" in refused.json["message"]
    assert app.test_client().get("/readyz").status_code == 503
    assert records.find_one({"user": student})["completionPercentage"] == 50, "nothing stored"

    records.delete_one({"user": twin["user"]})
    assert api.patch(course, lectures[1], {"isCompleted": True}).json["data"]["completionPercentage"] == 100
    assert records.index_information()["user_1_course_1"]["unique"] is True
    assert app.test_client().get("/readyz").status_code == 200


def test_a_list_index_dropped_while_serving_costs_speed_not_an_answer(setting):
    """The dashboard (unhinted) and the student list (from the instructor's figures, built by
    windows of createdAt) answer with their indexes dropped, not a 500; the guard's next look
    makes the indexes anew."""
    app, lms, client = setting
    instructor = lms.user(role="instructor")
    student = lms.user()
    course, lectures = lms.course(1, instructor=instructor)
    api = Api(app.test_client(), student)
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    records = lms.db.courseprogresses
    records.drop_index("user_1_lastAccessed_-1__id_-1")
    records.drop_index("course_1_createdAt_1__id_1")

    mine = app.test_client().get(PREFIX, headers=api._headers(None))
    assert mine.status_code == 200, mine.json
    assert [(item["course"]["_id"], item["completionPercentage"]) for item in mine.json["data"]["items"]] == [
        (str(course), 100)]
    theirs = app.test_client().get(f"{PREFIX}/{course}/students", headers=Api(None, instructor)._headers(None))
    assert theirs.status_code == 200 and [item["user"]["_id"] for item in theirs.json["data"]["items"]] == [str(student)]
    mount_of(app).database.indexes.invalidate()  # its next look, as every CHECK_SECONDS
    assert api.get(course).status_code == 200
    assert {"user_1_lastAccessed_-1__id_-1", "course_1_createdAt_1__id_1"} <= set(records.index_information())


def test_an_index_build_longer_than_a_request_goes_on_in_the_background(setting):
    """A build that outlasts the driver's per-operation budget (a large collection): reads are not held
    up by it, writes are 503 "being built", and once it is done writes go on. Built within a request's
    budget it failed every time (mongod aborts an interrupted build), and every request waited for it.
    """
    app, lms, client = setting
    student = lms.user()
    course, lectures = lms.course(1)
    client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1},
                          "data": {"failCommands": ["createIndexes"], "blockConnection": True, "blockTimeMS": 12000}})
    api = Api(app.test_client(), student)
    started = time.monotonic()
    read = api.get(course)  # waits for the build 5 s at most, then reads
    assert read.status_code == 404 and time.monotonic() - started < 9, (read.json, time.monotonic() - started)
    refused = api.patch(course, lectures[0], {"isCompleted": True})
    assert refused.status_code == 503 and "being built" in refused.json["message"]
    assert wait_for(lambda: api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200, 30)
    assert lms.db.courseprogresses.index_information()["user_1_course_1"]["unique"] is True
