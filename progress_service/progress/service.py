"""The progress operations: read, mark lectures, complete, reset. No Flask in here.

Every write is read -> change -> save(save_condition={"version": read}) with a bounded
retry: the pre_save rule computes from what this attempt read, so a write that lost the
race is redone from a fresh read rather than stored stale.
"""
import logging
import random
import time
from dataclasses import dataclass

from mongoengine.errors import NotUniqueError, SaveConditionError

from . import signals
from .catalog import UserInfo
from ..exceptions import Conflict, InvalidInput, NotFound
from .models import CourseProgress, LectureState, ProgressSnapshot, completion_state, now_ms

log = logging.getLogger("progress_service")

MAX_ATTEMPTS = 30
COURSE_NOT_FOUND = "Course not found"
RECORD_NOT_FOUND = "No progress record found for this user and course"
NOT_IN_COURSE = "Lecture does not belong to this course"


@dataclass
class ProgressView:
    """A record as the client sees it: the rule applied over the course's current lectures."""

    id: object
    user: object
    course: object
    is_completed: bool
    completion_percentage: int
    lecture_progress: list
    last_accessed: object
    created_at: object
    updated_at: object
    completed_at: object
    resume: object


@dataclass
class Result:
    """An operation's outcome: the view to show and an optional message."""

    progress: ProgressView
    message: str = None


def _find_raw(user_id, course_id):
    """The raw stored record, or None (the filter carries the whole shard key)."""
    return CourseProgress._get_collection().find_one({"user": user_id, "course": course_id})


def find_record(user_id, course_id):
    """The caller's record as a document to change and save, or None."""
    raw = _find_raw(user_id, course_id)
    return None if raw is None else CourseProgress._from_son(raw, created=False)


def read_record(user_id, course_id):
    """The caller's record as a read-only snapshot (GET stores nothing), or None."""
    raw = _find_raw(user_id, course_id)
    return None if raw is None else ProgressSnapshot.from_son(raw)


def require_course(catalog, course_id):
    """The course, or 404."""
    course = catalog.course(course_id)
    if course is None:
        raise NotFound(COURSE_NOT_FOUND)
    return course


def resume_point(entries):
    """Most recently watched lecture not completed, else the first not completed, else None."""
    open_entries = [entry for entry in entries if not entry.is_completed]
    if not open_entries:
        return None
    watched = [entry for entry in open_entries if entry.last_watched is not None]
    entry = max(watched, key=lambda e: e.last_watched) if watched else open_entries[0]
    return {"lecture": entry.lecture, "watchTime": entry.watch_time or 0}


def present(record, course, user):
    """The view of a record: current lectures in course order, the rule over stored flags."""
    known = record.entries_by_lecture()
    shown = [known.get(lecture) or LectureState(lecture) for lecture in dict.fromkeys(course.lecture_ids)]
    percentage, done = completion_state(shown, course.lecture_ids)
    return ProgressView(
        id=record.id,
        # A token's user missing from `users` is still served, with null name/email/avatar.
        user=user or UserInfo(record.user),
        course=course,
        is_completed=done,
        completion_percentage=percentage,
        lecture_progress=shown,
        last_accessed=record.last_accessed,
        created_at=record.created_at,
        updated_at=record.updated_at,
        # GET never writes: a course that became complete only because lectures were
        # removed shows no completion time until the next write sets one.
        completed_at=record.completed_at if done else None,
        resume=resume_point(shown),
    )


def get_progress(catalog, user_id, course_id):
    """GET: the caller's record, 404 when the course or the record is missing."""
    course = require_course(catalog, course_id)
    record = read_record(user_id, course_id)
    if record is None:
        raise NotFound(RECORD_NOT_FOUND)
    return Result(present(record, course, catalog.user(user_id)))


def _flags(entries, lecture_ids):
    """Completed flag of each current lecture, to see what a write really changed."""
    return {lecture: bool(entries[lecture].is_completed) if lecture in entries else False
            for lecture in lecture_ids}


def _backoff(attempt):
    """Sleep a little, longer after each lost race, jittered so writers spread out."""
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** attempt)))


def _load_for_write(user_id, course, create, now):
    """(record, created): the stored record, or a new one when `create`, else 404."""
    record = find_record(user_id, course.id)
    if record is not None:
        return record, False
    if not create:
        raise NotFound(RECORD_NOT_FOUND)
    return CourseProgress(user=user_id, course=course.id, created_at=now, version=0), True


