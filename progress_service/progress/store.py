"""How a progress record reaches the database: the save rule, then one conditional write.

A write sends only what it changed: the record's computed fields and times, the keys of the
entries it set (`lectureProgress.<i>.<key>`), and new entries at the next index; or, when it
changes most of the stored entries (complete, reset), the list as read with its changes. It is
conditional on the `__v` *and* the `updatedAt` it read: Mongoose does not increment `__v`
when it sets a field of an existing entry, but it always sets `updatedAt`, so any write by
the original app between our read and ours makes ours match nothing, and the caller redoes
it from a fresh read. Nothing is ever lost or computed from a stale read.
"""
from mongoengine import signals
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from . import played
from .models import ProgressServiceRecord


def find(records, user_id, course_id):
    """The raw stored record, or None (the filter carries the whole shard key)."""
    return records.find_one({"user": user_id, "course": course_id})


def is_number(value):
    """A numeric __v ($inc works on it; a bool is not a version)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def apply_rule(record):
    """Run the save rule (the pre_save signal) on a record about to be written, and give it the
    version it will have once written: 0 for a new record, one more than read, or 1 for a
    record stored without a numeric __v."""
    signals.pre_save.send(ProgressServiceRecord, document=record)
    if not record.is_new:
        read_version = record.read_state[0]
        record.version = read_version + 1 if is_number(read_version) else 1


def rewrites_list(lectures):
    """Whether a write sends the whole stored list rather than one path per changed entry:
    when it changes more than half of the stored entries.

    The embedded database applies a `$set` path by path, so a reset of 1,000 watched
    lectures costs it about a second as 1,000 paths and 30 ms as one. The condition on `__v`
    and `updatedAt` makes either safe: the list written is the list read with this write's
    changes, and it is written only if nobody wrote the record since. When few entries
    change, their paths alone are sent, the smaller update.
    """
    stored = lectures.stored_length
    return 2 * sum(1 for index in lectures.changed if index < stored) > stored


def conditional_update(record):
    """(filter, update) storing what this write changed, only if nobody wrote since our read."""
    read_version, read_updated_at = record.read_state
    sets = {
        "completionPercentage": record.completion_percentage, "isCompleted": record.is_completed,
        "completedAt": record.completed_at, "lastAccessed": record.last_accessed,
        "updatedAt": record.updated_at,
    }
    lectures = record.lecture_progress
    if lectures.stored_length is None or rewrites_list(lectures):
        # No list was stored (a migrated record): there is nothing another writer's element
        # update could have touched, and no index to append at. Or this write changes most
        # of the stored entries (complete, reset): the list as read with our changes, in one
        # path. The condition below guarantees it is still the list as read.
        sets["lectureProgress"] = list(lectures.sons)
    else:
        for index, keys in lectures.changed.items():
            if index >= lectures.stored_length:
                continue
            son = lectures.sons[index]
            if len(keys) == 1:
                (key,) = keys
                sets[f"lectureProgress.{index}.{key}"] = son[key]
            else:
                # The entry as read plus this write's keys, at its own index: one path instead
                # of one per key (a reset of 1,000 watched lectures is 1,000 paths, not 3,000;
                # the embedded database applies paths one by one). The condition guarantees
                # nobody changed the entry since it was read.
                sets[f"lectureProgress.{index}"] = son
        # At the next index rather than $push: mongod refuses an update that both pushes to
        # an array and sets a path inside it.
        for index, son in lectures.appended():
            sets[f"lectureProgress.{index}"] = son
    update = {"$set": sets}
    if is_number(read_version):
        update["$inc"] = {"__v": 1}
    else:
        # No __v, null, or not a number: $inc would fail on mongod; the first write gives it one.
        sets["__v"] = record.version
    # {"__v": None} matches a missing __v as well as a null one; the same for updatedAt.
    condition = {"_id": record.id, "user": record.user, "course": record.course,
                 "__v": read_version, "updatedAt": read_updated_at}
    return condition, update


def write(records, record, session=None):
    """Store a record the rule has run on; False when another writer got there first."""
    if record.is_new:
        try:
            records.insert_one(record.to_stored(), session=session)
        except DuplicateKeyError:
            # A simultaneous first write created it: the caller redoes this as an update.
            return False
        return True
    condition, update = conditional_update(record)
    return records.update_one(condition, update, session=session).matched_count == 1


def _position_update(user_id, course_id, change, now):
    """(filter, update) of the position-only update (contract section 2): no read, one atomic
    write of the lecture's first entry and the record's times, with one more __v, so a
    concurrent versioned write notices it. It matches nothing (the caller takes the full path)
    when there is no record yet, no entry for the lecture, no numeric __v to increment, or a
    stored time later than `now` (another machine's clock runs ahead: the full path keeps times
    from running backwards, contract section 12).

    A plain position is two $set paths on the entry; played intervals or an `at` make it a
    pipeline, which merges and orders them in the database (played.position_pipeline).
    """
    condition = {"user": user_id, "course": course_id, "lectureProgress.lecture": change.lecture,
                 "__v": {"$type": "number"},
                 "updatedAt": {"$not": {"$gt": now}}, "lastAccessed": {"$not": {"$gt": now}}}
    if change.played or change.at is not None:
        return condition, played.position_pipeline(change, now)
    return condition, {
        "$set": {"lectureProgress.$.watchTime": change.watch_time, "lectureProgress.$.lastWatched": now,
                 "lastAccessed": now, "updatedAt": now},
        "$inc": {"__v": 1},
    }


def record_position(records, user_id, course_id, change, now):
    """The position-only update; False when it matched nothing."""
    return records.update_one(*_position_update(user_id, course_id, change, now)).matched_count == 1


def record_position_and_read(records, user_id, course_id, change, now):
    """The same update in one findAndModify that answers with the lecture's first entry as
    written (None when it matched nothing): what completion by played seconds needs to know.

    Only the pipeline form comes here: SecantusDB refuses a findAndModify with a positional
    `$` update, which mongod takes.
    """
    condition, update = _position_update(user_id, course_id, change, now)
    found = records.find_one_and_update(
        condition, update, projection={"_id": 0, "lectureProgress": {"$elemMatch": {"lecture": change.lecture}}},
        return_document=ReturnDocument.AFTER)
    return None if found is None else found["lectureProgress"][0]
