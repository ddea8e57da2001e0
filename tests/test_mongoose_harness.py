"""What real Mongoose 8 (the original LMS) sends to courseprogresses, pinned on the wire server.

Each test drives the original's CourseProgress model through tests/mongoose/driver.js, reads
the commands Mongoose sent (command monitoring) and the stored document (pymongo). Another
writer (standing in for our service) is plain pymongo, interleaved between Mongoose's read and
its save. These pins are what the service's conditional writes must coexist with.
"""
from datetime import datetime, timezone

import pytest
from bson import ObjectId

from .mongoose_driver import sent, updates

pytestmark = pytest.mark.wire


def _oid(hex_id):
    """An ObjectId from the driver's hex form."""
    return ObjectId(hex_id)


def _seed(mongoose, lectures=3, completed=0):
    """A record as the original's first PATCH creates it; returns (user, course, lectures, _id)."""
    user, course = ObjectId(), ObjectId()
    lecture_ids = [ObjectId() for _ in range(lectures)]
    answer = mongoose.ok("create", user=user, course=course, lectures=lecture_ids,
                         completed=lecture_ids[:completed])
    mongoose.commands()  # the insert: pinned by its own test
    return user, course, lecture_ids, _oid(answer["doc"]["_id"])


def _load(mongoose, user, course):
    """A hydrated document (findOne) kept in the driver; returns (handle, doc as JSON)."""
    answer = mongoose.ok("load", user=user, course=course)
    mongoose.commands()  # the findOne
    return answer["handle"], answer["doc"]


def _other_writer_completes(db, record_id, index):
    """Our service's kind of write: one entry completed, derived fields, and __v bumped."""
    stored = db.courseprogresses.find_one({"_id": record_id})
    entries = stored["lectureProgress"]
    done = sum(entry["isCompleted"] or number == index for number, entry in enumerate(entries))
    percentage = round(done * 100 / len(entries))
    result = db.courseprogresses.update_one(
        {"_id": record_id, "__v": stored["__v"]},
        {"$set": {f"lectureProgress.{index}.isCompleted": True,
                  "completionPercentage": percentage, "isCompleted": percentage == 100},
         "$inc": {"__v": 1}})
    assert result.modified_count == 1
    return db.courseprogresses.find_one({"_id": record_id})


def test_create_inserts_the_whole_document_at_version_zero(mongoose, mongoose_db):
    """create() is one insert: defaults, timestamps, an _id per entry, __v 0, the hook's figures."""
    user, course = ObjectId(), ObjectId()
    lectures = [ObjectId() for _ in range(3)]
    answer = mongoose.ok("create", user=user, course=course, lectures=lectures, completed=lectures[:1])

    inserts = sent(mongoose.commands(), "insert")
    assert len(inserts) == 1 and len(inserts[0]["documents"]) == 1
    document = inserts[0]["documents"][0]
    assert set(document) == {"_id", "user", "course", "isCompleted", "completionPercentage",
                             "lectureProgress", "lastAccessed", "createdAt", "updatedAt", "__v"}
    assert (document["user"], document["course"]) == (user, course)
    assert document["__v"] == 0 and document["completionPercentage"] == 33
    # js-bson sends an integral Number as int32, so the figures are BSON ints, not doubles.
    assert type(document["completionPercentage"]) is int
    assert type(document["lectureProgress"][0]["watchTime"]) is int
    assert document["isCompleted"] is False
    assert document["createdAt"] == document["updatedAt"]
    # Entries carry their own _id; an unset lastWatched is absent, not null.
    assert [set(entry) for entry in document["lectureProgress"]] == [{"_id", "lecture", "isCompleted", "watchTime"}] * 3
    assert [entry["isCompleted"] for entry in document["lectureProgress"]] == [True, False, False]
    assert all(isinstance(entry["_id"], ObjectId) for entry in document["lectureProgress"])

    stored = mongoose_db.courseprogresses.find_one({"user": user, "course": course})
    assert stored["_id"] == document["_id"] == _oid(answer["doc"]["_id"])
    assert stored["lectureProgress"] == document["lectureProgress"]
    assert stored["createdAt"] == document["createdAt"] and stored["__v"] == 0


