"""The progress operations: read, mark lectures, complete, reset. No Flask in here.

Each operation gets the mount (its settings, database, catalog and outbox) and the caller's
user id. Every write is read -> change -> save rule -> one conditional write, with a bounded
retry: the rule computes from what this attempt read, so a write that lost a race is redone
from a fresh read rather than stored stale. The one exception is a position-only update
with a minimal answer, which needs no read (store.record_position).
"""
import random
import time
from dataclasses import dataclass

from . import figures, played, signals, store, watching
from .exceptions import Conflict, Forbidden, InvalidInput, NotFound
from .models import ProgressServiceRecord
from .rule import entry_done, now_ms, write_time
from .present import present

MAX_ATTEMPTS = 30
ADMIN = "admin"
COURSE_NOT_FOUND = "Course not found"
RECORD_NOT_FOUND = "No progress record found for this user and course"
NOT_IN_COURSE = "Lecture does not belong to this course"
NOT_ENROLLED = "Not enrolled in this course"
COMPLETED_MESSAGE = "Course marked as completed"
RESET_MESSAGE = "Course progress has been reset"


@dataclass(frozen=True)
class LectureChange:
    """What a PATCH asks of one lecture: its flag, its position, or both (None: not sent),
    with the intervals played since the last report and when the player saw the position
    (contract section 14). `complete_after_ms`: the played milliseconds that complete the
    lecture (PROGRESS_COMPLETE_BY=watched; set by watching.resolve_flags)."""

    lecture: object
    is_completed: bool = None
    watch_time: float = None
    played: tuple = ()
    at: object = None
    complete_after_ms: int = None


@dataclass
class Outcome:
    """An operation's answer: the `<progress>` (None for a minimal answer) and a message."""

    data: dict = None
    message: str = None


# --- who may use a course (contract section 8) ---------------------------------------------

def ready(mount):
    """Our indexes, checked on a process's first request (after the input was validated, so
    bad input is a 400 even while the database is away). While the unique one is missing,
    writes are refused (503, `write`) and reads go on."""
    mount.database.ensure_indexes()


def open_course(mount, user_id, course_id, with_caller=False):
    """(course, caller or None): 404 without the course, 403 when the caller may not use it.

    Enrolled, the course's instructor, or an admin may; a course that keeps no enrollment
    list is open to every signed-in user. `with_caller` (the answer will show the caller's
    user): the catalog gives the user with the course when it can, in the same query.
    Otherwise the user is read only when their role decides. Either way it is handed back so
    the answer need not read it again.
    """
    ready(mount)
    if with_caller:
        course, caller = mount.catalog.course_and_caller(course_id, user_id)
    else:
        course, caller = mount.catalog.course(course_id, user_id), None
    if course is None:
        raise NotFound(COURSE_NOT_FOUND)
    return course, require_enrolled(mount, course, user_id, caller)


def require_enrolled(mount, course, user_id, caller=None):
    """The caller's user when it was given or their role had to be read (else None); 403 when
    they may not use the course."""
    if may_read(mount, course, user_id, caller):
        return caller
    if caller is None:
        caller = mount.catalog.user(user_id)
    if not may_read(mount, course, user_id, caller):
        raise Forbidden(NOT_ENROLLED)
    return caller


def may_read(mount, course, user_id, caller=None):
    """Whether the caller may use `course` (asked with their id): enrolled, not required, or a
    course without a list, its instructor, or (when `caller` is known) an admin."""
    if not mount.settings.enrollment_required or course.enrolled is not False or course.instructor == user_id:
        return True
    return caller is not None and caller.role == ADMIN


def require_lectures(course, lecture_ids):
    """400 naming the items whose lecture is not one of the course's."""
    current = course.current
    return [index for index, lecture in enumerate(lecture_ids) if lecture not in current]


def _answer(mount, raw, course, user_id, caller, minimal, message=None, known=None):
    """The `<progress>` answer, or a minimal one (which reads nothing more)."""
    if minimal:
        return Outcome(None, message)
    user = caller or mount.catalog.user(user_id)
    return Outcome(present(raw, course, user, user_id, known), message)


def _answer_write(mount, done, user_id, caller, minimal, message=None):
    """The answer to a stored write: the record as written, equal to the next GET."""
    record = done.record
    return _answer(mount, record.to_stored(), done.course, user_id, caller, minimal, message,
                   known=record.lecture_progress.first_entries())


# --- reading -------------------------------------------------------------------------------

def get_progress(mount, user_id, course_id):
    """GET: the caller's record, 404 when the course or the record is missing.

    The course and the caller's user are asked apart, not joined (catalog.course_and_caller):
    beside a read of one record, the join's copies of the lecture list are most of what the
    embedded database spends on a GET (a write's update outweighs them)."""
    course, caller = open_course(mount, user_id, course_id)
    raw = store.find(mount.database.records(), user_id, course.id)
    if raw is None:
        raise NotFound(RECORD_NOT_FOUND)
    return _answer(mount, raw, course, user_id, caller, minimal=False)


