"""Keeping each course's figures (figures.py) built and fresh, driven by the instructor's views.

Nothing runs in the background: the view that needs a course's figures brings them up to date
first, and one process at a time does the work (a claim on the course's document: a time
until which it is held, and who holds it).

- BUILD. Figures that are missing, fail tally.problem, or were computed over another lecture
  list than the course's current one are built anew under a fresh key (figures.py, point
  3): zero counts, then the course's records a window of createdAt at a time, back from
  the build's start (windows.py), each window's record documents written and then its sum
  added to the counts with the progress made (`cursor`). A request works on it for at most
  BUILD_SECONDS, then answers (503, or the previous figures while a changed lecture list is
  being counted) and the next request continues from the cursor. A builder that dies leaves
  its claim to run out: whoever comes next starts over under another key, so a half-written
  window never counts. Writes go on meanwhile and count under the new key (figures.py); a
  last sweep catches what others wrote since the build began.
- SWEEP. Writes the service did not make (the original app) are found by their updatedAt:
  at most every PROGRESS_SUMMARY_REFRESH_SECONDS, the records updated since the last sweep
  began (less LATE_WRITE_SECONDS, for a write's own time and clock skew) are reconciled, a
  window of updatedAt at a time. A sweep or a finished build sets `asOf` to its start: the
  figures are exact as of then, and include every write the service made since.
- Every COUNT_EVERY refresh intervals the records and the record documents are counted: a
  difference from `students` means records (or record documents) were deleted by someone
  else, and the figures are rebuilt. The checks of tally.problem catch a lost or
  inconsistent course document on every read.
"""
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from . import figures, tally
from .exceptions import Unavailable
from .present import oid
from .rule import as_utc, now_ms
from .windows import FIRST_SPAN, WINDOW_SECONDS, WindowTooLarge, batches, windows

log = logging.getLogger("progress_service")

BUILD_SECONDS = 10      # a request's share of a build or a sweep; the next request continues
CLAIM_SECONDS = 60      # renewed with every batch: longer than any batch
LATE_WRITE_SECONDS = 30  # how much earlier than its commit a write's updatedAt may be
COUNT_EVERY = 10        # refresh intervals between two counts of the records
BUILDING = "The course's figures are being counted; retry shortly"
# The record documents' indexes: the instructor's list sorts and filters by them (roster.py).
INDEXES = (
    [("k", 1), ("createdAt", 1), ("_id", 1)],
    [("k", 1), ("lastAccessed", 1), ("_id", 1)],
    [("k", 1), ("n", 1), ("_id", 1)],
    [("k", 1), ("st", 1), ("createdAt", 1), ("_id", 1)],
    [("k", 1), ("st", 1), ("lastAccessed", 1), ("_id", 1)],
)


@dataclass
class Kept:
    """Figures a view may answer from: `figures` holds lectures, the counts and asOf."""

    figures: dict
    exact: bool  # False: the previous figures, over the lecture list before it changed

    @property
    def key(self):
        """The key their record documents are counted under."""
        return self.figures["key"]

    @property
    def lectures(self):
        """The lecture list they were computed over."""
        return tuple(self.figures["lectures"])

    @property
    def as_of(self):
        """When they were exact."""
        return as_utc(self.figures.get("asOf"))


def ensure_indexes(kept):
    """The record documents' indexes, checked once per process and database (made when missing)."""
    db = kept.database.db()
    if kept._indexed is db:
        return
    collection = db[figures.COLLECTION]
    existing = {tuple(index["key"].items()) for index in collection.list_indexes()}
    for keys in INDEXES:
        if tuple(keys) not in existing:
            try:
                # No `background` option: SecantusDB refuses it next to an existing index.
                collection.create_index(keys)
            except OperationFailure as exc:
                log.warning("index %s on %s not created (the lists still work, more slowly): %s",
                            keys, figures.COLLECTION, exc)
    kept._indexed = db


