"""Learning records (contract section 10): statements reach a real Ralph LRS, none lost, in order.

The app runs in this process with its relay thread; Ralph (tests/lrs.py) stores what arrives
in the wire server. A recording proxy (tests/lrs_proxy.py) stands between them when a test
needs the LRS down, hung, or needs to see the order statements arrived in. What arrived is
counted by id by paging through the LRS, and every statement is checked against Ralph's
strict xAPI models.
"""
import json
import threading
import time

import pytest
from bson import ObjectId

from progress_service import create_app
from progress_service.progress import mount_of, signals, start_background
from progress_service.progress.outbox import COLLECTION, PARKED
from progress_service.progress.present import iso_time
from progress_service.progress.rule import as_utc
from progress_service.progress.xapi import COMPLETED, PROGRESS, PROGRESSED, statement_id

from .clients import wait_for
from .lrs_proxy import LrsProxy
from .support import PREFIX, SECRET, Api, Lms, utc_ms
from .unreachable import refused_endpoint, silent_endpoint
from .xapi import validate_statements

pytestmark = pytest.mark.wire
HOMEPAGE = "https://lms.example.com"


def xapi_app(uri, endpoint, username="u", password="p", **extra):
    """The standalone app with xAPI pointed at `endpoint`."""
    return create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": uri,
                       "PROGRESS_XAPI_ENDPOINT": endpoint, "PROGRESS_XAPI_USERNAME": username,
                       "PROGRESS_XAPI_PASSWORD": password, "PROGRESS_XAPI_HOMEPAGE": HOMEPAGE, **extra})


@pytest.fixture
def setting(wire_server, ralph_lrs, request):
    """(app, lms, lrs, proxy): the app's relay sends through a recording proxy to Ralph."""
    proxy = LrsProxy(ralph_lrs.endpoint)
    app = xapi_app(wire_server.uri(f"xapi_{ObjectId()}"), proxy.endpoint, ralph_lrs.username, ralph_lrs.password)
    mount = mount_of(app)
    with app.app_context():
        yield app, Lms(mount.database.db()), ralph_lrs, proxy
    mount.relay.stop()
    mount.database.close()
    proxy.close()


def outbox(app):
    """The outbox collection of the app's mount."""
    return mount_of(app).database.db()[COLLECTION]


def delivered(app, lrs, user_id):
    """The user's statements in the LRS once the outbox is empty (paged, counted by id)."""
    assert wait_for(lambda: outbox(app).count_documents({"state": "pending"}) == 0, 30), "the outbox drained"
    found = lrs.statements(agent={"objectType": "Agent", "account": {"homePage": HOMEPAGE, "name": str(user_id)}})
    ids = [statement["id"] for statement in found]
    assert len(ids) == len(set(ids)), "each statement exactly once"
    return found


def kinds(statements):
    """(verb, object id tail, progress or completion) of each statement, for comparison."""
    rows = []
    for statement in statements:
        result = statement.get("result", {})
        value = result.get("extensions", {}).get(PROGRESS, result.get("completion"))
        rows.append((statement["verb"]["id"].rsplit("/", 1)[-1], statement["object"]["id"].split(HOMEPAGE)[1], value))
    return rows


def test_what_a_course_tells_the_lrs(setting):
    """Lecture completed, progressed, course completed, reset: exactly the contract's statements, strict xAPI."""
    app, lms, lrs, proxy = setting
    student = lms.user()
    course, lectures = lms.course(2, title="Flask 101")
    api = Api(app.test_client(), student)
    assert api.patch(course, lectures[0], {"watchTime": 10}).status_code == 200  # a position: nothing
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200  # no change: nothing
    assert api.complete(course).status_code == 200
    assert api.reset(course).status_code == 200
    found = delivered(app, lrs, student)
    sent_order = [statement["id"] for batch in proxy.received for statement in batch]
    by_id = {statement["id"]: statement for statement in found}
    assert set(sent_order) == set(by_id)
    in_order = [by_id[i] for i in dict.fromkeys(sent_order)]
    assert kinds(in_order) == [
        ("completed", f"/lectures/{lectures[0]}", True), ("progressed", f"/courses/{course}", 50),
        ("completed", f"/lectures/{lectures[1]}", True), ("progressed", f"/courses/{course}", 100),
        ("completed", f"/courses/{course}", True),
        ("progressed", f"/courses/{course}", 0),
    ]
    assert validate_statements(in_order) == []
    record = lms.record(student, course)
    first = in_order[0]
    assert first["actor"] == {"objectType": "Agent", "account": {"homePage": HOMEPAGE, "name": str(student)}}
    assert first["id"] == statement_id(record["_id"], 1, "lecture-completed", lectures[0])
    assert first["context"]["contextActivities"]["parent"][0]["id"] == f"{HOMEPAGE}/courses/{course}"
    assert in_order[1]["object"]["definition"]["name"] == {"en-US": "Flask 101"}
    assert "Ada" not in json.dumps(found) and "@example.com" not in json.dumps(found)
    assert set(record) >= {"__v"} and not any("xapi" in key.lower() or "statement" in key.lower() for key in record)


