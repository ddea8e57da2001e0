"""The figures kept per course (contract section 15): one document per course and one per record.

The records stay the source of truth; the kept figures are a cache that can always be rebuilt
from them (MongoDB's "computed pattern", Open edX's completion aggregator). Both kinds of
document live in one collection, `courseprogressfigures`, so that the write path changes them
with ONE `update` command (an ordered bulk of two statements):

- the course's document, `_id: "course:<type>:<id>"`, `course`: `key` (the key of this build of the figures),
  `lectures` (the list they were computed over) and its digest `h`, and the counts of
  tally.py (`students`, `hist`, `per`); upkeep.py adds the bookkeeping of builds and sweeps.
- a record's document, `_id: <record id>`: `k`, the record's contribution `bits` (tally.py)
  with its count `n` and status `st`, the version `v` it was computed from, and what the
  instructor's list sorts and shows (`user`, `createdAt`, `lastAccessed`, `completedAt`).

THE INVARIANT. The counts of course C's document equal the sum, over the record documents
whose `k` is the course document's `key`, of record(bits) - record(owed) (tally.record_paths;
`owed` is explained below). A record document with another `k` counts for nothing. Every
change below keeps it:

1. A change of a record document is conditional on the document exactly as the change's
   author knew it, and is an upsert: when the document differs, the upsert tries to insert
   a second document with the same `_id`, fails with a duplicate key, and the ORDERED bulk
   stops before the second statement, the `$inc` of the course document. So a replay, a
   stale view or a lost race never changes the counts.
2. The `$inc` is conditional on the course document's `key` being the key the record
   document is (or becomes) counted under. When it is not (the figures were rebuilt under a
   new key), the record document becomes or stays one with a foreign `k`, which counts for
   nothing: the invariant holds either way.
3. A new build takes a fresh key and starts from zero counts: every existing record
   document then has a foreign key, so nothing has to be touched to start over.

FRESHNESS. A record's document must also come to hold the record's latest bits. A write
computes its change from the record as it read it (the write itself was conditional on
that state), so its condition is "the document still holds what I read" (`bits`, and a
version no newer than mine, so a late replay cannot take it back). When that fails, the
writer reconciles: it reads the course document, then the record document, then the record
(in that order, so the record is at least as new as what the document holds) and moves
the document to the record's state. Writes made elsewhere (the original app) are found by
upkeep.py's sweep over (course, updatedAt), and are reconciled the same way.

OWED. A write of a record that has no record document (the original app created it and no
sweep has seen it yet) inserts one and adds its change (after - before) to the counts,
which never counted `before`: the inserted document carries `owed: before`, and the writer
then settles it (adds record(before), unsets `owed`) with one more conditional bulk. Until
settled (a crash in between), the invariant's "- record(owed)" term keeps the sum exact and
the next sweep settles it.
"""
import logging
import threading
from collections import Counter, OrderedDict
from datetime import datetime, timezone

from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError

from . import stored, tally
from .rule import is_entry
from .store import is_number

log = logging.getLogger("progress_service")

COLLECTION = "courseprogressfigures"
RECORDS = "courseprogresses"
# Stands for a missing or unusable time in the sortable fields (it sorts first, as null
# would); shown as null.
NO_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
GONE = "~gone"  # appended to the key of a removed record's document: it counts for nothing
DUPLICATE_KEY = 11000
RECONCILE_ATTEMPTS = 5
CACHED_COURSES = 10_000
# What the reconcile reads of a record: everything its document holds, nothing else.
RECORD_FIELDS = {"user": 1, "course": 1, "__v": 1, "updatedAt": 1, "createdAt": 1, "lastAccessed": 1,
                 "completedAt": 1, "lectureProgress.lecture": 1, "lectureProgress.isCompleted": 1}


def course_key(course_id):
    """The `_id` of a course's figures document: a string, so that it can never be a record's
    id (a document as `_id` would do too, but the embedded test server scans the collection
    to find one)."""
    return f"course:{type(course_id).__name__}:{course_id}"


