"""The yardstick: GET and PATCH of the progress contract in raw Flask + pymongo + PyJWT.

No ODM, no schema library, the fewest database round trips the contract allows: GET reads the
course, the record and the user (3 commands); PATCH reads the course and the record, writes
once conditionally on `__v` and reads the user (4). `bench.run` compares the real service's
cost per request against this. Served as `bench.reference_app:app`; never shipped.
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
    """The validated PATCH body: {"isCompleted": bool, "watchTime": number >= 0, optional}."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise Fail(400, "Request body must be a JSON object")
    errors = {name: ["Unknown field."] for name in body if name not in ("isCompleted", "watchTime")}
    if type(body.get("isCompleted")) is not bool:
        errors["isCompleted"] = ["Must be true or false."]
    watch_time = body.get("watchTime", 0)
    if "watchTime" in body and (type(watch_time) not in (int, float)
                                or not math.isfinite(watch_time) or watch_time < 0):
        errors["watchTime"] = ["Must be a number of seconds, 0 or more."]
    if errors:
        raise Fail(400, "Invalid request body", errors)
    return body


def find_course(course_id):
    """The course's title, thumbnail and ordered lecture ids, or 404."""
    course = db().courses.find_one({"_id": course_id}, {"title": 1, "thumbnail": 1, "lectures": 1})
    if course is None:
        raise Fail(404, "Course not found")
    course.setdefault("lectures", [])
    return course


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


def dump(record, course, user_id):
    """The <progress> object: current lectures in course order, user and course populated."""
    user = db().users.find_one({"_id": user_id}, {"name": 1, "email": 1, "avatar": 1}) or {}
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
    fields = {"isCompleted": change["isCompleted"], "lastWatched": now}
    if "watchTime" in change:
        fields["watchTime"] = change["watchTime"]
    entries = record["lectureProgress"]
    index = next((i for i, e in enumerate(entries) if e["lecture"] == lecture_id), None)
    update = {"$set": {}, "$inc": {"__v": 1}}
    if index is None:  # a lecture added to the course after the record was created
        entry = {"_id": ObjectId(), "lecture": lecture_id, "watchTime": 0, **fields}
        entries.append(entry)
        update["$push"] = {"lectureProgress": entry}
    else:
        entries[index].update(fields)
        update["$set"].update({f"lectureProgress.{index}.{k}": v for k, v in fields.items()})
    percent = percentage(record, course["lectures"])
    top = {"completionPercentage": percent, "isCompleted": percent == 100,
           "updatedAt": now, "lastAccessed": now}
    record.update(top)
    update["$set"].update(top)
    return update


def new_record(user_id, course, now):
    """A record with every current lecture not completed, as the first PATCH creates it."""
    return {"_id": ObjectId(), "user": user_id, "course": course["_id"], "isCompleted": False,
            "completionPercentage": 0,
            "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": False,
                                 "watchTime": 0, "lastWatched": None}
                                for lecture in course["lectures"]],
            "lastAccessed": now, "createdAt": now, "updatedAt": now, "__v": 0}


def save_lecture(user_id, course, lecture_id, change):
    """Read-modify-write conditional on `__v`; create on first use; retry when another write won."""
    records = db().courseprogresses
    for _ in range(MAX_ATTEMPTS):
        now = utc_now()
        record = records.find_one({"user": user_id, "course": course["_id"]})
        if record is None:
            record = new_record(user_id, course, now)
            apply_change(record, course, lecture_id, change, now)  # inserted with __v 0
            try:
                records.insert_one(record)
                return record
            except DuplicateKeyError:  # a concurrent first PATCH created it: update that one
                continue
        record.setdefault("lectureProgress", [])
        version = record.get("__v")
        update = apply_change(record, course, lecture_id, change, now)
        match = {"_id": record["_id"], "user": user_id, "course": course["_id"], "__v": version}
        if records.update_one(match, update).matched_count:
            return record
    raise Fail(503, "Too many concurrent updates, try again")


@app.get("/api/v1/progress/<course_id>")
def get_progress(course_id):
    """The caller's record for the course."""
    user_id = caller_id()
    course = find_course(object_id(course_id, "courseId"))
    record = db().courseprogresses.find_one({"user": user_id, "course": course["_id"]})
    if record is None:
        raise Fail(404, "Progress not found for this course")
    record.setdefault("lectureProgress", [])
    return jsonify({"status": "success", "data": dump(record, course, user_id)})


@app.patch("/api/v1/progress/<course_id>/lectures/<lecture_id>")
def patch_lecture(course_id, lecture_id):
    """Set one lecture's flag (and watchTime); the first PATCH creates the record."""
    user_id = caller_id()
    course_oid = object_id(course_id, "courseId")
    lecture_oid = object_id(lecture_id, "lectureId")
    change = lecture_change()
    course = find_course(course_oid)
    if lecture_oid not in course["lectures"]:
        raise Fail(400, "Lecture does not belong to this course")
    record = save_lecture(user_id, course, lecture_oid, change)
    return jsonify({"status": "success", "data": dump(record, course, user_id)})
