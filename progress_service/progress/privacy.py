"""A person's data out and gone (contract section 13): export a user's, erase a user's or a course's.

Erasing is safe while the service serves: no write can leave half a record behind. A write
changes a stored record only by an update that matches its `_id` (with the `__v` and
`updatedAt` it read) or its `user`, `course` and lecture (the position update); none upserts.
Only a first write inserts, and it inserts a whole new record under a new `_id`. So a write
racing the erase either landed before its record was deleted (and went with it), or matches
nothing, reads again, finds no record and creates a complete one after the erase, which stays.

The statements waiting for the LRS go too. A write stores its statements in the same
transaction as its record's update, so they are in the outbox by the time the record can be
deleted, or the transaction lost the race and stored none. They are deleted after their
records, by record id; then the user's (or course's) statements from before the erase began
whose record is gone, which only an erase interrupted between its two steps leaves. The
statements of a record created during the erase stay with it.

Statements already delivered are the LRS's: xAPI cannot delete them (docs/operations.md says
what an operator can do).
"""
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from pymongo import DeleteOne

from . import figures, signals
from .outbox import COLLECTION as OUTBOX, ORDER as OUTBOX_ORDER
from .present import iso_time
from .rule import now_ms

log = logging.getLogger("progress_service")

BATCH = 500
# The shapes of the list queries the indexes serve (database.py): a user's records as the
# dashboard reads them, a course's as the instructor views do.
BY_USER = [("lastAccessed", -1), ("_id", -1)]
BY_COURSE = [("createdAt", 1), ("_id", 1)]


@dataclass(frozen=True)
class Erased:
    """What an erase deleted: progress records, and statements that were waiting for the LRS."""

    records: int
    statements: int


def plain(value):
    """A stored value as JSON: times as the API writes them, ids (of any type) as strings."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return iso_time(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def export_user(mount, user_id):
    """{"user", "records", "statements"}: every record of the user as stored, newest first, and
    their statements still waiting for the LRS (or parked), each with the statement as sent."""
    records = list(mount.database.records_for_write().find({"user": user_id}).sort(BY_USER))
    waiting = _outbox(mount).find({"$or": [{"record": {"$in": [record["_id"] for record in records]}},
                                           {"user": user_id}]}).sort(OUTBOX_ORDER)
    statements = [{**plain({key: value for key, value in document.items() if key != "body"}),
                   "statement": json.loads(document["body"])} for document in waiting]
    return {"user": plain(user_id), "records": plain(records), "statements": statements}


def erase_user(mount, user_id):
    """Delete every record of the user and their waiting statements; idempotent. Returns Erased."""
    erased = _erase(mount, {"user": user_id}, BY_USER, lambda batch: figures.records_removed(mount, batch))
    log.info("erased a user's progress: %d records, %d statements waiting for the LRS",
             erased.records, erased.statements)
    signals.send(signals.user_erased, user_id=user_id, records=erased.records, statements=erased.statements)
    return erased


def erase_course(mount, course_id):
    """Delete every record of the course and their waiting statements; idempotent. Returns Erased."""
    erased = _erase(mount, {"course": course_id}, BY_COURSE)
    figures.course_removed(mount, course_id)
    log.info("erased a course's progress (course %s): %d records, %d statements waiting for the LRS",
             course_id, erased.records, erased.statements)
    signals.send(signals.course_erased, course_id=course_id, records=erased.records,
                 statements=erased.statements)
    return erased


def _outbox(mount):
    """The outbox collection, whether xAPI is configured now or only was."""
    return mount.database.db()[OUTBOX]


def _batches(cursor):
    """The cursor's documents in lists of BATCH."""
    while batch := list(islice(cursor, BATCH)):
        yield batch


def _erase(mount, scope, order, told=None):
    """Delete the records matching `scope` ({"user": id} or {"course": id}), then their statements;
    `told(batch)` is told of each batch of records deleted."""
    started = now_ms()
    records, outbox = mount.database.records_for_write(), _outbox(mount)
    removed = statements = 0
    # One pass over what is stored now: a record created meanwhile is a whole one, and stays.
    for batch in _batches(records.find(scope, {"user": 1, "course": 1}).sort(order)):
        # Each delete names the whole shard key (user, course): one shard per record.
        removed += records.bulk_write([DeleteOne({"_id": doc["_id"], "user": doc["user"], "course": doc["course"]})
                                       for doc in batch], ordered=False).deleted_count
        statements += outbox.delete_many({"record": {"$in": [doc["_id"] for doc in batch]}}).deleted_count
        if told is not None:
            told(batch)
    kept = [doc["_id"] for doc in records.find(scope, {"_id": 1}).sort(order)]
    statements += outbox.delete_many({**scope, "createdAt": {"$lt": started}, "record": {"$nin": kept}}).deleted_count
    return Erased(removed, statements)