def sortable_time(value):
    """A stored time for the sortable fields (NO_TIME when missing or not a time)."""
    return value if isinstance(value, datetime) else NO_TIME


def shown_time(value):
    """A sortable time as the client sees it (NO_TIME is null)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return None if value == NO_TIME else value


def record_state(bits, total, *, course, user, version, updated_at, created_at, last_accessed, completed_at):
    """A record's document (without `_id` and `k`): its contribution and what the list shows."""
    count = bin(bits).count("1")
    return {"course": course, "user": user, "v": version if is_number(version) else -1, "at": updated_at,
            "bits": tally.encode(bits), "n": count, "st": tally.status(count, total),
            "createdAt": sortable_time(created_at), "lastAccessed": sortable_time(last_accessed),
            "completedAt": completed_at}


def state_of_stored(raw, lectures):
    """A record's document computed from the raw stored record, over `lectures` (a user that is
    not an id is kept as none)."""
    return record_state(tally.bits_of_stored(raw, lectures), len(lectures), course=raw.get("course"),
                        user=stored.read(raw, "user", stored.key, RECORDS), version=raw.get("__v"),
                        updated_at=raw.get("updatedAt"),
                        created_at=raw.get("createdAt"), last_accessed=raw.get("lastAccessed"),
                        completed_at=raw.get("completedAt"))


class KeptFigures:
    """One mount's access to the kept figures, and the keys this process has learned."""

    def __init__(self, database):
        """Figures stored in the mount's database; nothing is read until first use."""
        self.database = database
        self._keys = OrderedDict()
        self._lock = threading.Lock()
        self._indexed = None

    def collection(self):
        """The courseprogressfigures collection."""
        return self.database.db()[COLLECTION]

    # --- the keys learned by this process -------------------------------------------------

    def cached_key(self, course_id, digest):
        """The key this process last saw for the course's figures over the list `digest`."""
        with self._lock:
            found = self._keys.get(course_id)
            if found is None or found[0] != digest:
                return None
            self._keys.move_to_end(course_id)
            return found[1]

    def learn(self, course_id, digest, key):
        """Remember a course's key (the least recently used ones are forgotten)."""
        with self._lock:
            self._keys[course_id] = (digest, key)
            self._keys.move_to_end(course_id)
            while len(self._keys) > CACHED_COURSES:
                self._keys.popitem(last=False)

    def forget(self, course_id):
        """The course's key is stale."""
        with self._lock:
            self._keys.pop(course_id, None)

    def key_for(self, course_id, digest):
        """The key under which the course's figures over the list `digest` are kept, or None.

        None when the course has no figures, or figures over another list: then there is
        nothing to keep up to date, and the build that makes them reads this write's record.
        """
        key = self.cached_key(course_id, digest)
        if key is not None:
            return key
        found = self.collection().find_one({"_id": course_key(course_id)}, {"key": 1, "h": 1})
        if found is None or found.get("h") != digest or not isinstance(found.get("key"), str):
            return None
        self.learn(course_id, digest, found["key"])
        return found["key"]


# --- the write path -------------------------------------------------------------------------

def _bits_before(lectures, current, after):
    """The contribution before this write: `after` with the flags the write changed put back."""
    before = after
    first = lectures.first_indexes()
    position_of = {lecture: position for position, lecture in enumerate(current)}
    for index, was in lectures.flags_before.items():
        son = lectures.sons[index]
        if not is_entry(son):
            continue  # an entry whose lecture is not an id names no lecture
        lecture = son.get("lecture")
        position = position_of.get(lecture)
        if position is None or first.get(lecture) != index:
            continue
        bit = 1 << position
        before = (before | bit) if was else (before & ~bit)
    return before