def current(mount, course, exact=False):
    """The course's figures, built and swept as needed; the previous ones while a changed
    lecture list is being counted (unless `exact`); else 503 while they are being built."""
    kept = mount.figures
    ensure_indexes(kept)
    lectures = tally.lecture_list(course.current)
    document = _usable(mount, course.id, lectures)
    if document is None:
        raise Unavailable(BUILDING, headers={"Retry-After": "5"})
    if document["state"] == "ready":
        document = _swept(mount, course.id, document)
        if document["state"] == "ready":
            return Kept(document, True)
    previous = document.get("previous")
    if previous and not exact:
        return Kept({**previous, "key": document["key"]}, False)
    raise Unavailable(BUILDING, headers={"Retry-After": "5"})


def _usable(mount, course_id, lectures):
    """The course's document over `lectures`: as stored, or after starting and working on a build."""
    kept = mount.figures
    document = figures.read_course(kept, course_id)
    digest = tally.list_hash(lectures)
    if document is None or tally.problem(document) or document.get("h") != digest:
        if document is not None and tally.problem(document):
            log.warning("the figures of course %s are rebuilt: %s", course_id, tally.problem(document))
        document = start_build(kept, course_id, lectures, document)
    if document is not None and document["state"] == "building":
        token = _claim(kept, document)
        if token is None and _abandoned(document):
            document = start_build(kept, course_id, lectures, document)
            token = _claim(kept, document)
        if token is not None:
            document = build(mount, course_id, document, token, time.monotonic() + BUILD_SECONDS)
    return document


def _abandoned(document):
    """Whether a build's claim ran out without being released (its builder died)."""
    until = document.get("claim")
    return document["state"] == "building" and until is not None and as_utc(until) < now_ms()


def _claim(kept, document):
    """A token when this process now holds the course's claim, else None (held by another)."""
    until = document.get("claim")
    if until is not None and as_utc(until) >= now_ms():
        return None
    if until is not None and document["state"] == "building":
        return None  # abandoned: the build starts over instead
    token = uuid.uuid4().hex
    taken = kept.collection().update_one(
        {"_id": document["_id"], "key": document["key"],
         "claimedBy": document.get("claimedBy")},
        {"$set": {"claim": now_ms() + timedelta(seconds=CLAIM_SECONDS), "claimedBy": token}})
    return token if taken.modified_count == 1 else None


def start_build(kept, course_id, lectures, old):
    """Replace the course's document by an empty one under a fresh key, claimed by nobody.

    The old figures are kept as `previous` when they were ready and sound (a changed lecture
    list): the summary answers them, with their asOf, until the new ones are counted.
    """
    now = now_ms()
    document = {"_id": figures.course_key(course_id), "course": course_id, "key": str(ObjectId()),
                "lectures": list(lectures),
                "h": tally.list_hash(lectures), **tally.empty_figures(lectures), "state": "building",
                "started": now, "cursor": None, "claim": None, "claimedBy": None, "asOf": None,
                "countedAt": now, "oldest": now, "retired": []}
    if old is not None:
        document["retired"] = [*(old.get("retired") or []), old.get("key")]
        if old.get("state") == "ready" and not tally.problem(old):
            document["previous"] = {name: old[name] for name in ("lectures", "students", "hist", "per", "asOf")}
        elif old.get("previous"):
            document["previous"] = old["previous"]
        replaced = kept.collection().replace_one({"_id": document["_id"], "key": old.get("key")}, document)
        if replaced.matched_count == 0:
            return figures.read_course(kept, course_id) or document  # someone else started one
    else:
        try:
            kept.collection().insert_one(document)
        except DuplicateKeyError:
            return figures.read_course(kept, course_id)
    kept.forget(course_id)
    return document


# --- the build ------------------------------------------------------------------------------

def _course_window(records, course_id, field):
    """find(low, high) over the course's records whose `field` lies in [low, high)."""
    return lambda low, high: records.find({"course": course_id, field: {"$gte": low, "$lt": high}},
                                          figures.RECORD_FIELDS)


