"""The yardstick: the student's endpoints of the progress contract in raw Flask + pymongo + PyJWT.

No ODM, no schema library, the fewest database round trips a minimal implementation needs:
- GET reads the course, the record and the user (3 commands);
- PATCH reads the course, the record, writes once conditionally on `__v` and reads the user
  (4), plus the lecture's `duration` when a `watchTime` arrives without a flag (section 8:
  completion by watching at PROGRESS_COMPLETE_AT, default 0.9; an explicit flag wins;
  watching never un-completes). A body with only `watchTime` records the position;
- POST complete / reset read the course and the record, write the whole lecture list back
  in one `$set` conditional on `__v` (what a minimal implementation does: one path, rather
  than one per entry), and read the user (4);
- enrollment (section 8, PROGRESS_ENROLLMENT=required by default) is answered by the course
  query itself: an aggregation that projects `$in` of the caller in `enrolledStudents` and
  whether the list exists, so the list never leaves the database; a caller who is neither
  enrolled nor the instructor is read (with their role) to see whether they are an admin,
  else 403 `Not enrolled in this course`; a course without the field is open;
- `Prefer: return=minimal` on a write answers 204 with `Preference-Applied` and reads no user.
Without that header every answer is the full `<progress>`. `bench.run` compares the real
service's cost per request against this. Served as `bench.reference_app:app`; never shipped.
"""
import math
import os
import re
from datetime import datetime, timezone

import jwt
from bson import ObjectId
from flask import Flask, jsonify, request
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError
from werkzeug.exceptions import HTTPException

OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
# A conditional write that keeps losing to other writers gives up with a 503 rather than
# spinning for ever; 16 writers on one record need far fewer attempts than this.
MAX_ATTEMPTS = 50
SECRET = os.environ.get("JWT_SECRET_KEY", "")
IDENTITY_CLAIM = os.environ.get("JWT_IDENTITY_CLAIM", "sub")
ALLOWED_ORIGINS = {o.strip().rstrip("/") for o in
                   os.environ.get("CLIENT_URL", "http://localhost:5173").split(",")}
ENROLLMENT_REQUIRED = os.environ.get("PROGRESS_ENROLLMENT", "required").lower() != "off"
_complete_at = os.environ.get("PROGRESS_COMPLETE_AT", "0.9").lower()
COMPLETE_AT = None if _complete_at == "off" else float(_complete_at)
USER_FIELDS = {"name": 1, "email": 1, "avatar": 1, "role": 1}

app = Flask(__name__)
_database = None