def record_written(mount, done):
    """Bring the course's kept figures up to date with a write the service has just stored.

    One command when the figures change (a flag, a completion, a reset, a new record), none
    when they do not (a position). Never raises: the write is stored, and a figure update
    that fails is repaired by the next sweep (the record's updatedAt is recent).
    """
    record, course = done.record, done.course
    current = tally.lecture_list(course.current)
    lectures = record.lecture_progress
    after = tally.bits_of(lectures.first_entries(), current)
    before = None if record.is_new else _bits_before(lectures, current, after)
    if before == after:
        return
    kept = mount.figures
    try:
        key = kept.key_for(course.id, tally.list_hash(current))
        if key is None:
            return
        state = record_state(after, len(current), course=record.course, user=record.user,
                             version=record.version, updated_at=record.updated_at, created_at=record.created_at,
                             last_accessed=record.last_accessed, completed_at=record.completed_at)
        read_version = None if record.is_new else record.read_state[0]
        if not _apply_write(kept, course.id, key, record.id, read_version, before, after, state):
            kept.forget(course.id)
            reconcile(mount, course.id, record.user, record.id)
    except PyMongoError as exc:
        log.warning("the figures of course %s were not updated after a write (the next sweep will): %s",
                    course.id, exc)


def _apply_write(kept, course_id, key, record_id, read_version, before, after, state):
    """The write's change in one ordered bulk; False when the record's document did not hold
    what the write read, or the figures have another key (then the caller reconciles)."""
    if before is None:
        record_filter = {"_id": record_id, "k": {"$exists": False}}
        update = {"$set": {"k": key, **state}}
        paths = tally.record_paths(after)
    else:
        record_filter = {"_id": record_id, "k": key, "bits": tally.encode(before),
                         "v": {"$lte": read_version if is_number(read_version) else -1}}
        update = {"$set": state, "$setOnInsert": {"owed": tally.encode(before)}}
        paths = tally.change_paths(before, after)
    statements = [UpdateOne(record_filter, update, upsert=True),
                  UpdateOne({"_id": course_key(course_id), "key": key}, {"$inc": paths})]
    try:
        result = kept.collection().bulk_write(statements, ordered=True)
    except BulkWriteError as exc:
        if only_conflicts(exc):
            return False
        raise
    inserted = bool(result.upserted_ids)
    if result.matched_count - (0 if inserted else 1) != 1:
        return False  # the record's document now carries a foreign key: it counts for nothing
    if inserted and before is not None:
        _settle_owed(kept, course_id, key, record_id, before)
    return True


def _settle_owed(kept, course_id, key, record_id, owed):
    """Count the state a write's change started from, for a record that had no document."""
    statements = [UpdateOne({"_id": record_id, "k": key, "owed": tally.encode(owed)},
                            {"$unset": {"owed": ""}}, upsert=True),
                  UpdateOne({"_id": course_key(course_id), "key": key}, {"$inc": dict(tally.record_paths(owed))})]
    try:
        kept.collection().bulk_write(statements, ordered=True)
    except BulkWriteError as exc:
        if not only_conflicts(exc):
            raise


def only_conflicts(exc):
    """Whether a bulk failed only because a conditional upsert met a changed document."""
    errors = exc.details.get("writeErrors", [])
    return bool(errors) and all(error.get("code") == DUPLICATE_KEY for error in errors)


# --- reconciling a record with its document --------------------------------------------------

def change_for(key, lectures, document, raw, insert=False):
    """(record statement, $inc paths) moving a record's document to the record's state, counted
    under `key`; None when it holds that state already. `raw` None: the record is gone.

    `document` must have been read before `raw` (so the record is at least as new). A missing
    document is inserted by an upsert that fails when one exists meanwhile, or with `insert`
    by an insert (which fails alike, and costs the embedded test server a third as much).
    """
    if document is None:
        if raw is None:
            return None
        state = state_of_stored(raw, lectures)
        paths = tally.record_paths(tally.decode(state["bits"]))
        if insert:
            return InsertOne({"_id": raw["_id"], "k": key, **state}), paths
        return UpdateOne({"_id": raw["_id"], "k": {"$exists": False}}, {"$set": {"k": key, **state}}, upsert=True), paths
    as_read = {"_id": document["_id"], "k": document.get("k"), "v": document.get("v"),
               "bits": document.get("bits"), "owed": document.get("owed")}
    counted = document.get("k") == key
    paths = Counter()
    if counted:  # update() adds counts and keeps the negative ones
        paths.update(tally.record_paths(tally.decode(document.get("bits")), -1))
        if document.get("owed") is not None:
            paths.update(tally.record_paths(tally.decode(document["owed"])))
    if raw is None:
        if not counted:
            return None
        return UpdateOne(as_read, {"$set": {"k": key + GONE}}, upsert=True), tally.nonzero(paths)
    state = state_of_stored(raw, lectures)
    paths.update(tally.record_paths(tally.decode(state["bits"])))
    if counted and document.get("owed") is None and all(document.get(name) == value for name, value in state.items()):
        return None
    update = {"$set": {"k": key, **state}}
    if document.get("owed") is not None:
        update["$unset"] = {"owed": ""}
    return UpdateOne(as_read, update, upsert=True), tally.nonzero(paths)


