"""`<progress>` as the client sees it: the rule over the stored flags and the current lectures.

Built straight from the stored document into JSON-ready values: GET and every write answer
through here, so a write's answer equals the next GET. schemas.ProgressOutSchema describes
the same shape for the OpenAPI document; tests/test_openapi.py checks answers against it.
"""
from datetime import timezone

from .models import as_utc, completion_percentage, entry_done, first_entries

# Integers up to 2^53 print as JavaScript prints them (30, not 30.0); larger ones as floats.
SAFE_INTEGER = 2 ** 53


def iso_time(value):
    """'2026-11-26T19:30:00.123Z', as Date.toISOString() writes it; None stays None."""
    if value is None:
        return None
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(timezone.utc)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def js_number(value):
    """A stored number of seconds as JavaScript would write it (missing or null: 0)."""
    if not value:
        return 0
    if isinstance(value, float) and value.is_integer() and -SAFE_INTEGER <= value <= SAFE_INTEGER:
        return int(value)
    return value


def oid(value):
    """An ObjectId (or None) as the client sees it."""
    return None if value is None else str(value)


def lecture_states(raw, lecture_ids):
    """(entries shown, completed count, resume) over the course's current lectures, in course order.

    The first stored entry of a lecture wins; a lecture without one is not completed.
    """
    stored = raw.get("lectureProgress")
    known = first_entries(stored if isinstance(stored, list) else ())
    shown, completed = [], 0
    resume = first_open = None
    latest = None
    for lecture in dict.fromkeys(lecture_ids):
        son = known.get(lecture)
        if son is None:
            done, watch_time, watched = False, 0, None
        else:
            done, watch_time, watched = entry_done(son), js_number(son.get("watchTime")), as_utc(son.get("lastWatched"))
        shown.append({"lecture": str(lecture), "isCompleted": done, "watchTime": watch_time,
                      "lastWatched": iso_time(watched)})
        if done:
            completed += 1
        else:
            if first_open is None:
                first_open = (lecture, watch_time)
            if watched is not None and (latest is None or watched > latest):
                latest, resume = watched, (lecture, watch_time)
    resume = resume or first_open
    return shown, completed, ({"lecture": str(resume[0]), "watchTime": resume[1]} if resume else None)


def present(raw, course, user, user_id):
    """The `<progress>` of a stored record (raw document), for `course` and the caller `user`."""
    shown, completed, resume = lecture_states(raw, course.lecture_ids)
    percentage = completion_percentage(completed, len(shown))
    done = percentage == 100
    return {
        "_id": oid(raw.get("_id")),
        # A token's user missing from `users` is still served, with null name/email/avatar.
        "user": {"_id": str(user_id), "name": getattr(user, "name", None), "email": getattr(user, "email", None),
                 "avatar": getattr(user, "avatar", None)},
        "course": {"_id": str(course.id), "title": course.title, "thumbnail": course.thumbnail},
        "isCompleted": done,
        "completionPercentage": percentage,
        "lectureProgress": shown,
        "lastAccessed": iso_time(as_utc(raw.get("lastAccessed"))),
        "createdAt": iso_time(as_utc(raw.get("createdAt"))),
        "updatedAt": iso_time(as_utc(raw.get("updatedAt"))),
        # GET never writes: a course that became complete only because lectures were removed
        # shows no completion time until the next write sets one.
        "completedAt": iso_time(as_utc(raw.get("completedAt"))) if done else None,
        "resume": resume,
    }
