"""The path to a cluster (issue 3, point 9): replica set, write concern, read preference, shard key.

The session-wide audit (tests/command_audit.py) checks every command of every wire-server
test for the shard key; here are its unit tests and one full scenario on a replica set.
"""
import uuid

import pymongo
import pytest
from bson import ObjectId
from pymongo import ReadPreference

from progress_service import create_app
from progress_service.progress import mount_of, settings as mount_settings
from progress_service.progress.database import INDEXES, client_settings
from progress_service.progress.models import ProgressServiceRecord
from progress_service.progress.outbox import COLLECTION

from . import command_audit
from .command_audit import AUDIT, INDEX_MANAGEMENT, LIST_QUERIES, SINGLE_RECORD, CommandAudit, classify
from .support import PREFIX, SECRET, Api, Lms, make_token, utc_ms

U, C, ID = ObjectId(), ObjectId(), ObjectId()


# --- the audit itself ---------------------------------------------------------------------

@pytest.mark.parametrize("name,command", [
    ("update", {"update": "courseprogresses", "updates": [{"q": {"_id": ID, "__v": 3}, "u": {}}]}),
    ("update", {"update": "courseprogresses", "updates": [{"q": {"_id": ID, "user": U}, "u": {}}]}),
    ("update", {"update": "courseprogresses", "updates": [{"q": {"user": {"$in": [U]}, "course": C}, "u": {}}]}),
    ("insert", {"insert": "courseprogresses", "documents": [{"_id": ID, "user": U}]}),
    ("delete", {"delete": "courseprogresses", "deletes": [{"q": {"_id": ID}, "limit": 1}]}),
    ("findAndModify", {"findAndModify": "courseprogresses", "query": {"user": U}, "update": {}}),
    ("find", {"find": "courseprogresses", "filter": {"_id": ID}, "limit": 1}),
    ("find", {"find": "courseprogresses", "filter": {"user": U}, "limit": 1}),
    ("find", {"find": "courseprogresses", "filter": {"course": C, "isCompleted": True}}),
    ("find", {"find": "courseprogresses", "filter": {"user": U}, "sort": {"createdAt": 1}}),
    ("aggregate", {"aggregate": "courseprogresses", "pipeline": [{"$match": {}}, {"$group": {"_id": None}}]}),
    ("aggregate", {"aggregate": "courseprogresses", "pipeline": [{"$group": {"_id": "$course"}}]}),
])
def test_the_audit_flags_a_single_record_command_without_the_shard_key(name, command):
    """Fed a command that a sharded cluster could not route to one shard, the audit flags it."""
    kind, problem = classify(name, command)
    assert kind == "violation" and problem.startswith(name)
    audit = CommandAudit()
    audit.record(name, command, __file__)
    assert len(audit.violations) == 1 and audit.kinds == {"violation": 1}


@pytest.mark.parametrize("name,command,expected", [
    ("update", {"update": "courseprogresses", "updates": [{"q": {"_id": ID, "user": U, "course": C, "__v": 2},
                                                           "u": {}}]}, SINGLE_RECORD),
    ("insert", {"insert": "courseprogresses", "documents": [{"_id": ID, "user": U, "course": C}]}, SINGLE_RECORD),
    ("find", {"find": "courseprogresses", "filter": {"$and": [{"user": U}, {"course": {"$eq": C}}]}},
     SINGLE_RECORD),
    # The named list queries and their routing on a cluster sharded on (user, course):
    ("find", {"find": "courseprogresses", "filter": {"user": U}, "sort": {"lastAccessed": -1, "_id": -1}},
     "dashboard"),
    ("aggregate", {"aggregate": "courseprogresses", "pipeline": [{"$match": {"user": U}}, {"$group": {}}]},
     "dashboard"),
    ("find", {"find": "courseprogresses", "filter": {"course": C}, "sort": {"createdAt": 1, "_id": 1}},
     "instructor views"),
    ("aggregate", {"aggregate": "courseprogresses", "pipeline": [{"$match": {"course": C}}]}, "instructor views"),
    ("createIndexes", {"createIndexes": "courseprogresses", "indexes": []}, INDEX_MANAGEMENT),
    ("listIndexes", {"listIndexes": "courseprogresses"}, INDEX_MANAGEMENT),
])
def test_the_audit_accepts_targeted_commands_and_names_the_list_queries(name, command, expected):
    """Both fields by equality pass; the exempt list queries are recognised by their exact shape."""
    assert classify(name, command) == (expected, None)


