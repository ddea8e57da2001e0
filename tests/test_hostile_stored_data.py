"""Hostile stored data (contract section 12): every field the service reads, of every wrong type, on
every endpoint, is a defined answer and never a 500.

Other programs write the collections the service reads: the original LMS, migrations,
mongoimport, an operator's shell. Each case below stores one field of one document with a value
of the wrong type (Infinity and NaN are BSON doubles, stored through pymongo as they would be by
any driver), then calls every endpoint: no 5xx, strict JSON in the envelope, and every read
answers exactly what it answers when the field is missing (the field is treated as absent).
Against the real wire server, which decides what `$in`, `$filter` and the filters do with them.
"""
import json
import logging
import time

import pytest
from bson import ObjectId

from .support import PREFIX, WIRE, Api, make_token, utc_ms

pytestmark = WIRE

MISSING = object()
VALUES = {
    "missing": MISSING,
    "Infinity": float("inf"),
    "NaN": float("nan"),
    "a string": "a string",
    "an object": {"an": "object"},
    "a list of junk": [None, {"x": 1}, "junk"],
}
# Values of a right type for the field: an answer may show them (a title "a string"; a record whose
# `user` is Infinity is a record of a user with that id). Only the other values are checked to be
# treated as absent.
TEXTS = {"a string"}
IDS = {"Infinity", "NaN", "a string"}
RIGHT = {("courses", "title"): TEXTS, ("courses", "thumbnail"): TEXTS, ("lectures", "title"): TEXTS,
         ("users", "name"): TEXTS, ("users", "email"): TEXTS, ("users", "avatar"): TEXTS,
         # Ids of other types: the junk entries are left out, "junk" stays an id.
         ("courses", "lectures"): {"a list of junk"}, ("courses", "enrolledStudents"): {"a list of junk"},
         ("courseprogresses", "user"): IDS, ("courseprogresses", "course"): IDS}
# (collection, field) of everything the service reads; record fields are of the student's record,
# `lectureProgress.0.*` of its first entry (the first lecture's).
FIELDS = [
    ("courses", "title"), ("courses", "thumbnail"), ("courses", "instructor"), ("courses", "lectures"),
    ("courses", "enrolledStudents"),
    ("lectures", "title"), ("lectures", "duration"),
    ("users", "name"), ("users", "email"), ("users", "avatar"), ("users", "role"),
    ("courseprogresses", "user"), ("courseprogresses", "course"), ("courseprogresses", "lectureProgress"),
    ("courseprogresses", "lectureProgress.0"), ("courseprogresses", "lectureProgress.0.lecture"),
    ("courseprogresses", "lectureProgress.0.isCompleted"), ("courseprogresses", "lectureProgress.0.watchTime"),
    ("courseprogresses", "lectureProgress.0.lastWatched"), ("courseprogresses", "lectureProgress.0.played"),
    ("courseprogresses", "lectureProgress.0.positionAt"), ("courseprogresses", "lastAccessed"),
    ("courseprogresses", "createdAt"), ("courseprogresses", "updatedAt"), ("courseprogresses", "completedAt"),
    ("courseprogresses", "__v"), ("courseprogresses", "isCompleted"), ("courseprogresses", "completionPercentage"),
]


def no_constants(name):
    """NaN and Infinity are not JSON: an answer holding one is broken for every JSON parser but Python's."""
    raise ValueError(f"{name} in an answer")