def test_statements_are_stored_with_the_change_and_kept_as_built(setting):
    """The outbox holds each statement's exact text, written in the same transaction as the record."""
    app, lms, lrs, proxy = setting
    proxy.refuse()  # the LRS is away: statements wait, exactly as built
    student = lms.user()
    course, lectures = lms.course(1)
    api = Api(app.test_client(), student)
    response = api.patch(course, lectures[0], {"isCompleted": True})
    assert response.status_code == 200
    waiting = list(outbox(app).find({}).sort("seq", 1))
    assert [doc["kind"] for doc in waiting] == ["lecture-completed", "progressed", "course-completed"]
    bodies = [doc["body"] for doc in waiting]
    assert [json.loads(body)["timestamp"] for body in bodies] == [response.json["data"]["updatedAt"]] * 3
    proxy.forward()
    found = delivered(app, lrs, student)
    as_built = {statement["id"]: statement for statement in map(json.loads, bodies)}
    assert proxy.raw_bodies[0] == ("[" + ",".join(bodies) + "]").encode(), "sent byte for byte as stored"
    for statement in found:  # the LRS adds `stored` and `authority`, nothing else changes
        assert {k: v for k, v in statement.items() if k not in ("stored", "authority")} == as_built[statement["id"]]


def test_the_lrs_down_for_a_while_loses_nothing_and_keeps_each_records_order(setting):
    """Writes of three students while the LRS refuses connections; up again: all arrive once, in order."""
    app, lms, lrs, proxy = setting
    proxy.refuse()
    students = [lms.user() for _ in range(3)]
    course, lectures = lms.course(4)
    for round_ in range(4):
        for student in students:
            response = Api(app.test_client(), student).patch(course, lectures[round_], {"isCompleted": True})
            assert response.status_code == 200
    assert outbox(app).count_documents({}) == 3 * 4 * 2 + 3  # per write: lecture + progressed; then the course
    time.sleep(1.5)  # the relay tried and backed off
    assert proxy.attempts > 0 and proxy.received == []
    proxy.forward()
    for student in students:
        found = delivered(app, lrs, student)
        assert len(found) == 9
    arrival = [statement for batch in proxy.received for statement in batch]
    for student in students:
        mine = [s for s in arrival if s["actor"]["account"]["name"] == str(student)]
        # Write order (the progress figure climbs) and, within one write, the contract's order.
        assert [s["result"]["extensions"][PROGRESS] for s in mine if s["verb"]["id"] == PROGRESSED] == [25, 50, 75, 100]
        assert kinds(mine)[:2] == [("completed", f"/lectures/{lectures[0]}", True), ("progressed", f"/courses/{course}", 25)]
        assert kinds(mine)[-1] == ("completed", f"/courses/{course}", True)


@pytest.mark.parametrize("unreachable", [refused_endpoint, silent_endpoint], ids=["refusing", "never answering"])
def test_writes_answer_within_two_seconds_while_the_lrs_is_unreachable(wire_server, unreachable):
    """The request never waits for the LRS: a functional bound, not a benchmark."""
    with unreachable() as lrs:
        endpoint = getattr(lrs, "endpoint", lrs)
        app = xapi_app(wire_server.uri(f"xapi_{ObjectId()}"), endpoint)
        mount = mount_of(app)
        try:
            with app.app_context():
                lms = Lms(mount.database.db())
                student = lms.user()
                course, lectures = lms.course(5)
            start_background(app)
            api = Api(app.test_client(), student)
            for lecture in lectures:
                started = time.monotonic()
                response = api.patch(course, lecture, {"isCompleted": True})
                assert response.status_code == 200 and time.monotonic() - started < 2
            started = time.monotonic()
            assert api.reset(course).status_code == 200 and time.monotonic() - started < 2
            assert mount.relay.running
            assert outbox(app).count_documents({"state": "pending"}) == 5 * 2 + 1 + 1
        finally:
            mount.relay.stop()
            mount.database.close()