def _unbuilt(records, course_id, document, seconds):
    """(records, cursor after them) still to count: windows of createdAt back from the build's
    start, then the records without one. (A record created since is counted by its write, or
    by the build's last sweep; one whose createdAt is not a date is not seen.)"""
    cursor = document.get("cursor") or {"before": as_utc(document["started"]) + timedelta(seconds=LATE_WRITE_SECONDS),
                                        "span": FIRST_SPAN.total_seconds()}
    if cursor["before"] is None:
        return  # done: the last step was the records without a createdAt
    scan = windows(_course_window(records, course_id, "createdAt"), as_utc(cursor["before"]),
                   figures.NO_TIME, timedelta(seconds=cursor["span"]), seconds)
    for found, edge, span in scan:
        yield found, {"before": edge, "span": span.total_seconds()}
    yield list(records.find({"course": course_id, "createdAt": None}, figures.RECORD_FIELDS)), {"before": None}


def build(mount, course_id, document, token, deadline=None):
    """Count the course's records into the document being built, until done or `deadline`
    (time.monotonic(); None: the operator's rebuild, to the end); the document as it then is."""
    kept, key, lectures = mount.figures, document["key"], tuple(document["lectures"])
    mine = {"_id": figures.course_key(course_id), "key": key, "claimedBy": token}
    records = mount.database.records_for_write()
    seconds = None if deadline is None else WINDOW_SECONDS
    try:
        for found, cursor in _unbuilt(records, course_id, document, seconds):
            if not _count_window(kept, mine, key, lectures, found, cursor):
                return figures.read_course(kept, course_id)  # another process took over
            if deadline is not None and time.monotonic() > deadline and cursor["before"] is not None:
                return _release(kept, mine)
    except WindowTooLarge as smaller:
        # The next request goes on from here with a smaller window (if the embedded server,
        # busy with the abandoned one, lets this through: else the build starts over later).
        kept.collection().update_one(mine, {"$set": {"cursor": {"before": smaller.edge, "span": smaller.span.total_seconds()},
                                                     "claim": None, "claimedBy": None}})
        return figures.read_course(kept, course_id)
    return _finish(mount, course_id, kept.collection().find_one(mine) or document, token, seconds)


def _count_window(kept, mine, key, lectures, found, cursor):
    """Count a window's records not counted yet, then note the progress; False when the
    build is no longer this process's."""
    total = Counter()
    for batch in batches(found):
        known = {doc["_id"]: doc for doc in kept.collection().find({"_id": {"$in": [raw["_id"] for raw in batch]}})}
        # Only documents not counted under this key yet: one already counted was counted by a
        # write that read its record after this batch was read.
        changes = [figures.change_for(key, lectures, known.get(raw["_id"]), raw, insert=True) for raw in batch
                   if known.get(raw["_id"], {}).get("k") != key]
        total.update(_write_uncounted(kept, [change for change in changes if change is not None]))
    progress = {"$set": {"cursor": cursor, "claim": now_ms() + timedelta(seconds=CLAIM_SECONDS)}}
    if tally.nonzero(total):
        progress["$inc"] = tally.nonzero(total)
    dated = [raw["createdAt"] for raw in found if isinstance(raw.get("createdAt"), datetime)]
    if dated:
        progress["$min"] = {"oldest": min(dated)}  # where the export's windows start
    return kept.collection().update_one(mine, progress).matched_count == 1


def _write_uncounted(kept, changes):
    """Write a batch's record documents (each conditional); the sum of the paths of those written."""
    if not changes:
        return {}
    try:
        kept.collection().bulk_write([statement for statement, _paths in changes], ordered=False)
        failed = set()
    except BulkWriteError as exc:
        if not figures.only_conflicts(exc):
            raise
        failed = {error["index"] for error in exc.details["writeErrors"]}
    total = Counter()
    for index, (_statement, paths) in enumerate(changes):
        if index not in failed:
            total.update(paths)
    return tally.nonzero(total)


