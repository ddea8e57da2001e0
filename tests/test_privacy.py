"""A person's data out and gone (contract section 13): export-user, erase-user, erase-course.

On the wire server with xAPI pointed at an LRS that refuses connections, so every write's
statements wait in the outbox: the export shows them, an erase deletes them with the records.
Each test has another student (and course) whose data must come through untouched.
"""
import json
import logging
import random
import threading
import time

import pymongo
import pytest
from bson import ObjectId
from flask import Flask

from progress_service.progress import Progress, mount_of, signals
from progress_service.progress.privacy import Erased
from progress_service.progress.rule import completion_percentage

from .serving import Gunicorn
from .support import SECRET, Api, Lms, make_token
from .test_xapi import HOMEPAGE, xapi_app
from .unreachable import refused_endpoint

pytestmark = pytest.mark.wire


@pytest.fixture
def endpoint():
    """An LRS endpoint that refuses every connection: statements stay waiting."""
    with refused_endpoint() as url:
        yield url


@pytest.fixture
def app(wire_server, endpoint):
    """The standalone app with xAPI on, on a fresh database."""
    application = xapi_app(wire_server.uri(f"privacy_{ObjectId()}"), endpoint)
    yield application
    mount = mount_of(application)
    mount.relay.stop()
    mount.database.close()


@pytest.fixture
def school(app):
    """Two students (`ada`, to be exported or erased, and `bob`) in two courses, each with one
    lecture completed in both: records, and statements waiting for the LRS."""
    with app.app_context():
        lms = Lms(mount_of(app).database.db())
        ada, bob = lms.user(name="Ada Lovelace"), lms.user(name="Bob Other")
        courses = [lms.course(3, title=f"Course {index}") for index in range(2)]
        client = app.test_client()
        for user in (ada, bob):
            for course, lectures in courses:
                assert Api(client, user).patch(course, lectures[0], {"isCompleted": True}).status_code == 200
        yield School(lms, ada, bob, courses)


class School:
    """The students, the courses, and what is stored of them."""

    def __init__(self, lms, ada, bob, courses):
        self.lms, self.ada, self.bob, self.courses = lms, ada, bob, courses
        self.db = lms.db

    def records(self, **query):
        """The stored records matching `query`, by _id."""
        return {record["_id"]: record for record in self.db.courseprogresses.find(query)}

    def statements(self, records):
        """The outbox documents of these records, by _id."""
        # As stored but the relay's count of its attempts to send them, which goes on meanwhile.
        return {doc["_id"]: doc for doc in self.db.progressxapioutbox.find({"record": {"$in": list(records)}},
                                                                          {"attempts": 0})}

    def snapshot(self, **query):
        """(records, their statements) matching `query`, exactly as stored."""
        records = self.records(**query)
        return records, self.statements(records)


def invoke(app, *args):
    """`flask progress ARGS...` through Flask's CLI runner; the click Result."""
    return app.test_cli_runner().invoke(args=["progress", *args])


def test_export_user_prints_every_record_and_its_waiting_statements(app, school):
    """Both of Ada's records as stored, and each of their statements (parked ones too) as it
    would be sent; nothing of Bob's."""
    records, statements = school.snapshot(user=school.ada)
    parked = next(iter(statements))
    school.db.progressxapioutbox.update_one({"_id": parked}, {"$set": {"state": "parked"}})
    result = invoke(app, "export-user", str(school.ada))
    assert result.exit_code == 0, result.output
    exported = json.loads(result.output)
    assert exported["user"] == str(school.ada)
    assert {record["_id"] for record in exported["records"]} == {str(record) for record in records}
    for record in exported["records"]:
        stored = records[ObjectId(record["_id"])]
        assert record["user"] == str(school.ada) and record["course"] == str(stored["course"])
        assert record["completionPercentage"] == stored["completionPercentage"] == 33
        assert [entry["lecture"] for entry in record["lectureProgress"]] == [
            str(entry["lecture"]) for entry in stored["lectureProgress"]]
        assert record["updatedAt"].endswith("Z") and record["__v"] == stored["__v"]
    assert len(statements) == 4  # per record: the lecture completed, the percentage
    assert {statement["_id"] for statement in exported["statements"]} == set(statements)
    for statement in exported["statements"]:
        assert statement["statement"] == json.loads(statements[statement["_id"]]["body"])
        assert statement["statement"]["actor"]["account"] == {"homePage": HOMEPAGE, "name": str(school.ada)}
        assert statement["state"] == ("parked" if statement["_id"] == parked else "pending")
    assert str(school.bob) not in result.output


def test_export_of_a_stranger_is_empty_and_bad_ids_are_refused(app, school):
    """A user without records exports nothing; an id that is not one is a clean error."""
    result = invoke(app, "export-user", str(ObjectId()))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["records"] == [] and json.loads(result.output)["statements"] == []
    refused = invoke(app, "erase-user", "not-an-id")
    assert refused.exit_code != 0 and "USER_ID" in refused.output and "Traceback" not in refused.output