# --- writing -------------------------------------------------------------------------------

def _backoff(attempt):
    """Sleep a little, longer after each lost race, jittered so writers spread out."""
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** attempt)))


def _load(records, user_id, course, create):
    """(record, this write's time): the stored record as a ProgressServiceRecord, or a new one
    when `create`, else 404; the time is taken after the read, never before the stored one."""
    raw = store.find(records, user_id, course.id)
    now = write_time(raw)
    if raw is not None:
        return ProgressServiceRecord.from_stored(raw), now
    if not create:
        raise NotFound(RECORD_NOT_FOUND)
    return ProgressServiceRecord.new(user_id, course.id, now), now


@dataclass
class Write:
    """One stored write: the record as stored, what it completed, and the state before it."""

    record: ProgressServiceRecord
    course: object
    completed_lectures: list
    was_percentage: int
    was_completed: bool
    now: object
    watched: frozenset = frozenset()


def write(mount, user_id, course, change, create=False, legacy_first=False, watched=frozenset()):
    """Apply `change(lectures, indexes, now)` in one conditional write, retrying lost races.

    `create`: a missing record is created (all lectures not completed) and then changed,
    unless `legacy_first`, which stores it unchanged as the original LMS did. `watched`: the
    lectures only watching can complete in this write (counted apart from explicit completions).
    """
    mount.database.indexes.require_unique()
    records = mount.database.records_for_write()
    lecture_ids = course.current
    for attempt in range(MAX_ATTEMPTS):
        record, now = _load(records, user_id, course, create)
        lectures = record.lecture_progress
        was_percentage, was_completed = (0, False) if record.is_new else lectures.completion(lecture_ids)
        if not was_completed:
            # Not complete over the current lectures (GET shows completedAt null), even if the
            # stored flag predates a lecture added since: a completion now is a new one.
            record.completed_at = None
        indexes = record.for_course(lecture_ids).lecture_progress.reconcile(lecture_ids)
        if not (record.is_new and legacy_first):
            change(lectures, indexes, now)
        record.last_accessed = record.updated_at = now
        store.apply_rule(record)
        done = Write(record, course, lectures.newly_completed(lecture_ids), was_percentage, was_completed, now,
                     frozenset(watched))
        if _store(mount, records, done):
            figures.record_written(mount, done)
            _announce(done)
            mount.metrics.write_stored(done)
            return done
        mount.metrics.write_retried()
        _backoff(attempt)
    mount.metrics.write_given_up()
    raise Conflict("The record is being changed by other requests; retry", headers={"Retry-After": "1"})


def _store(mount, records, done):
    """Write the record, and its statements in the same transaction when xAPI is on."""
    statements = mount.outbox.statements_for(done) if mount.outbox is not None else None
    if not statements:
        return store.write(records, done.record)
    return mount.outbox.store_with(records, done.record, statements)


def _announce(done):
    """Send the host's events for what this stored write really changed, once."""
    record = done.record
    ids = {"user_id": record.user, "course_id": record.course, "progress": record}
    for lecture in done.completed_lectures:
        signals.send(signals.lecture_completed, lecture_id=lecture, **ids)
    if record.is_completed and not done.was_completed:
        signals.send(signals.course_completed, **ids)


def _set_lecture(lectures, index, change, now):
    """One lecture's new state: the played intervals merged; the flag if given (or watched
    enough); unless an older `at` says otherwise, lastWatched now and watchTime if given."""
    son = lectures.sons[index]
    if change.played:
        lectures.set(index, "played", played.merge(son.get("played"), change.played))
    flag = change.is_completed
    if flag is None and played.completes(change.complete_after_ms, son):
        flag = True
    if flag is not None:
        lectures.set(index, "isCompleted", flag)
    if not played.moves_position(son, change.at):
        return
    lectures.set(index, "lastWatched", now)
    if change.watch_time is not None:
        lectures.set(index, "watchTime", change.watch_time)
    if change.at is not None:
        lectures.set(index, "positionAt", change.at)


def unflagged(changes):
    """The lectures the client sent no flag for: if the write completes one, watching did."""
    return frozenset(change.lecture for change in changes if change.is_completed is None)