def test_a_statement_the_lrs_refuses_for_good_is_parked_and_later_ones_flow(setting):
    """A 409 (another statement under its id) parks it; the record's next statements still arrive."""
    app, lms, lrs, proxy = setting
    proxy.refuse()
    student = lms.user()
    course, lectures = lms.course(2)
    api = Api(app.test_client(), student)
    api.patch(course, lectures[0], {"isCompleted": True})
    first = outbox(app).find_one({"kind": "lecture-completed"})
    squatter = {**json.loads(first["body"]), "result": {"completion": False}}
    assert lrs.post([squatter]).status_code == 200  # a different statement under the same id
    proxy.forward()
    api.patch(course, lectures[1], {"isCompleted": True})
    assert wait_for(lambda: outbox(app).count_documents({"state": "pending"}) == 0, 30)
    parked = list(outbox(app).find({"state": PARKED}))
    assert [doc["_id"] for doc in parked] == [first["_id"]] and "409" in parked[0]["reason"]
    found = delivered(app, lrs, student)
    assert len(found) == 5  # the squatter, the first progressed, and the second write's three
    runner = app.test_cli_runner()
    status = json.loads(runner.invoke(args=["progress", "xapi-status"]).output.splitlines()[0])
    assert (status["waiting"], status["parked"]) == (0, 1)
    squatting = [statement for statement in found if statement["id"] == first["_id"]]
    assert [statement["result"] for statement in squatting] == [{"completion": False}], "the LRS kept its own"


def test_no_endpoint_no_relay_no_thread(app, api, lms):
    """A mount without PROGRESS_XAPI_ENDPOINT has no outbox, no relay, starts no thread."""
    course, lectures = lms.course(1)
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    start_background(app)
    assert mount_of(app).relay is None and mount_of(app).outbox is None
    assert not [thread for thread in threading.enumerate() if thread.name == "progress-xapi-relay"]


def test_signals_are_unchanged_with_xapi_on(setting):
    """Hosts' blinker events still fire as before, once, after the write is stored."""
    app, lms, lrs, proxy = setting
    student = lms.user()
    course, lectures = lms.course(1)
    seen = []
    with signals.lecture_completed.connected_to(lambda sender, **kw: seen.append(("lecture", kw["lecture_id"]))), \
            signals.course_completed.connected_to(lambda sender, **kw: seen.append(("course", None))):
        Api(app.test_client(), student).patch(course, lectures[0], {"isCompleted": True})
    assert seen == [("lecture", lectures[0]), ("course", None)]
    assert len(delivered(app, lrs, student)) == 3


def test_xapi_without_transactions_refuses_to_start(tmp_path):
    """A standalone (non replica set) database: start_background raises, writes answer 503, saying why."""
    from .support import EmbeddedServer

    server = EmbeddedServer(tmp_path / "standalone", args=["--standalone"]).start()
    try:
        with refused_endpoint() as endpoint:
            app = xapi_app(server.uri("xapi_standalone"), endpoint)
            mount = mount_of(app)
            with pytest.raises(Exception, match="no transactions"):
                start_background(app)
            with app.app_context():
                lms = Lms(mount.database.db())
                student = lms.user()
                course, lectures = lms.course(1)
            response = Api(app.test_client(), student).patch(course, lectures[0], {"isCompleted": True})
            assert response.status_code == 503 and "transactions" in response.json["message"]
            assert lms.record(student, course) is None, "no write without its statements"
            mount.relay.stop()
            mount.database.close()
    finally:
        server.stop()


def test_the_cli_sends_parked_statements_again(setting):
    """xapi-retry: parked ones pending again and sent now; the status command counts them."""
    app, lms, lrs, proxy = setting
    proxy.reject(400)  # refused for good while the LRS misbehaves
    student = lms.user()
    course, lectures = lms.course(1)
    Api(app.test_client(), student).patch(course, lectures[0], {"isCompleted": True})
    assert wait_for(lambda: outbox(app).count_documents({"state": PARKED}) == 3, 30)
    proxy.forward()
    mount_of(app).relay.stop()  # the CLI sends them itself, like a second process would
    result = app.test_cli_runner().invoke(args=["progress", "xapi-retry"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1]) == {"retried": 3, "waiting": 0, "parked": 0,
                                                          "oldest_waiting_seconds": None}
    assert len(delivered(app, lrs, student)) == 3