@pytest.mark.parametrize("field, value, derived", [
    ("isCompleted", True, {"completionPercentage": 33}),
    ("watchTime", 120, {}),
    ("lastWatched", datetime(2026, 11, 26, 19, 30, tzinfo=timezone.utc), {}),
])
def test_entry_field_save_sets_the_path_filtered_on_version_without_increment(
        mongoose, mongoose_db, field, value, derived):
    """lp[i].field = x; save(): $set of that path (+ changed figures + updatedAt), q {_id, __v}."""
    user, course, _, record_id = _seed(mongoose)
    before = mongoose_db.courseprogresses.find_one({"_id": record_id})
    handle, _ = _load(mongoose, user, course)

    mongoose.ok("setEntryField", handle=handle, index=1, field=field, value=value)
    mongoose.ok("save", handle=handle)

    commands = mongoose.commands()
    assert [entry["name"] for entry in commands] == ["update"]
    (statement,) = updates(commands)
    assert statement["q"] == {"_id": record_id, "__v": 0}
    update = statement["u"]
    assert set(update) == {"$set"}, "no $inc of __v for a change inside an existing entry"
    updated_at = update["$set"]["updatedAt"]
    assert update["$set"] == {f"lectureProgress.1.{field}": value, "updatedAt": updated_at, **derived}
    assert updated_at > before["updatedAt"]
    assert not statement.get("upsert") and not statement.get("multi")

    stored = mongoose_db.courseprogresses.find_one({"_id": record_id})
    assert stored["__v"] == 0 and stored["updatedAt"] == updated_at
    assert stored["lectureProgress"][1][field] == value
    assert stored["lectureProgress"][0] == before["lectureProgress"][0]
    assert stored["lastAccessed"] == before["lastAccessed"], "the model never touches lastAccessed itself"


def test_completing_the_last_entry_also_sets_the_top_level_flag(mongoose, mongoose_db):
    """The hook's figures are in the $set only when they change: here both do."""
    user, course, _, record_id = _seed(mongoose, lectures=2, completed=1)
    handle, _ = _load(mongoose, user, course)

    mongoose.ok("setEntryField", handle=handle, index=1, field="isCompleted", value=True)
    mongoose.ok("save", handle=handle)

    (statement,) = updates(mongoose.commands())
    assert statement["q"] == {"_id": record_id, "__v": 0}
    assert statement["u"] == {"$set": {"lectureProgress.1.isCompleted": True, "completionPercentage": 100,
                                       "isCompleted": True, "updatedAt": statement["u"]["$set"]["updatedAt"]}}
    stored = mongoose_db.courseprogresses.find_one({"_id": record_id})
    assert (stored["completionPercentage"], stored["isCompleted"], stored["__v"]) == (100, True, 0)


def test_push_save_sends_push_each_with_increment_and_no_version_filter(mongoose, mongoose_db):
    """lectureProgress.push(e); save(): $push {$each: [e]}, $inc __v, filtered on _id ALONE."""
    user, course, _, record_id = _seed(mongoose, lectures=2, completed=1)
    handle, _ = _load(mongoose, user, course)
    new_lecture = ObjectId()

    pushed = mongoose.ok("pushEntry", handle=handle, entry={"lecture": new_lecture})["doc"]["lectureProgress"][-1]
    mongoose.ok("save", handle=handle)

    (statement,) = updates(mongoose.commands())
    assert statement["q"] == {"_id": record_id}, "Mongoose does not filter a $push on __v"
    update = statement["u"]
    entry = {"lecture": new_lecture, "isCompleted": False, "watchTime": 0, "_id": _oid(pushed["_id"])}
    assert update == {"$push": {"lectureProgress": {"$each": [entry]}},
                      "$set": {"updatedAt": update["$set"]["updatedAt"], "completionPercentage": 33},
                      "$inc": {"__v": 1}}

    stored = mongoose_db.courseprogresses.find_one({"_id": record_id})
    assert stored["__v"] == 1 and stored["lectureProgress"][2] == entry
    assert stored["completionPercentage"] == 33