def test_erase_user_deletes_theirs_only_says_so_in_one_line_and_is_idempotent(app, school, caplog):
    """The CLI: Ada's records and statements are gone, Bob's untouched; one log line and one
    printed line with the counts and nothing about Ada; a second run erases nothing."""
    kept = school.snapshot(user=school.bob)
    with caplog.at_level(logging.INFO, logger="progress_service"):
        result = invoke(app, "erase-user", str(school.ada))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "erased 2 progress records and 4 statements waiting for the LRS"
    # (The relay's own lines about the unreachable LRS are not the erase's.)
    lines = [record.getMessage() for record in caplog.records if record.module == "privacy"]
    assert lines == ["erased a user's progress: 2 records, 4 statements waiting for the LRS"]
    for personal in (str(school.ada), "Ada Lovelace", f"{school.ada}@example.com"):
        assert personal not in result.output and personal not in lines[0]
    assert school.records(user=school.ada) == {}
    assert school.db.progressxapioutbox.count_documents({"body": {"$regex": str(school.ada)}}) == 0
    assert school.snapshot(user=school.bob) == kept
    again = invoke(app, "erase-user", str(school.ada))
    assert again.output.splitlines()[-1] == "erased 0 progress records and 0 statements waiting for the LRS"
    assert school.snapshot(user=school.bob) == kept


def test_erase_course_deletes_every_students_record_of_it_only(app, school):
    """Both students' records of course 0 and their statements go; course 1 stays as it was."""
    (gone, _), (other, _) = school.courses
    kept = school.snapshot(course=other)
    result = invoke(app, "erase-course", str(gone))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "erased 2 progress records and 4 statements waiting for the LRS"
    assert school.records(course=gone) == {}
    assert school.snapshot(course=other) == kept
    assert school.db.progressxapioutbox.count_documents({}) == len(kept[1])
    assert invoke(app, "erase-course", str(gone)).output.splitlines()[-1] == (
        "erased 0 progress records and 0 statements waiting for the LRS")


def test_a_hosts_retirement_code_erases_through_the_mount_and_gets_the_signals(app, school):
    """mount.erase_user / erase_course return the counts and send user_erased / course_erased,
    every time (the counts are 0 the second time)."""
    heard = []

    def note(kind):
        return lambda sender, **kwargs: heard.append((kind, sender, kwargs))

    on_user, on_course = note("user"), note("course")
    signals.user_erased.connect(on_user)
    signals.course_erased.connect(on_course)
    try:
        mount = mount_of(app)
        assert mount.erase_user(school.ada) == Erased(records=2, statements=4)
        assert mount.erase_user(school.ada) == Erased(records=0, statements=0)
        course = school.courses[0][0]
        assert mount.erase_course(course) == Erased(records=1, statements=2)
    finally:
        signals.user_erased.disconnect(on_user)
        signals.course_erased.disconnect(on_course)
    assert heard == [
        ("user", None, {"user_id": school.ada, "records": 2, "statements": 4}),
        ("user", None, {"user_id": school.ada, "records": 0, "statements": 0}),
        ("course", None, {"course_id": course, "records": 1, "statements": 2}),
    ]


def test_statements_an_interrupted_erase_left_behind_go_with_the_next(app, school):
    """An erase stopped after deleting Ada's records (her statements still queued) is finished
    by running it again; Bob's statements stay."""
    kept = school.snapshot(user=school.bob)
    school.db.courseprogresses.delete_many({"user": school.ada})
    assert mount_of(app).erase_user(school.ada) == Erased(records=0, statements=4)
    assert school.db.progressxapioutbox.count_documents({}) == len(kept[1])
    assert school.snapshot(user=school.bob) == kept


def test_a_host_without_an_lrs_erases_records(wire_server):
    """A host's mount without xAPI (no outbox): the records go all the same."""
    host = Flask("host")
    host.config.update(JWT_SECRET_KEY=SECRET, MONGODB_URI=wire_server.uri(f"host_{ObjectId()}"))
    mount = Progress().init_app(host)
    try:
        lms = Lms(mount.database.db())
        ada, bob = lms.user(), lms.user()
        course, lectures = lms.course(2)
        for user in (ada, bob):
            assert Api(host.test_client(), user).patch(course, lectures[1], {"isCompleted": True}).status_code == 200
        assert mount.erase_user(ada) == Erased(records=1, statements=0)
        assert lms.record(ada, course) is None and lms.record(bob, course)["completionPercentage"] == 50
    finally:
        mount.database.close()


# --- an erase racing the student's writes ------------------------------------------------------

MARK = 111.0  # a watchTime only ever written before an erase: a record showing it is pre-erase data
# What a record created by a first write has (an update of a half record would not add createdAt).
WHOLE = {"_id", "user", "course", "isCompleted", "completionPercentage", "lectureProgress", "lastAccessed",
         "createdAt", "updatedAt", "__v"}