class Fail(Exception):
    """An error response in the contract's envelope."""

    def __init__(self, status, message, errors=None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


@app.errorhandler(Fail)
def fail_response(error):
    """Every failure: {"status": "fail"|"error", "message", "errors"?}."""
    body = {"status": "fail" if error.status < 500 else "error", "message": error.message}
    if error.errors:
        body["errors"] = error.errors
    return jsonify(body), error.status


@app.errorhandler(HTTPException)
def routing_error(error):
    """404/405/413 from routing in the same envelope."""
    return fail_response(Fail(error.code, error.description))


def db():
    """The database, connected on first use so that gunicorn's fork happens before any socket."""
    global _database
    if _database is None:
        _database = MongoClient(os.environ["MONGODB_URI"]).get_default_database()
    return _database


def caller_id():
    """The caller's user id from the `token` cookie (wins) or the Bearer header, else 401."""
    token = request.cookies.get("token")
    if not token:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    if not token:
        raise Fail(401, "Authentication required")
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.PyJWTError:
        raise Fail(401, "Invalid or expired token") from None
    subject = claims.get(IDENTITY_CLAIM)
    if not isinstance(subject, str) or not OBJECT_ID.fullmatch(subject):
        raise Fail(401, "Invalid token identity")
    if request.method != "GET" and "token" in request.cookies:
        check_origin()
    return ObjectId(subject)


def check_origin():
    """403 for a cookie-authenticated write from a foreign origin (no header: allowed)."""
    origin = request.headers.get("Origin")
    if not origin and request.referrer:
        match = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+", request.referrer)
        origin = match.group(0) if match else "null"
    if origin and origin.rstrip("/") not in ALLOWED_ORIGINS:
        raise Fail(403, "Origin not allowed")


def object_id(value, field):
    """An ObjectId from a path segment, or 400 naming the field."""
    if not OBJECT_ID.fullmatch(value):
        raise Fail(400, f"Invalid {field}", {field: ["Not a valid ObjectId."]})
    return ObjectId(value)


def lecture_change():
    """The validated PATCH body: {"isCompleted": bool, "watchTime": number >= 0}, at least one."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise Fail(400, "Request body must be a JSON object")
    errors = {name: ["Unknown field."] for name in body if name not in ("isCompleted", "watchTime")}
    if "isCompleted" in body and type(body["isCompleted"]) is not bool:
        errors["isCompleted"] = ["Must be true or false."]
    watch_time = body.get("watchTime", 0)
    if "watchTime" in body and (type(watch_time) not in (int, float)
                                or not math.isfinite(watch_time) or watch_time < 0):
        errors["watchTime"] = ["Must be a number of seconds, 0 or more."]
    if not errors and "isCompleted" not in body and "watchTime" not in body:
        errors["isCompleted"] = ["Send isCompleted, watchTime or both."]
    if errors:
        raise Fail(400, "Invalid request body", errors)
    return body


def wants_minimal():
    """`Prefer: return=minimal` (RFC 7240), among other preferences."""
    return any(p.split(";")[0].replace(" ", "").lower() == "return=minimal"
               for header in request.headers.getlist("Prefer") for p in header.split(","))


def find_course(course_id, user_id):
    """(course, caller or None): the course's title, thumbnail and ordered lecture ids, 404
    without it, 403 when the caller may not use it. Enrollment is decided in the query (the
    list stays in the database); the caller is read only when their role decides, and
    handed back for the answer."""
    found = list(db().courses.aggregate([
        {"$match": {"_id": course_id}},
        {"$project": {"title": 1, "thumbnail": 1, "lectures": 1, "instructor": 1,
                      "enrolled": {"$in": [user_id, {"$ifNull": ["$enrolledStudents", []]}]},
                      "listed": {"$isArray": "$enrolledStudents"}}}]))
    if not found:
        raise Fail(404, "Course not found")
    course = found[0]
    course["lectures"] = course.get("lectures") or []
    if not ENROLLMENT_REQUIRED or not course.get("listed") or course.get("enrolled") \
            or course.get("instructor") == user_id:
        return course, None
    caller = db().users.find_one({"_id": user_id}, USER_FIELDS)
    if caller is None or caller.get("role") != "admin":
        raise Fail(403, "Not enrolled in this course")
    return course, caller


def watched_enough(lecture_id, watch_time):
    """Whether watching `watch_time` s completes the lecture: >= COMPLETE_AT of its duration,
    both in whole milliseconds (half up); a lecture without a positive duration never does."""
    if COMPLETE_AT is None:
        return False
    lecture = db().lectures.find_one({"_id": lecture_id}, {"duration": 1}) or {}
    duration = lecture.get("duration")
    if type(duration) not in (int, float) or not duration > 0:
        return False
    return math.floor(watch_time * 1000 + 0.5) >= math.floor(COMPLETE_AT * duration * 1000 + 0.5)


def percentage(record, lecture_ids):
    """The contract's rule: (200*c + t) // (2*t) over the course's current lectures."""
    total = len(lecture_ids)
    if not total:
        return 0
    flags = {}
    for entry in record["lectureProgress"]:
        flags.setdefault(entry["lecture"], bool(entry.get("isCompleted")))  # first entry wins
    done = sum(1 for lecture in lecture_ids if flags.get(lecture))
    return (200 * done + total) // (2 * total)


def utc_now():
    """Now in UTC, truncated to the millisecond that MongoDB stores."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(moment):
    """`Date.toISOString()`: 2026-11-26T19:30:00.123Z (stored times are UTC)."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def dump(record, course, user_id, caller=None):
    """The <progress> object: current lectures in course order, user and course populated."""
    user = caller or db().users.find_one({"_id": user_id}, USER_FIELDS) or {}
    entries = {}
    for entry in record["lectureProgress"]:
        entries.setdefault(entry["lecture"], entry)  # the first entry wins, as in percentage()
    lectures = []
    for lecture in course["lectures"]:
        entry = entries.get(lecture, {})
        lectures.append({"lecture": str(lecture), "isCompleted": bool(entry.get("isCompleted")),
                         "watchTime": entry.get("watchTime", 0),
                         "lastWatched": iso(entry.get("lastWatched"))})
    percent = percentage(record, course["lectures"])
    return {
        "_id": str(record["_id"]),
        "user": {"_id": str(user_id), "name": user.get("name"), "email": user.get("email"),
                 "avatar": user.get("avatar")},
        "course": {"_id": str(course["_id"]), "title": course.get("title"),
                   "thumbnail": course.get("thumbnail")},
        "isCompleted": percent == 100, "completionPercentage": percent,
        "lectureProgress": lectures,
        "lastAccessed": iso(record.get("lastAccessed")), "createdAt": iso(record.get("createdAt")),
        "updatedAt": iso(record.get("updatedAt")),
    }


def apply_change(record, course, lecture_id, change, now):
    """Apply the change to `record` in memory and return the equivalent MongoDB update."""
    fields = {"lastWatched": now}
    if "isCompleted" in change:
        fields["isCompleted"] = change["isCompleted"]
    if "watchTime" in change:
        fields["watchTime"] = change["watchTime"]
    entries = record["lectureProgress"]
    index = next((i for i, e in enumerate(entries) if e["lecture"] == lecture_id), None)
    update = {"$set": {}, "$inc": {"__v": 1}}
    if index is None:  # a lecture added to the course after the record was created
        entry = {"_id": ObjectId(), "lecture": lecture_id, "isCompleted": False, "watchTime": 0,
                 **fields}
        entries.append(entry)
        update["$push"] = {"lectureProgress": entry}
    else:
        entries[index].update(fields)
        update["$set"].update({f"lectureProgress.{index}.{k}": v for k, v in fields.items()})
    update["$set"].update(top_fields(record, course, now))
    return update


def top_fields(record, course, now):
    """The record's computed fields and times after a change (set in `record` too)."""
    percent = percentage(record, course["lectures"])
    top = {"completionPercentage": percent, "isCompleted": percent == 100,
           "updatedAt": now, "lastAccessed": now}
    record.update(top)
    return top


def set_every_lecture(record, course, now, reset):
    """complete (every current lecture completed) or reset (every stored entry not completed,
    not watched); missing entries appended. The update writes the whole list back."""
    entries = record["lectureProgress"]
    known = {entry["lecture"] for entry in entries}
    entries += [{"_id": ObjectId(), "lecture": lecture, "isCompleted": False, "watchTime": 0,
                 "lastWatched": None} for lecture in course["lectures"] if lecture not in known]
    if reset:
        for entry in entries:
            entry.update(isCompleted=False, watchTime=0, lastWatched=None)
    else:
        current = set(course["lectures"])
        for entry in entries:
            if entry["lecture"] in current:
                entry["isCompleted"] = True
    return {"$set": {"lectureProgress": entries, **top_fields(record, course, now)},
            "$inc": {"__v": 1}}


def new_record(user_id, course, now):
    """A record with every current lecture not completed, as the first PATCH creates it."""
    return {"_id": ObjectId(), "user": user_id, "course": course["_id"], "isCompleted": False,
            "completionPercentage": 0,
            "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": False,
                                 "watchTime": 0, "lastWatched": None}
                                for lecture in course["lectures"]],
            "lastAccessed": now, "createdAt": now, "updatedAt": now, "__v": 0}


