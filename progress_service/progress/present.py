"""`<progress>` as the client sees it: the rule over the stored flags and the current lectures.

Built straight from the stored document into JSON-ready values: GET and every write answer
through here, so a write's answer equals the next GET. schemas.ProgressOutSchema describes
the same shape for the OpenAPI document; tests/test_openapi.py checks answers against it.
"""
from datetime import timezone

from . import stored
from .played import watched_seconds
from .rule import as_utc, completion_percentage, entry_done, first_entries, unique

RECORDS = "courseprogresses"

# Integers up to 2^53 print as JavaScript prints them (30, not 30.0); larger ones as floats.
SAFE_INTEGER = 2 ** 53


def iso_time(value):
    """'2026-11-26T19:30:00.123Z', as Date.toISOString() writes it; None stays None.

    A naive time is UTC (as the driver stores it). datetime.isoformat is C code: a
    1,000-lecture answer formats up to 1,000 of these.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(timespec="milliseconds") + "Z"
    if value.utcoffset():
        value = value.astimezone(timezone.utc)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def js_number(value):
    """A stored number of seconds as JavaScript would write it (missing or null: 0)."""
    if not value:
        return 0
    if isinstance(value, float) and value.is_integer() and -SAFE_INTEGER <= value <= SAFE_INTEGER:
        return int(value)
    return value


def oid(value):
    """One of the host's ids (ObjectId, int, UUID, ... or None) as the client sees it: a string."""
    return None if value is None else str(value)


def _time(raw, key):
    """A record's time field, or None (a value that is not a time: absent, logged once)."""
    return iso_time(stored.read(raw, key, stored.moment, RECORDS))


def lecture_states(raw, lecture_ids, known=None):
    """(entries shown, completed count, resume) over the course's current lectures, in course order.

    The first stored entry of a lecture wins; a lecture without one is not completed.
    `known`: each lecture's first entry, when the caller (a write) has it already.
    """
    if known is None:
        known = first_entries(stored.read(raw, "lectureProgress", stored.array, RECORDS) or ())
    shown, completed = [], 0
    resume = first_open = latest = None
    append = shown.append
    for lecture in unique(lecture_ids):
        son = known.get(lecture)
        if son is None:
            append({"lecture": str(lecture), "isCompleted": False, "watchTime": 0, "lastWatched": None,
                    "watchedSeconds": 0})
            if first_open is None:
                first_open = (lecture, 0)
            continue
        # A value of the wrong type is absent, logged once (stored.py).
        watch_time = js_number(stored.read(son, "watchTime", stored.seconds, RECORDS, raw, "lectureProgress.watchTime"))
        watched = stored.read(son, "lastWatched", stored.moment, RECORDS, raw, "lectureProgress.lastWatched")
        done = entry_done(son)
        append({"lecture": str(lecture), "isCompleted": done, "watchTime": watch_time,
                "lastWatched": iso_time(watched), "watchedSeconds": js_number(watched_seconds(son.get("played")))})
        if done:
            completed += 1
            continue
        if first_open is None:
            first_open = (lecture, watch_time)
        if watched is not None:
            watched = as_utc(watched)  # comparable with the aware time a write has just set
            if latest is None or watched > latest:
                latest, resume = watched, (lecture, watch_time)
    resume = resume or first_open
    return shown, completed, ({"lecture": str(resume[0]), "watchTime": resume[1]} if resume else None)


def present(raw, course, user, user_id, known=None):
    """The `<progress>` of a stored record (raw document), for `course` and the caller `user`."""
    shown, completed, resume = lecture_states(raw, course.current, known)
    percentage = completion_percentage(completed, len(shown))
    done = percentage == 100
    return {
        "_id": oid(raw.get("_id")),
        # A token's user missing from `users` is still served, with null name/email/avatar.
        "user": {"_id": oid(user_id), "name": getattr(user, "name", None), "email": getattr(user, "email", None),
                 "avatar": getattr(user, "avatar", None)},
        "course": {"_id": oid(course.id), "title": course.title, "thumbnail": course.thumbnail},
        "isCompleted": done,
        "completionPercentage": percentage,
        "lectureProgress": shown,
        "lastAccessed": _time(raw, "lastAccessed"),
        "createdAt": _time(raw, "createdAt"),
        "updatedAt": _time(raw, "updatedAt"),
        # GET never writes: a course that became complete only because lectures were removed
        # shows no completion time until the next write sets one.
        "completedAt": _time(raw, "completedAt") if done else None,
        "resume": resume,
    }
