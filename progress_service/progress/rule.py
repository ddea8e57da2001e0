"""The rule of a progress record (contract section 2), as plain functions over stored entries.

`completion_state` is the one function that says a record's percentage and whether it is
completed: the pre_save signal (models.py) calls it on every save, and every answer applies
it to the stored flags (present.py). Entries are the stored sub-documents as read (dicts).
"""
from datetime import datetime, timezone

from bson import ObjectId


def now_ms():
    """The current UTC time, cut to the millisecond precision MongoDB stores."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def write_time(raw):
    """A write's time: now, taken after the read of `raw` (the stored record, or None), and never
    earlier than its stored updatedAt or lastAccessed (contract section 12).

    So a record's versions, statement timestamps, updatedAt and lastAccessed never run
    backwards, even when another machine whose clock runs ahead wrote it last.
    """
    now = now_ms()
    for key in ("updatedAt", "lastAccessed") if raw is not None else ():
        stored = as_utc(raw.get(key))
        if isinstance(stored, datetime) and stored > now:
            now = stored
    return now


def as_utc(value):
    """Naive datetimes from the driver are UTC (a host connection may not be tz_aware)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


# --- the percentage --------------------------------------------------------------------------

def completion_percentage(completed, total):
    """The exact integer percentage, half rounded up: (200*c + t) // (2*t); 0 for no lectures."""
    if total <= 0:
        return 0
    return (200 * completed + total) // (2 * total)


def is_entry(son):
    """A stored lecture entry we can read: a migration may have left nulls in the list, or an
    entry whose `lecture` is an object or a list (which names no lecture)."""
    return isinstance(son, dict) and not isinstance(son.get("lecture"), (dict, list))


def entry_done(son):
    """The stored flag of an entry: only `true` is completed (missing, null, or anything else is
    not, as the summary's pipeline counts it)."""
    return son.get("isCompleted") is True


def first_entries(sons):
    """Each lecture's stored entry: the first one, as Mongoose's array `find` returns it."""
    found = {}
    for son in sons:
        if is_entry(son):
            found.setdefault(son.get("lecture"), son)
    return found


def unique(lecture_ids):
    """The lecture ids once each, in order (a dict: membership and order in one).

    A dict given is taken as already unique: a course's is computed once per request
    (CourseInfo.current), since hashing an ObjectId is a Python call and a 1,000-lecture
    course would otherwise pay for it again in every pass.
    """
    return lecture_ids if isinstance(lecture_ids, dict) else dict.fromkeys(lecture_ids)


def completion_state(sons, lecture_ids, known=None):
    """(percentage, isCompleted) of stored entries over the course's current lectures.

    Only the course's current lectures count; an entry of a removed lecture is ignored, a
    lecture without an entry counts as not completed, and the first entry of a lecture wins.
    `known`: the first entry of each lecture, when the caller has it already.
    """
    if known is None:
        known = first_entries(sons)
    current = unique(lecture_ids)
    completed = 0
    for lecture in current:
        son = known.get(lecture)
        if son is not None and entry_done(son):
            completed += 1
    percentage = completion_percentage(completed, len(current))
    return percentage, percentage == 100


def new_entry(lecture):
    """The entry of a lecture nobody has watched, as the original app stores it."""
    # Mongoose gives every array entry an _id; ours get one too.
    return {"_id": ObjectId(), "lecture": lecture, "isCompleted": False, "watchTime": 0.0, "lastWatched": None}