def apply_changes(kept, course_id, key, changes):
    """Apply (record statement, paths) pairs in order, each pair all or nothing.

    A pair whose record statement meets a changed document is skipped: whoever changed it
    holds the record's newer state and reconciles it. Returns how many pairs applied.
    """
    statements = []
    for record_statement, paths in changes:
        statements.append(record_statement)
        statements.append(UpdateOne({"_id": course_key(course_id), "key": key}, {"$inc": paths}) if paths else None)
    applied, start = 0, 0
    while start < len(statements):
        batch = [statement for statement in statements[start:] if statement is not None]
        # Where each statement of the batch came from, to resume after a failed pair.
        origin = [index for index in range(start, len(statements)) if statements[index] is not None]
        try:
            kept.collection().bulk_write(batch, ordered=True)
            return applied + sum(1 for index in origin if index % 2 == 0)
        except BulkWriteError as exc:
            if not only_conflicts(exc):
                raise
            failed = origin[exc.details["writeErrors"][0]["index"]]
            applied += sum(1 for index in origin if index < failed and index % 2 == 0)
            start = failed - failed % 2 + 2  # past the failed pair
    return applied


def read_course(kept, course_id):
    """The course's figures document, or None."""
    return kept.collection().find_one({"_id": course_key(course_id)})


def reconcile(mount, course_id, user_id, record_id):
    """Move one record's document to the record's current state (or remove it when the record
    is gone), counted under the course's current key. Nothing to do without figures."""
    kept = mount.figures
    for _attempt in range(RECONCILE_ATTEMPTS):
        figures = kept.collection().find_one({"_id": course_key(course_id)}, {"key": 1, "lectures": 1})
        if figures is None or not isinstance(figures.get("key"), str) or not isinstance(figures.get("lectures"), list):
            return
        document = kept.collection().find_one({"_id": record_id})
        raw = mount.database.records_for_write().find_one(
            {"_id": record_id, "user": user_id, "course": course_id}, RECORD_FIELDS)
        change = change_for(figures["key"], tuple(figures["lectures"]), document, raw)
        if change is None or apply_changes(kept, course_id, figures["key"], [change]):
            return
    log.warning("the figures of record %s kept changing while being reconciled; the next sweep will", record_id)


def records_removed(mount, raw_records):
    """Take records that were just deleted out of their courses' figures (erasure).

    Call it after the records are deleted, with the deleted raw records (at least their
    `_id`, `user` and `course`); a course without figures needs nothing.
    """
    for raw in raw_records:
        reconcile(mount, raw["course"], raw["user"], raw["_id"])


def course_removed(mount, course_id):
    """Forget a course's figures after all its records were deleted (erasure): the next view
    counts them anew, from nothing. Its record documents go with their keys."""
    document = read_course(mount.figures, course_id)
    if document is None:
        return
    mount.figures.collection().delete_one({"_id": document["_id"]})
    keys = [key for key in (document.get("key"), *(document.get("retired") or ())) if key]
    mount.figures.collection().delete_many({"k": {"$in": keys + [key + GONE for key in keys]}})
    mount.figures.forget(course_id)