def _release(kept, mine):
    """Give the claim up (the work is saved); the document as it then is."""
    return kept.collection().find_one_and_update(mine, {"$set": {"claim": None, "claimedBy": None}},
                                                 return_document=True)


def _finish(mount, course_id, document, token, seconds):
    """The last step of a build: catch up with the writes made elsewhere since it began, then
    ready; the previous figures and the retired keys' documents go."""
    kept = mount.figures
    mine = {"_id": figures.course_key(course_id), "key": document["key"], "claimedBy": token}
    began = as_utc(document["started"]) - timedelta(seconds=LATE_WRITE_SECONDS)
    started, finished, edge = sweep_records(mount, course_id, document, began, seconds=seconds)
    # Caught up: exact as of the catch-up's start. Else (a window too large for a request) as
    # of the build's start, which the scan read after, and the next request sweeps on.
    done = {"asOf": started, "swept": started} if finished else {"asOf": began, "swept": began, "sweepFrom": edge}
    ready = kept.collection().find_one_and_update(
        mine, {"$set": {"state": "ready", **done, "claim": None, "claimedBy": None},
               "$unset": {"previous": "", "cursor": ""}}, return_document=True)
    if ready is None:
        return figures.read_course(kept, course_id)
    retired = [old for old in ready.get("retired") or () if old]
    if retired:
        kept.collection().delete_many({"k": {"$in": retired + [old + figures.GONE for old in retired]}})
        kept.collection().update_one({"_id": ready["_id"], "key": ready["key"]}, {"$set": {"retired": []}})
    return ready


# --- the sweep ------------------------------------------------------------------------------

def sweep_records(mount, course_id, document, low, deadline=None, seconds=WINDOW_SECONDS):
    """Reconcile the records updated since `low`, a window of updatedAt at a time, until done
    or `deadline`: (its start time, whether it finished, the updatedAt up to which it got).
    `seconds`: the time a window may take (windows.py)."""
    key, lectures = document["key"], tuple(document["lectures"])
    started = now_ms()
    records = mount.database.records_for_write()
    edge = low
    ahead = started + timedelta(seconds=LATE_WRITE_SECONDS)  # a writer's clock a little ahead
    try:
        for found, edge, _span in windows(_course_window(records, course_id, "updatedAt"), low, ahead,
                                          FIRST_SPAN, seconds):
            for batch in batches(found):
                _reconcile_batch(mount, course_id, key, lectures, batch)
            if deadline is not None and time.monotonic() > deadline:
                return started, False, edge
    except WindowTooLarge as smaller:
        return started, False, smaller.edge
    return started, True, edge


def _reconcile_batch(mount, course_id, key, lectures, batch):
    """Bring the record documents of a batch of records (as read) to their records' states."""
    kept = mount.figures
    known = {doc["_id"]: doc for doc in kept.collection().find({"_id": {"$in": [raw["_id"] for raw in batch]}})}
    stale = [raw["_id"] for raw in batch if figures.change_for(key, lectures, known.get(raw["_id"]), raw) is not None]
    if not stale:
        return
    # Read again after the documents, so that no record is older than its document.
    fresh = {raw["_id"]: raw for raw in mount.database.records_for_write().find(
        {"_id": {"$in": stale}, "course": course_id}, figures.RECORD_FIELDS)}
    changes = [figures.change_for(key, lectures, known.get(record_id), fresh.get(record_id)) for record_id in stale]
    figures.apply_changes(kept, course_id, key, [change for change in changes if change is not None])