def test_reassign_save_sets_the_whole_array_filtered_on_version_with_increment(mongoose, mongoose_db):
    """lectureProgress = [...]; save(): $set of the whole array + figures, $inc __v, q {_id, __v}."""
    user, course, lectures, record_id = _seed(mongoose, lectures=2)
    handle, loaded = _load(mongoose, user, course)
    entries = [{"lecture": lecture, "isCompleted": True} for lecture in lectures]

    assigned = mongoose.ok("reassign", handle=handle, entries=entries)["doc"]["lectureProgress"]
    mongoose.ok("save", handle=handle)

    (statement,) = updates(mongoose.commands())
    assert statement["q"] == {"_id": record_id, "__v": 0}
    update = statement["u"]
    whole = [{"lecture": lecture, "isCompleted": True, "watchTime": 0, "_id": _oid(entry["_id"])}
             for lecture, entry in zip(lectures, assigned)]
    assert update == {"$set": {"lectureProgress": whole, "updatedAt": update["$set"]["updatedAt"],
                               "completionPercentage": 100, "isCompleted": True},
                      "$inc": {"__v": 1}}
    # New subdocuments: fresh entry _ids, not the loaded ones.
    assert {entry["_id"] for entry in assigned}.isdisjoint(entry["_id"] for entry in loaded["lectureProgress"])

    stored = mongoose_db.courseprogresses.find_one({"_id": record_id})
    assert stored["__v"] == 1 and stored["lectureProgress"] == whole


@pytest.mark.parametrize("edit", ["setEntryField", "reassign"])
def test_stale_versioned_save_answers_version_error_and_writes_nothing(mongoose, mongoose_db, edit):
    """Another writer bumped __v between load and save: the __v-filtered update matches nothing."""
    user, course, lectures, record_id = _seed(mongoose, lectures=2)
    handle, _ = _load(mongoose, user, course)
    ours = _other_writer_completes(mongoose_db, record_id, index=0)

    if edit == "setEntryField":
        mongoose.ok("setEntryField", handle=handle, index=1, field="watchTime", value=30)
    else:
        mongoose.ok("reassign", handle=handle, entries=[{"lecture": lectures[1]}])
    answer = mongoose.call("save", handle=handle)

    assert answer["ok"] is False and answer["error"] == "VersionError"
    (statement,) = updates(mongoose.commands())
    assert statement["q"] == {"_id": record_id, "__v": 0}
    assert mongoose_db.courseprogresses.find_one({"_id": record_id}) == ours


def test_stale_push_is_not_version_checked_and_lands_with_stale_figures(mongoose, mongoose_db):
    """A $push save after another writer's change succeeds; its hook figures are from the stale copy."""
    user, course, _, record_id = _seed(mongoose, lectures=2, completed=1)
    handle, _ = _load(mongoose, user, course)  # Mongoose's copy: 1 of 2 done, 50
    _other_writer_completes(mongoose_db, record_id, index=1)  # stored: 2 of 2 done, 100, True, __v 1

    mongoose.ok("pushEntry", handle=handle, entry={"lecture": ObjectId()})
    assert mongoose.ok("save", handle=handle)["doc"]["__v"] == 1

    (statement,) = updates(mongoose.commands())
    assert statement["q"] == {"_id": record_id}
    # 1 of 3 as Mongoose's copy saw it; isCompleted stayed false in the copy, so it is not sent.
    assert statement["u"]["$set"] == {"updatedAt": statement["u"]["$set"]["updatedAt"],
                                      "completionPercentage": 33}
    stored = mongoose_db.courseprogresses.find_one({"_id": record_id})
    assert [entry["isCompleted"] for entry in stored["lectureProgress"]] == [True, True, False]
    # The other writer's flag survives, but the stored figures contradict the entries
    # (2 of 3 is 67 and not completed): 33 from Mongoose, isCompleted true from the other writer.
    assert (stored["completionPercentage"], stored["isCompleted"], stored["__v"]) == (33, True, 2)