def save(user_id, course, change, create):
    """Read-modify-write conditional on `__v`; `change(record, now)` returns the update.
    `create`: a missing record is created then changed (else 404); a lost race is redone."""
    records = db().courseprogresses
    for _ in range(MAX_ATTEMPTS):
        now = utc_now()
        record = records.find_one({"user": user_id, "course": course["_id"]})
        if record is None:
            if not create:
                raise Fail(404, "Progress not found for this course")
            record = new_record(user_id, course, now)
            change(record, now)  # inserted with __v 0
            try:
                records.insert_one(record)
                return record
            except DuplicateKeyError:  # a concurrent first PATCH created it: update that one
                continue
        record.setdefault("lectureProgress", [])
        version = record.get("__v")
        update = change(record, now)
        if version is None:  # no __v or null: $inc would fail on mongod; this write gives it one
            update["$set"]["__v"] = 1
            del update["$inc"]
        match = {"_id": record["_id"], "user": user_id, "course": course["_id"], "__v": version}
        if records.update_one(match, update).matched_count:
            return record
    raise Fail(503, "Too many concurrent updates, try again")


def answer(record, course, user_id, caller, message=None):
    """The success envelope around <progress>, or 204 when the client prefers it minimal."""
    if wants_minimal():
        response = app.response_class(status=204)
        response.headers.pop("Content-Type", None)
        response.headers["Preference-Applied"] = "return=minimal"
        return response
    body = {"status": "success", "data": dump(record, course, user_id, caller)}
    if message:
        body["message"] = message
    return jsonify(body)