class Writer(threading.Thread):
    """A student's browser: PATCHes to the served app, lectures 1-3 of every course, as fast as
    it can: flags with full answers, positions with `Prefer: return=minimal` (no read)."""

    def __init__(self, server, user, courses, seed):
        super().__init__(daemon=True)
        self.server, self.token, self.courses = server, make_token(user), courses
        self.random = random.Random(seed)
        self.statuses = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            course, lectures = self.random.choice(self.courses)
            lecture = self.random.choice(lectures[1:])
            if self.random.random() < 0.5:
                body, headers = {"isCompleted": self.random.random() < 0.5, "watchTime": 5.0}, {}
            else:
                body, headers = {"watchTime": self.random.uniform(1, 50)}, {"Prefer": "return=minimal"}
            answer = self.server.call("PATCH", f"{course}/lectures/{lecture}", token=self.token, body=body,
                                      headers=headers, timeout=30)
            self.statuses.append(answer.status_code)


def check_no_pre_erase_data(db, user, erased_ids, lectures_of):
    """Every record of `user` left is a whole one made after the erase: a new _id, no trace of
    the marked lecture 0, figures matching its entries; every statement of the user belongs to
    one of those records (statements read first: records are only ever added meanwhile)."""
    statements = list(db.progressxapioutbox.find({"user": user}, {"record": 1}))
    records = {record["_id"]: record for record in db.courseprogresses.find({"user": user})}
    for record in records.values():
        assert record["_id"] not in erased_ids
        assert WHOLE <= set(record) and isinstance(record["lectureProgress"], list), record
        lectures = lectures_of[record["course"]]
        entries = {entry["lecture"]: entry for entry in record["lectureProgress"]}
        assert set(entries) == set(lectures), "a whole record: an entry per lecture"
        first = entries[lectures[0]]
        assert first["watchTime"] != MARK and not first["isCompleted"] and first["lastWatched"] is None
        done = sum(1 for lecture in lectures if entries[lecture]["isCompleted"])
        assert record["completionPercentage"] == completion_percentage(done, len(lectures))
    assert len({record["course"] for record in records.values()}) == len(records), "one record per course"
    assert {statement["record"] for statement in statements} <= set(records), "no statement outlives its record"


@pytest.mark.slow
def test_an_erase_racing_the_students_writes_leaves_no_half_record(wire_server, tmp_path, endpoint):
    """gunicorn (2 workers, another process) serves four writers PATCHing the student's records
    while the erase runs, three times; each time, what is left of the student is only what was
    written after, whole; the other student's data is untouched."""
    name = f"race_{ObjectId()}"
    client = pymongo.MongoClient(wire_server.uri(), tz_aware=True)
    db = client[name]
    lms = Lms(db)
    ada, bob = lms.user(), lms.user()
    courses = [lms.course(4) for _ in range(3)]
    lectures_of = dict(courses)
    env = {"PROGRESS_XAPI_ENDPOINT": endpoint, "PROGRESS_XAPI_HOMEPAGE": HOMEPAGE}
    eraser = xapi_app(wire_server.uri(name), endpoint)
    mount = mount_of(eraser)
    with Gunicorn(tmp_path, wire_server.uri(name), workers=2, env=env) as server:
        for course, lectures in courses:
            assert server.call("PATCH", f"{course}/lectures/{lectures[0]}", token=make_token(bob),
                               body={"isCompleted": True}).status_code == 200
        # (Statements as stored but the relay's record of its failed attempts to send them.)
        tries = dict.fromkeys(("attempts", "strikes", "firstStrikeAt", "triedAt", "retryAt", "reason"), 0)
        bobs = lambda: (list(db.courseprogresses.find({"user": bob})),  # noqa: E731
                        list(db.progressxapioutbox.find({"user": bob}, tries)))
        bobs_before = bobs()
        writers = [Writer(server, ada, courses, seed) for seed in range(4)]
        for writer in writers:
            writer.start()
        try:
            for _round in range(3):
                for course, lectures in courses:
                    assert server.call("PATCH", f"{course}/lectures/{lectures[0]}", token=make_token(ada),
                                       body={"watchTime": MARK, "isCompleted": True}).status_code == 200
                time.sleep(0.3)
                erased_ids = {record["_id"] for record in db.courseprogresses.find({"user": ada})}
                assert len(erased_ids) == 3
                erased = mount.erase_user(ada)
                assert erased.records == 3 and erased.statements >= 6
                check_no_pre_erase_data(db, ada, erased_ids, lectures_of)
                time.sleep(0.3)
        finally:
            for writer in writers:
                writer.stopping.set()
            for writer in writers:
                writer.join(30)
        statuses = [status for writer in writers for status in writer.statuses]
        assert statuses and set(statuses) <= {200, 204, 409}, sorted(set(statuses))
        assert db.courseprogresses.count_documents({"user": ada}) > 0, "writes went on after the erase"
        check_no_pre_erase_data(db, ada, erased_ids, lectures_of)
        assert bobs() == bobs_before
        assert mount.erase_user(ada).records > 0 and mount.erase_user(ada) == Erased(0, 0)
    mount.relay.stop()
    mount.database.close()
    client.close()