def test_create_after_another_insert_of_the_pair_answers_duplicate_key(mongoose, mongoose_db):
    """The original's first PATCH (findOne: none, then create) loses to an insert in between."""
    user, course = ObjectId(), ObjectId()
    assert mongoose.ok("load", user=user, course=course)["handle"] is None
    theirs = {"_id": ObjectId(), "user": user, "course": course, "isCompleted": False,
              "completionPercentage": 0, "lectureProgress": [], "__v": 0}
    mongoose_db.courseprogresses.insert_one(theirs)
    mongoose.commands()

    answer = mongoose.call("create", user=user, course=course, lectures=[ObjectId()])

    assert answer["ok"] is False
    assert (answer["error"], answer["code"]) == ("MongoServerError", 11000)
    assert answer["keyValue"] == {"user": str(user), "course": str(course)}
    assert len(sent(mongoose.commands(), "insert")) == 1
    assert list(mongoose_db.courseprogresses.find({"user": user, "course": course})) == [theirs]


def test_record_without_version_key_is_saved_without_version_filter(mongoose, mongoose_db):
    """A record stored with no __v: the element save filters on _id only; a push creates __v 1."""
    user, course, lecture = ObjectId(), ObjectId(), ObjectId()
    record_id = mongoose_db.courseprogresses.insert_one({
        "user": user, "course": course, "isCompleted": False, "completionPercentage": 0,
        "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": False, "watchTime": 0}],
    }).inserted_id
    handle, loaded = _load(mongoose, user, course)
    assert "__v" not in loaded

    mongoose.ok("setEntryField", handle=handle, index=0, field="isCompleted", value=True)
    mongoose.ok("save", handle=handle)
    (element,) = updates(mongoose.commands())
    assert element["q"] == {"_id": record_id} and "$inc" not in element["u"]
    assert "__v" not in mongoose_db.courseprogresses.find_one({"_id": record_id})

    mongoose.ok("pushEntry", handle=handle, entry={"lecture": ObjectId()})
    mongoose.ok("save", handle=handle)
    (push,) = updates(mongoose.commands())
    assert push["q"] == {"_id": record_id} and push["u"]["$inc"] == {"__v": 1}
    assert mongoose_db.courseprogresses.find_one({"_id": record_id})["__v"] == 1


def test_save_without_changes_reads_instead_of_writing(mongoose, mongoose_db):
    """No modified path: no update (updatedAt untouched), only a findOne by _id to check existence."""
    user, course, _, record_id = _seed(mongoose)
    before = mongoose_db.courseprogresses.find_one({"_id": record_id})
    handle, _ = _load(mongoose, user, course)

    mongoose.ok("save", handle=handle)

    commands = mongoose.commands()
    assert [entry["name"] for entry in commands] == ["find"]
    assert sent(commands, "find")[0]["filter"] == {"_id": record_id}
    assert mongoose_db.courseprogresses.find_one({"_id": record_id}) == before


@pytest.mark.parametrize("edit, error", [
    (None, "DocumentNotFoundError"),
    ("setEntryField", "VersionError"),
    ("pushEntry", "VersionError"),
])
def test_save_of_a_deleted_record(mongoose, mongoose_db, edit, error):
    """Deleted between load and save: any versioned save says VersionError, not DocumentNotFoundError."""
    user, course, _, record_id = _seed(mongoose)
    handle, _ = _load(mongoose, user, course)
    mongoose_db.courseprogresses.delete_one({"_id": record_id})

    if edit == "setEntryField":
        mongoose.ok(edit, handle=handle, index=0, field="isCompleted", value=True)
    elif edit == "pushEntry":
        mongoose.ok(edit, handle=handle, entry={"lecture": ObjectId()})
    answer = mongoose.call("save", handle=handle)

    assert (answer["ok"], answer["error"]) == (False, error)
    assert mongoose_db.courseprogresses.count_documents({}) == 0, "save never upserts"


def test_bad_commands_answer_errors_and_the_driver_keeps_serving(mongoose):
    """The protocol never kills the process: each bad command gets an error answer."""
    assert mongoose.call("no-such-op")["error"] == "UnknownOp"
    assert mongoose.call("save", handle=10**6)["error"] == "HandleError"
    user, course, _, _ = _seed(mongoose, lectures=1)
    handle, _ = _load(mongoose, user, course)
    assert mongoose.call("setEntryField", handle=handle, index=5, field="isCompleted", value=True)["error"] == "RangeError"
    assert mongoose.call("setEntryField", handle=handle, index=0, field="user", value=1)["error"] == "TypeError"
    assert mongoose.ok("load", user=user, course=course)["doc"]["lectureProgress"][0]["isCompleted"] is False