def test_the_list_queries_are_named_with_their_routing():
    """The dashboard stays on one shard (user is a shard-key prefix); instructor views, the
    upkeep of their figures and the operator's rebuild of every course scatter."""
    assert LIST_QUERIES == {
        "dashboard": "by user, a shard-key prefix: targeted to one shard",
        "instructor views": "by course alone: scatter-gather to every shard",
        "instructor figures": "by course, updatedAt or a batch of _id: scatter-gather to every shard",
        "operator": "every course (rebuild-summaries): scatter-gather to every shard",
    }


def test_the_audit_is_listening_for_the_whole_session():
    """Registered globally at import, before the first client: every later client reports to it."""
    from pymongo import monitoring

    assert AUDIT in monitoring._LISTENERS.command_listeners
    assert command_audit.shard_key_audit is not None


def test_every_unique_index_starts_with_the_shard_key():
    """A sharded collection (shard key user, course) allows unique indexes only on its prefix."""
    unique = [spec for spec in INDEXES if spec.unique]
    assert unique
    for spec in unique:
        assert [field for field, _ in spec.keys[:2]] == ["user", "course"], spec


# --- write concern, read preference, retryable writes ---------------------------------------

def settings_for(uri, **config):
    """The client settings of a mount with this URI and extra config."""
    return client_settings(mount_settings.read({"MONGODB_URI": uri, "MONGODB_WRITE_CONCERN": "majority", **config}))


def test_write_concern_and_read_preference_come_from_config_and_the_uri_wins():
    """Defaults: w majority, primary reads, retryable writes; config changes them; the URI beats config."""
    plain = settings_for("mongodb://db1,db2,db3/lms?replicaSet=rs0")
    assert plain["w"] == "majority" and plain["retryWrites"] is True and "read_preference" not in plain
    assert settings_for("mongodb://db/lms", MONGODB_WRITE_CONCERN="1")["w"] == 1
    assert "w" not in settings_for("mongodb://db/lms?w=2")
    chosen = settings_for("mongodb://db/lms", MONGODB_READ_PREFERENCE="secondaryPreferred")
    assert chosen["read_preference"] == ReadPreference.SECONDARY_PREFERRED
    assert "read_preference" not in settings_for("mongodb://db/lms?readPreference=nearest",
                                                 MONGODB_READ_PREFERENCE="secondary")
    tuned = settings_for("mongodb://db/lms?timeoutMS=20000&serverSelectionTimeoutMS=10000")
    assert "timeoutMS" not in tuned and "serverSelectionTimeoutMS" not in tuned
    assert plain["timeoutMS"] < 10_000 and plain["serverSelectionTimeoutMS"] < 10_000


@pytest.fixture
def replica_set_app(wire_server, request):
    """The app pointed at the wire server as a replica set: discovered by set name, not direct."""
    set_name = pymongo.MongoClient(wire_server.uri()).admin.command("hello")["setName"]
    uri = f"mongodb://127.0.0.1:{wire_server.port}/rs_{uuid.uuid4().hex[:8]}?replicaSet={set_name}"
    extra = getattr(request, "param", {})
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": uri, **extra})
    yield app
    mount_of(app).database.close()


def _service_commands(commands):
    """The commands on courseprogresses, classified like the audit does."""
    return [(name, classify(name, command)[0], command) for name, collection, command in commands
            if collection == "courseprogresses" and name not in ("getMore", "killCursors")]


def test_the_full_scenario_runs_unchanged_on_a_replica_set(replica_set_app):
    """Every endpoint against a replica set; writes majority and retryable; every command targeted or named."""
    app = replica_set_app
    with app.app_context():
        lms = Lms(mount_of(app).database.db())
        teacher = lms.user(role="instructor")
        course, lectures = lms.course(3, instructor=teacher)
        student = lms.user()
    http = app.test_client()
    api = Api(http, student)
    teacher_auth = {"Authorization": f"Bearer {make_token(teacher)}"}
    with AUDIT.capture() as commands:
        calls = {
            "first PATCH": api.patch(course, lectures[0], {"isCompleted": True}),
            "PATCH": api.patch(course, lectures[1], {"isCompleted": True, "watchTime": 12}),
            "batch": http.patch(f"{PREFIX}/{course}/lectures", json={"lectures": [
                {"lecture": str(lectures[2]), "isCompleted": True}]}, headers={"Authorization": f"Bearer {api.token}"}),
            "GET": api.get(course),
            "reset": api.reset(course),
            "complete": api.complete(course),
        }
        with AUDIT.capture() as dashboard_commands:
            calls["dashboard"] = http.get(PREFIX, headers={"Authorization": f"Bearer {api.token}"})
        with AUDIT.capture() as instructor_commands:
            calls["summary"] = http.get(f"{PREFIX}/{course}/summary", headers=teacher_auth)
            calls["students"] = http.get(f"{PREFIX}/{course}/students", headers=teacher_auth)
    assert {name: r.status_code for name, r in calls.items()} == dict.fromkeys(calls, 200)
    topology = mount_of(app).database.db().client.topology_description
    assert topology.topology_type_name == "ReplicaSetWithPrimary"
    assert calls["complete"].json["data"]["completionPercentage"] == 100
    assert calls["summary"].json["data"]["students"] == 1 and calls["students"].json["data"]["total"] == 1

    seen = _service_commands(commands)
    writes = [command for name, _, command in seen if name in ("insert", "update", "findAndModify", "delete")]
    assert len(writes) == 5, [name for name, _, _ in seen]
    for command in writes:
        assert command["writeConcern"] == {"w": "majority"}
        assert "txnNumber" in command, "a retryable write carries a transaction number"
    kinds = {kind for _, kind, _ in seen}
    assert "violation" not in kinds
    assert {kind for _, kind, _ in _service_commands(dashboard_commands)} == {"dashboard"}
    # The first summary counts the course's figures from its records (upkeep.py); the rest
    # reads the figures, another collection.
    assert {kind for _, kind, _ in _service_commands(instructor_commands)} <= {"instructor views",
                                                                                "instructor figures"}
    single = [(name, command) for name, kind, command in seen if kind == SINGLE_RECORD]
    assert single and {name for name, _ in single} >= {"find", "insert", "update"}