def mark_lecture(mount, user_id, course_id, change, minimal=False):
    """PATCH one lecture; creates the record on first use and applies the change."""
    watched = unflagged([change])
    resolved = False
    if minimal and change.is_completed is None:
        change = _record_position(mount, user_id, course_id, change)
        if change is None:
            return Outcome()
        resolved = True  # the cheap path read the duration already
    course, caller = open_course(mount, user_id, course_id, with_caller=not minimal)
    if require_lectures(course, [change.lecture]):
        raise InvalidInput(NOT_IN_COURSE, errors={"lectureId": [NOT_IN_COURSE]})
    if not resolved:
        [change] = watching.resolve_flags(mount, [change])

    def apply(lectures, indexes, now):
        _set_lecture(lectures, indexes[change.lecture], change, now)

    done = write(mount, user_id, course, apply, create=True, legacy_first=mount.settings.legacy_first_patch,
                 watched=watched)
    return _answer_write(mount, done, user_id, caller, minimal)


def _record_position(mount, user_id, course_id, change):
    """The cheap path of a position update with a minimal answer: None when stored.

    Two commands: one question about the course (enrollment, the lecture, its duration; the
    same 404, 403 and 400 as the full path, in the same order) and one update, no read of the
    record; played intervals and `at` are merged and ordered by the database in that update.
    Otherwise the change for the full path, resolved by watching from the duration read here:
    completed when its position completes the lecture (nothing is written then), else as it
    was (the update matched nothing: no record, no entry for the lecture, no numeric __v).
    When played seconds complete lectures (PROGRESS_COMPLETE_BY=watched) and this report adds
    some, the update answers with the entry as merged, and an entry that has now played
    enough takes the full path (merging again changes nothing), which completes it.
    """
    ready(mount)
    place = mount.catalog.lecture_place(course_id, user_id, change.lecture)
    if place is None:
        raise NotFound(COURSE_NOT_FOUND)
    require_enrolled(mount, place.course, user_id)
    if not place.in_course:
        raise InvalidInput(NOT_IN_COURSE, errors={"lectureId": [NOT_IN_COURSE]})
    change = watching.resolve(mount.settings, place.duration, change)
    if change.is_completed:
        return change
    mount.database.indexes.require_unique()
    records = mount.database.records_for_write()
    if change.complete_after_ms is None:
        stored = store.record_position(records, user_id, course_id, change, now_ms())
        return None if stored else change
    entry = store.record_position_and_read(records, user_id, course_id, change, now_ms())
    if entry is None or (played.completes(change.complete_after_ms, entry) and not entry_done(entry)):
        return change
    return None


def mark_lectures(mount, user_id, course_id, changes, minimal=False):
    """PATCH many lectures in one write, all or none; creates the record on first use."""
    course, caller = open_course(mount, user_id, course_id, with_caller=not minimal)
    foreign = require_lectures(course, [c.lecture for c in changes])
    if foreign:
        raise InvalidInput(NOT_IN_COURSE, errors={"lectures": {str(i): {"lecture": [NOT_IN_COURSE]} for i in foreign}})
    watched = unflagged(changes)
    changes = watching.resolve_flags(mount, changes)

    def apply(lectures, indexes, now):
        for change in changes:
            _set_lecture(lectures, indexes[change.lecture], change, now)

    done = write(mount, user_id, course, apply, create=True, watched=watched)
    return _answer_write(mount, done, user_id, caller, minimal)


def complete_course(mount, user_id, course_id, minimal=False):
    """POST complete: every current lecture completed."""
    course, caller = open_course(mount, user_id, course_id, with_caller=not minimal)

    def apply(lectures, indexes, now):
        for lecture in course.current:
            lectures.set(indexes[lecture], "isCompleted", True)

    done = write(mount, user_id, course, apply)
    return _answer_write(mount, done, user_id, caller, minimal, COMPLETED_MESSAGE)


def reset_course(mount, user_id, course_id, minimal=False):
    """POST reset: every lecture not completed, lastWatched null, watchTime 0."""
    course, caller = open_course(mount, user_id, course_id, with_caller=not minimal)
    changed = {}

    def apply(lectures, indexes, now):
        changed["any"] = False
        for index, son in enumerate(lectures.sons):
            if not isinstance(son, dict):
                continue
            if son.get("isCompleted") or son.get("lastWatched") is not None or son.get("watchTime") or son.get("played"):
                changed["any"] = True
            lectures.set(index, "isCompleted", False)
            lectures.set(index, "lastWatched", None)
            lectures.set(index, "watchTime", 0.0)
            # What was played and the player's time of the position start over too (section
            # 14); entries that never had them get no new keys.
            for key, empty in (("played", []), ("positionAt", None)):
                if son.get(key):
                    lectures.set(index, key, empty)

    done = write(mount, user_id, course, apply)
    if changed.get("any"):
        record = done.record
        signals.send(signals.progress_reset, user_id=record.user, course_id=record.course, progress=record)
    return _answer_write(mount, done, user_id, caller, minimal, RESET_MESSAGE)