def test_a_mongoose_write_between_ours_is_counted_from_and_never_announced(wire_server, ralph_lrs, mongoose):
    """The original app completes a lecture between our writes: our next statements start from it.

    Ours: L0 completed (33 %). Theirs (real Mongoose): L1 completed, no statement. Ours: L2
    completed: the progress goes 67 -> 100 as stored, not 33 -> 100 as we last wrote it.
    """
    proxy = LrsProxy(ralph_lrs.endpoint)
    app = xapi_app(wire_server.uri(mongoose.database), proxy.endpoint, ralph_lrs.username, ralph_lrs.password)
    mount = mount_of(app)
    try:
        with app.app_context():
            lms = Lms(mount.database.db())
            student = lms.user()
            course, lectures = lms.course(3)
        api = Api(app.test_client(), student)
        assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
        handle = mongoose.ok("load", user=student, course=course)["handle"]
        mongoose.ok("setEntryField", handle=handle, index=1, field="isCompleted", value=True)
        assert mongoose.ok("save", handle=handle)
        assert api.patch(course, lectures[2], {"isCompleted": True}).json["data"]["completionPercentage"] == 100
        found = delivered(app, ralph_lrs, student)
        order = [statement["id"] for batch in proxy.received for statement in batch]
        by_id = {statement["id"]: statement for statement in found}
        assert kinds([by_id[i] for i in dict.fromkeys(order)]) == [
            ("completed", f"/lectures/{lectures[0]}", True), ("progressed", f"/courses/{course}", 33),
            ("completed", f"/lectures/{lectures[2]}", True), ("progressed", f"/courses/{course}", 100),
            ("completed", f"/courses/{course}", True)]
        assert validate_statements(found) == []
    finally:
        mount.relay.stop()
        mount.database.close()
        proxy.close()


def test_times_never_run_backwards_after_a_write_by_a_machine_whose_clock_runs_ahead(wire_server):
    """Another machine, five minutes ahead, wrote the record last: our write's time is taken after the
    read and never earlier than the stored one, so updatedAt, lastAccessed and the statements' times keep
    climbing along the versions; the no-read position update leaves the times to the full path then."""
    with refused_endpoint() as endpoint:
        app = xapi_app(wire_server.uri(f"xapi_{ObjectId()}"), endpoint)
        mount = mount_of(app)
        try:
            with app.app_context():
                lms = Lms(mount.database.db())
                student = lms.user()
                course, lectures = lms.course(2)
            ahead = utc_ms(minutes=5)
            lms.db.courseprogresses.insert_one({
                "_id": ObjectId(), "user": student, "course": course, "isCompleted": False,
                "completionPercentage": 0, "completedAt": None, "lastAccessed": ahead, "createdAt": ahead,
                "updatedAt": ahead, "__v": 3,
                "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": False, "watchTime": 0,
                                     "lastWatched": None} for lecture in lectures]})
            api = Api(app.test_client(), student)
            answer = api.patch(course, lectures[0], {"isCompleted": True}).json["data"]
            stored = lms.record(student, course)
            assert stored["__v"] == 4 and as_utc(stored["updatedAt"]) >= ahead and as_utc(stored["lastAccessed"]) >= ahead
            assert answer["updatedAt"] == iso_time(stored["updatedAt"])
            statements = list(outbox(app).find({"record": stored["_id"]}).sort("seq", 1))
            assert [as_utc(doc["createdAt"]) for doc in statements] == [as_utc(stored["updatedAt"])] * 2
            assert {json.loads(doc["body"])["timestamp"] for doc in statements} == {answer["updatedAt"]}

            minimal = api.patch(course, lectures[1], {"watchTime": 12}, headers={"Prefer": "return=minimal"})
            assert minimal.status_code == 204
            after = lms.record(student, course)
            assert after["__v"] == 5 and after["lectureProgress"][1]["watchTime"] == 12
            assert as_utc(after["updatedAt"]) >= as_utc(stored["updatedAt"])
            assert as_utc(after["lastAccessed"]) >= as_utc(stored["lastAccessed"])
            assert as_utc(after["lectureProgress"][1]["lastWatched"]) >= ahead
        finally:
            mount.relay.stop()
            mount.database.close()