@pytest.mark.parametrize("replica_set_app", [{"MONGODB_WRITE_CONCERN": "1",
                                              "MONGODB_READ_PREFERENCE": "secondaryPreferred"}], indirect=True)
def test_configured_write_concern_and_read_preference_reach_the_wire(replica_set_app):
    """MONGODB_WRITE_CONCERN is what writes send; MONGODB_READ_PREFERENCE is what GET reads with.

    A write reads what it changes from the primary whatever the preference: a secondary's
    stale copy would fail the write's condition (spurious 409s) or answer a state that the
    next GET contradicts.
    """
    app = replica_set_app
    with app.app_context():
        lms = Lms(mount_of(app).database.db())
        course, lectures = lms.course(1)
        student = lms.user()
    api = Api(app.test_client(), student)
    with AUDIT.capture() as write_commands:
        assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
        assert api.patch(course, lectures[0], {"isCompleted": False}).status_code == 200
    with AUDIT.capture() as read_commands:
        assert api.get(course).status_code == 200
    seen = _service_commands(write_commands)
    assert [command["writeConcern"] for name, _, command in seen if name in ("insert", "update")] == [{"w": 1}] * 2
    write_reads = [command for name, _, command in seen if name == "find"]
    # On a replica set pymongo sends no $readPreference for primary reads (primary is the default).
    assert len(write_reads) == 2 and all(command.get("$readPreference", {"mode": "primary"}) == {"mode": "primary"}
                                         for command in write_reads)
    get_reads = [command for name, _, command in _service_commands(read_commands) if name == "find"]
    assert get_reads and all(command["$readPreference"] == {"mode": "secondaryPreferred"} for command in get_reads)


@pytest.mark.parametrize("replica_set_app", [{
    "MONGODB_READ_PREFERENCE": "secondary", "PROGRESS_XAPI_ENDPOINT": "http://127.0.0.1:9/xAPI/",
    "PROGRESS_XAPI_HOMEPAGE": "https://lms.example.com"}], indirect=True)
def test_the_outbox_reads_from_the_primary_whatever_the_read_preference(replica_set_app):
    """The relay's reads of the outbox go to the primary: on a secondary, a statement the primary has
    already acknowledged (deleted) would still look due and be sent again. On this one-member set a
    secondary read cannot even be served: the relay would never deliver (server selection times out)."""
    app = replica_set_app
    mount = mount_of(app)
    outbox = mount.database.db()[COLLECTION].with_options(read_preference=ReadPreference.PRIMARY)
    record, created = ObjectId(), utc_ms()
    outbox.insert_many([{"_id": f"s{seq}", "record": record, "version": 0, "seq": seq, "kind": "progressed",
                         "createdAt": created, "state": "pending", "attempts": 0, "body": "{}"} for seq in range(3)])
    with AUDIT.capture() as commands:
        due = mount.outbox.due(10)
        mount.outbox.acknowledge([due[0]["_id"]])
        status = mount.outbox.status()
    assert [document["_id"] for document in due] == ["s0", "s1", "s2"]
    assert status["waiting"] == 2
    reads = [command for name, collection, command in commands
             if collection == COLLECTION and name in ("find", "distinct", "aggregate", "count")]
    assert reads and all(command.get("$readPreference", {"mode": "primary"}) == {"mode": "primary"}
                         for command in reads), reads