class Case:
    """A course of two lectures (with durations), its instructor, a student and the student's record."""

    def __init__(self, lms, client):
        self.lms, self.client = lms, client
        self.instructor = lms.user(role="instructor", name="Ida Instructor")
        self.student = lms.user()
        self.course, self.lectures = lms.course(2, instructor=self.instructor, durations=[100, 100])
        when = utc_ms(minutes=-5)
        self.record = ObjectId()
        lms.db.courseprogresses.insert_one({
            "_id": self.record, "user": self.student, "course": self.course, "isCompleted": False,
            "completionPercentage": 50, "completedAt": None, "lastAccessed": when, "createdAt": when,
            "updatedAt": when, "__v": 2,
            "lectureProgress": [
                {"_id": ObjectId(), "lecture": self.lectures[0], "isCompleted": True, "watchTime": 30,
                 "lastWatched": when},
                {"_id": ObjectId(), "lecture": self.lectures[1], "isCompleted": False, "watchTime": 5,
                 "lastWatched": when}]})

    def target(self, collection):
        """The _id of the document a field of `collection` is stored in."""
        return {"courses": self.course, "lectures": self.lectures[0], "users": self.student,
                "courseprogresses": self.record}[collection]

    def store(self, collection, field, value):
        """Store `value` in the field (MISSING: remove it)."""
        change = {"$unset": {field: ""}} if value is MISSING else {"$set": {field: value}}
        self.lms.db[collection].update_one({"_id": self.target(collection)}, change)

    def call(self, method, path, user, body=None, minimal=False):
        """(status, parsed body or None) of one request, checked: no 5xx, strict JSON in the envelope."""
        headers = {"Authorization": f"Bearer {make_token(user)}"}
        if minimal:
            headers["Prefer"] = "return=minimal"
        response = self.client.open(f"{PREFIX}{path}", method=method, headers=headers,
                                    data=None if body is None else json.dumps(body))
        text = response.get_data(as_text=True)
        assert response.status_code < 500, (method, path, response.status_code, text)
        if response.status_code == 204:
            assert text == ""
            return 204, None
        parsed = json.loads(text, parse_constant=no_constants)
        assert parsed["status"] in ("success", "fail"), parsed
        return response.status_code, parsed

    def reads(self):
        """Every read endpoint's answer: the student's GET and dashboard, the instructor's views."""
        course = f"/{self.course}"
        return [self.call("GET", course, self.student), self.call("GET", "", self.student),
                self.call("GET", f"{course}/summary", self.instructor),
                self.call("GET", f"{course}/students", self.instructor)]

    def writes(self):
        """Every write endpoint, as the student: heartbeats and positions (minimal and full), a flag, a batch,
        complete, reset."""
        course, (first, second) = f"/{self.course}", self.lectures
        heartbeat = {"watchTime": 20, "played": [[0, 20]], "at": int(time.time() * 1000)}  # the player module's
        return [self.call("PATCH", f"{course}/lectures/{first}", self.student, heartbeat, minimal=True),
                self.call("PATCH", f"{course}/lectures/{first}", self.student, heartbeat),
                self.call("PATCH", f"{course}/lectures/{second}", self.student, {"watchTime": 42}, minimal=True),
                self.call("PATCH", f"{course}/lectures/{second}", self.student, {"watchTime": 43}),
                self.call("PATCH", f"{course}/lectures/{first}", self.student, {"isCompleted": True}),
                self.call("PATCH", f"{course}/lectures", self.student,
                          {"lectures": [{"lecture": str(second), "isCompleted": True, "watchTime": 99}]}),
                self.call("POST", f"{course}/complete", self.student),
                self.call("POST", f"{course}/reset", self.student),
                self.call("PATCH", f"{course}/lectures/{first}", self.student, {"watchTime": 95})]


@pytest.mark.parametrize("name", VALUES)
@pytest.mark.parametrize("collection,field", FIELDS, ids=[".".join(pair) for pair in FIELDS])
def test_a_stored_field_of_the_wrong_type_is_treated_as_absent_on_every_endpoint(client, lms, collection,
                                                                                   field, name):
    """No 5xx anywhere; reads answer as for the field missing; writes are stored or refused in words."""
    case = Case(lms, client)
    value = VALUES[name]
    case.store(collection, field, value)
    hostile = case.reads()
    if name not in RIGHT.get((collection, field), ()):
        case.store(collection, field, MISSING)
        assert case.reads() == hostile, "the field is treated as absent"
    case.store(collection, field, value)
    statuses = [status for status, _ in case.writes()]
    assert all(status in (200, 204, 400, 403, 404) for status in statuses), statuses
    assert case.reads()[0][0] < 500


def test_a_course_whose_lists_are_not_arrays_is_an_answer_not_a_500(client, lms, caplog):
    """The issue's case: `lectures` and `enrolledStudents` strings. `$in` needs an array and `$ifNull` only
    covers missing or null: GET and PATCH were 500. Now: a course with no lectures and no enrollment list
    (open to signed-in users, as a course without the field), and one warning per field in the log."""
    student = lms.user()
    course, lectures = lms.course(2)
    lms.db.courses.update_one({"_id": course}, {"$set": {"lectures": "oops", "enrolledStudents": "oops"}})
    api = Api(client, student)
    with caplog.at_level(logging.WARNING, logger="progress_service"):
        patched = api.patch(course, lectures[0], {"isCompleted": True})
        position = api.patch(course, lectures[0], {"watchTime": 3}, headers={"Prefer": "return=minimal"})
        created = api.complete(course)
        again = api.patch(course, lectures[0], {"isCompleted": True})
    assert patched.status_code == 400 and patched.json["message"] == "Lecture does not belong to this course"
    assert position.status_code == 400 and again.status_code == 400
    assert created.status_code == 404  # no record: complete creates none
    assert api.get(course).json == {"status": "fail", "message": "No progress record found for this user and course"}
    warned = [record.getMessage() for record in caplog.records if str(course) in record.getMessage()]
    assert any("courses.lectures" in line for line in warned) and any("courses.enrolledStudents" in line
                                                                      for line in warned), warned
    assert len(warned) == 2, "logged once per field, not at every request"