def write(user_id, course, change, create=False, legacy_first=False):
    """Apply `change(record, now, entries)` in one conditional save, retrying lost races.

    `create`: a missing record is created (all lectures not completed) and then changed,
    unless `legacy_first`, which stores it unchanged as the original LMS did.
    """
    for attempt in range(MAX_ATTEMPTS):
        now = now_ms()
        record, created = _load_for_write(user_id, course, create, now)
        was_completed = not created and completion_state(record.lecture_progress, course.lecture_ids)[1]
        if not was_completed:
            # Not complete over the current lectures (GET shows completedAt null), even if
            # the stored flag predates a lecture added since: a completion now is a new one.
            record.completed_at = None
        entries = record.for_course(course.lecture_ids).reconcile(course.lecture_ids)
        before = _flags(entries, course.lecture_ids)
        if not (created and legacy_first):
            change(record, now, entries)
        read_version = record.version
        record.last_accessed = record.updated_at = now
        try:
            # validate=False: the schemas validated the input and the save rule computes the
            # rest; MongoEngine's validation walked every entry again (a tenth of a PATCH).
            if created:
                record.save(force_insert=True, validate=False)
            else:
                # Increment __v and store only if nobody wrote since our read.
                record.version = (read_version or 0) + 1
                record.save(save_condition={"version": read_version}, validate=False)
        except (NotUniqueError, SaveConditionError):
            # Another writer won (a simultaneous first write, or any write since our read).
            _backoff(attempt)
            continue
        _announce(record, course, entries, before, was_completed)
        return record
    raise Conflict("The record is being changed by other requests; retry", headers={"Retry-After": "1"})


def _announce(record, course, entries, before, was_completed):
    """Send the host's events for what this stored write really changed, once."""
    after = _flags(entries, course.lecture_ids)
    ids = {"user_id": record.user, "course_id": record.course, "progress": record}
    for lecture, done in after.items():
        if done and not before.get(lecture):
            _send(signals.lecture_completed, lecture_id=lecture, **ids)
    if record.is_completed and not was_completed:
        _send(signals.course_completed, **ids)


def _send(signal, **kwargs):
    """Send an event; a failing receiver is logged, never turned into a failed request.

    The write is already stored: answering 500 would make the client retry a change that
    succeeded, and the host's bug is theirs to see in the log.
    """
    for receiver in signal.receivers_for(None):
        try:
            receiver(None, **kwargs)
        except Exception:  # noqa: BLE001  (any receiver bug)
            log.exception("a receiver of %s failed", signal.name)


def _set_lecture(entry, is_completed, watch_time, now):
    """One lecture's new state: flag, lastWatched now, watchTime if given."""
    entry.is_completed = is_completed
    entry.last_watched = now
    if watch_time is not None:
        entry.watch_time = watch_time


def mark_lecture(catalog, user_id, course_id, lecture_id, is_completed, watch_time=None,
                 legacy_first=False):
    """PATCH one lecture; creates the record on first use and applies the change."""
    course = require_course(catalog, course_id)
    if lecture_id not in course.lecture_ids:
        raise InvalidInput(NOT_IN_COURSE, errors={"lectureId": [NOT_IN_COURSE]})

    def change(record, now, entries):
        _set_lecture(entries[lecture_id], is_completed, watch_time, now)

    record = write(user_id, course, change, create=True, legacy_first=legacy_first)
    return Result(present(record, course, catalog.user(user_id)))


def mark_lectures(catalog, user_id, course_id, items):
    """PATCH many lectures in one save, all or none; creates the record on first use."""
    course = require_course(catalog, course_id)
    current = set(course.lecture_ids)
    foreign = {str(index): {"lecture": [NOT_IN_COURSE]}
               for index, item in enumerate(items) if item["lecture"] not in current}
    if foreign:
        raise InvalidInput(NOT_IN_COURSE, errors={"lectures": foreign})

    def change(record, now, entries):
        for item in items:
            _set_lecture(entries[item["lecture"]], item["is_completed"], item.get("watch_time"), now)

    record = write(user_id, course, change, create=True)
    return Result(present(record, course, catalog.user(user_id)))


def complete_course(catalog, user_id, course_id):
    """POST complete: every current lecture completed."""
    course = require_course(catalog, course_id)

    def change(record, now, entries):
        for lecture in course.lecture_ids:
            entries[lecture].is_completed = True

    record = write(user_id, course, change)
    return Result(present(record, course, catalog.user(user_id)), "Course marked as completed")


def reset_course(catalog, user_id, course_id):
    """POST reset: every lecture not completed, lastWatched null, watchTime 0."""
    course = require_course(catalog, course_id)
    changed = {}

    def change(record, now, entries):
        changed["any"] = any(
            entry.is_completed or entry.last_watched or entry.watch_time
            for entry in record.lecture_progress
        )
        for entry in record.lecture_progress:
            entry.is_completed = False
            entry.last_watched = None
            entry.watch_time = 0

    record = write(user_id, course, change)
    if changed.get("any"):
        _send(signals.progress_reset, user_id=record.user, course_id=record.course, progress=record)
    return Result(present(record, course, catalog.user(user_id)), "Course progress has been reset")