def _swept(mount, course_id, document):
    """The ready document, swept first when its last sweep is older than the refresh interval
    (and its counts checked when the last check is COUNT_EVERY intervals old)."""
    interval = timedelta(seconds=mount.settings.summary_refresh)
    now = now_ms()
    swept = as_utc(document.get("swept")) or now
    if now - swept < interval and document.get("sweepFrom") is None:
        return document
    kept = mount.figures
    token = _claim(kept, document)
    if token is None:
        return document  # another process is sweeping: these figures are as of their asOf
    mine = {"_id": document["_id"], "key": document["key"], "claimedBy": token}
    low = as_utc(document.get("sweepFrom")) or swept - timedelta(seconds=LATE_WRITE_SECONDS)
    started, finished, edge = sweep_records(mount, course_id, document, low, time.monotonic() + BUILD_SECONDS)
    if not finished:
        # Not exact as of a newer time yet: asOf stays, and the next request goes on from here.
        return kept.collection().find_one_and_update(
            mine, {"$set": {"sweepFrom": edge, "claim": None, "claimedBy": None}},
            return_document=True) or figures.read_course(kept, course_id)
    done = {"asOf": started, "swept": started, "sweepFrom": None, "claim": None, "claimedBy": None}
    if now - as_utc(document.get("countedAt") or now) >= interval * COUNT_EVERY:
        done["countedAt"] = now
        if _counts_disagree(mount, course_id, document["key"]):
            _release(kept, mine)
            log.warning("the figures of course %s no longer count its records (records or figures deleted "
                        "elsewhere): they are rebuilt", course_id)
            return _rebuilt(mount, course_id, document)
    return kept.collection().find_one_and_update(mine, {"$set": done}, return_document=True) or \
        figures.read_course(kept, course_id)


def _counts_disagree(mount, course_id, key):
    """Whether the course's records, its figures' `students` and its record documents differ in
    number (records counted before and after, so that one created meanwhile is not taken for
    a difference). A record document with `owed` does not count as a student yet."""
    records = mount.database.records()
    before = records.count_documents({"course": course_id})
    counted = (figures.read_course(mount.figures, course_id) or {}).get("students")
    documents = mount.figures.collection().count_documents({"k": key, "owed": None})
    after = records.count_documents({"course": course_id})
    return before == after and (counted != after or documents != after)


def _rebuilt(mount, course_id, document):
    """Start the course's figures over (the old ones answer meanwhile) and work on them."""
    fresh = start_build(mount.figures, course_id, tuple(document["lectures"]), document)
    return _usable(mount, course_id, tuple(fresh["lectures"]))


# --- for operators --------------------------------------------------------------------------

def rebuild(mount, course):
    """Build the course's figures anew from its records, to the end; the ready document."""
    mount.database.ensure_indexes(wait=None)  # its windows read by (course, createdAt), (course, updatedAt)
    ensure_indexes(mount.figures)
    lectures = tally.lecture_list(course.current)
    kept = mount.figures
    document = start_build(kept, course.id, lectures, figures.read_course(kept, course.id))
    while document["state"] != "ready":
        token = _claim(kept, document)
        if token is None:
            if _abandoned(document):
                document = start_build(kept, course.id, lectures, document)
            else:
                time.sleep(1)  # a request is working on it: wait for its slice to end
                document = figures.read_course(kept, course.id)
            continue
        document = build(mount, course.id, document, token)
    return document


def rebuild_summaries(mount, course_id=None):
    """Rebuild one course's figures, or those of every course with records or figures; yields
    one report per course ({"course", "students", "seconds"} or {"course", "skipped"})."""
    if course_id is not None:
        course_ids = [course_id]
    else:
        kept_ids = [document["course"] for document in
                    mount.figures.collection().find({"key": {"$exists": True}}, {"course": 1})]
        course_ids = list(dict.fromkeys([*mount.database.records().distinct("course"), *kept_ids]))
    for each in course_ids:
        course = mount.catalog.course(each)
        if course is None:
            yield {"course": oid(each), "skipped": "no such course in the catalog"}
            continue
        started = time.monotonic()
        document = rebuild(mount, course)
        yield {"course": oid(each), "students": document["students"],
               "seconds": round(time.monotonic() - started, 3)}