@app.get("/api/v1/progress/<course_id>")
def get_progress(course_id):
    """The caller's record for the course."""
    user_id = caller_id()
    course, caller = find_course(object_id(course_id, "courseId"), user_id)
    record = db().courseprogresses.find_one({"user": user_id, "course": course["_id"]})
    if record is None:
        raise Fail(404, "Progress not found for this course")
    record.setdefault("lectureProgress", [])
    return jsonify({"status": "success", "data": dump(record, course, user_id, caller)})


@app.patch("/api/v1/progress/<course_id>/lectures/<lecture_id>")
def patch_lecture(course_id, lecture_id):
    """Set one lecture's flag, its position (watchTime), or both; the first PATCH creates the
    record. A watchTime far enough into the lecture completes it unless the body has a flag."""
    user_id = caller_id()
    course_oid = object_id(course_id, "courseId")
    lecture_oid = object_id(lecture_id, "lectureId")
    change = lecture_change()
    course, caller = find_course(course_oid, user_id)
    if lecture_oid not in course["lectures"]:
        raise Fail(400, "Lecture does not belong to this course")
    if "isCompleted" not in change and "watchTime" in change \
            and watched_enough(lecture_oid, change["watchTime"]):
        change = {**change, "isCompleted": True}
    record = save(user_id, course,
                  lambda record, now: apply_change(record, course, lecture_oid, change, now),
                  create=True)
    return answer(record, course, user_id, caller)


@app.post("/api/v1/progress/<course_id>/complete")
def complete_course(course_id):
    """Every current lecture completed."""
    user_id = caller_id()
    course, caller = find_course(object_id(course_id, "courseId"), user_id)
    record = save(user_id, course, lambda record, now: set_every_lecture(record, course, now, False),
                  create=False)
    return answer(record, course, user_id, caller, "Course marked as completed")


@app.post("/api/v1/progress/<course_id>/reset")
def reset_course(course_id):
    """Every lecture not completed, not watched (lastWatched null, watchTime 0)."""
    user_id = caller_id()
    course, caller = find_course(object_id(course_id, "courseId"), user_id)
    record = save(user_id, course, lambda record, now: set_every_lecture(record, course, now, True),
                  create=False)
    return answer(record, course, user_id, caller, "Course progress has been reset")
