"""The four endpoints of contract section 3, from the outside: HTTP in, JSON and stored state out."""
import re

import pytest
from bson import ObjectId

from .support import BOTH, PREFIX, Api, make_token

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PROGRESS_KEYS = {"_id", "user", "course", "isCompleted", "completionPercentage", "lectureProgress",
                 "lastAccessed", "createdAt", "updatedAt", "completedAt", "resume"}


def flags(record):
    """Stored isCompleted of each lecture entry, in stored order."""
    return [(entry["lecture"], entry["isCompleted"]) for entry in record["lectureProgress"]]


@BOTH
def test_get_before_any_record_is_404(api, lms):
    """No record yet: 404 in the envelope, and GET creates nothing."""
    course, _ = lms.course(3)
    response = api.get(course)
    assert response.status_code == 404
    assert response.json == {"status": "fail", "message": "No progress record found for this user and course"}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_first_patch_creates_the_record_and_applies_the_change(api, lms):
    """The departure from the seed: the first 'mark complete' is not lost."""
    course, lectures = lms.course(3)
    response = api.patch(course, lectures[0], {"isCompleted": True})
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "success"
    data = body["data"]
    assert set(data) == PROGRESS_KEYS
    assert data["completionPercentage"] == 33 and data["isCompleted"] is False
    assert [entry["lecture"] for entry in data["lectureProgress"]] == [str(x) for x in lectures]
    assert [entry["isCompleted"] for entry in data["lectureProgress"]] == [True, False, False]
    assert ISO.match(data["lectureProgress"][0]["lastWatched"])
    assert data["lectureProgress"][1] == {"lecture": str(lectures[1]), "isCompleted": False,
                                          "watchTime": 0, "lastWatched": None, "watchedSeconds": 0}
    assert data["user"] == {"_id": str(api.user_id), "name": "Ada Student",
                            "email": f"{api.user_id}@example.com", "avatar": None}
    assert data["course"] == {"_id": str(course), "title": "Course", "thumbnail": None}
    stored = lms.record(api.user_id, course)
    assert stored["_id"] == ObjectId(data["_id"])
    assert stored["user"] == api.user_id and stored["course"] == course
    assert flags(stored) == [(lectures[0], True), (lectures[1], False), (lectures[2], False)]
    assert stored["completionPercentage"] == 33 and stored["isCompleted"] is False
    assert stored["__v"] == 0
    assert all(isinstance(entry["_id"], ObjectId) for entry in stored["lectureProgress"])


@BOTH
def test_patch_then_get_returns_the_same_document(api, lms):
    """Millisecond times: a write's response equals a later GET."""
    course, lectures = lms.course(2)
    written = api.patch(course, lectures[1], {"isCompleted": True, "watchTime": 42.5}).json["data"]
    read = api.get(course).json["data"]
    assert read == written
    assert written["lectureProgress"][1]["watchTime"] == 42.5
    for key in ("lastAccessed", "createdAt", "updatedAt"):
        assert ISO.match(written[key]), key


@BOTH
def test_second_patch_updates_flag_watch_time_and_version(api, lms):
    """Later PATCHes change one lecture, keep the others, and increment __v."""
    course, lectures = lms.course(3)
    first = api.patch(course, lectures[0], {"isCompleted": True}).json["data"]
    second = api.patch(course, lectures[1], {"isCompleted": True, "watchTime": 30}).json["data"]
    assert second["completionPercentage"] == 67
    assert second["lectureProgress"][1]["watchTime"] == 30
    assert second["createdAt"] == first["createdAt"]
    undo = api.patch(course, lectures[1], {"isCompleted": False}).json["data"]
    assert undo["completionPercentage"] == 33
    assert undo["lectureProgress"][1]["watchTime"] == 30, "watchTime kept when not given"
    stored = lms.record(api.user_id, course)
    assert stored["__v"] == 2
    assert flags(stored) == [(lectures[0], True), (lectures[1], False), (lectures[2], False)]
    assert stored["completionPercentage"] == 33


@BOTH
def test_complete_marks_every_lecture(api, lms):
    """complete: all lectures done, 100, the message, completedAt set."""
    course, lectures = lms.course(3)
    api.patch(course, lectures[0], {"isCompleted": True})
    response = api.complete(course)
    assert response.status_code == 200
    body = response.json
    assert body["message"] == "Course marked as completed"
    assert body["data"]["completionPercentage"] == 100 and body["data"]["isCompleted"] is True
    assert all(entry["isCompleted"] for entry in body["data"]["lectureProgress"])
    assert ISO.match(body["data"]["completedAt"])
    assert body["data"]["resume"] is None
    stored = lms.record(api.user_id, course)
    assert stored["completionPercentage"] == 100 and stored["isCompleted"] is True
    assert all(flag for _, flag in flags(stored))


@BOTH
def test_reset_clears_everything(api, lms):
    """reset: not completed, lastWatched null (stored as null), watchTime 0, 0%."""
    course, lectures = lms.course(2)
    api.patch(course, lectures[0], {"isCompleted": True, "watchTime": 99})
    api.complete(course)
    response = api.reset(course)
    assert response.status_code == 200
    body = response.json
    assert body["message"] == "Course progress has been reset"
    assert body["data"]["completionPercentage"] == 0 and body["data"]["isCompleted"] is False
    assert body["data"]["completedAt"] is None
    assert body["data"]["lectureProgress"] == [
        {"lecture": str(lecture), "isCompleted": False, "watchTime": 0, "lastWatched": None,
         "watchedSeconds": 0}
        for lecture in lectures
    ]
    stored = lms.record(api.user_id, course)
    for entry in stored["lectureProgress"]:
        assert entry["isCompleted"] is False and entry["watchTime"] == 0
        assert "lastWatched" in entry and entry["lastWatched"] is None
    assert stored["completionPercentage"] == 0 and stored["__v"] == 2


@BOTH
@pytest.mark.parametrize("action", ["complete", "reset"])
def test_complete_and_reset_need_a_record(api, lms, action):
    """Without a record: 404, and nothing is created."""
    course, _ = lms.course(2)
    response = getattr(api, action)(course)
    assert response.status_code == 404
    assert response.json["message"] == "No progress record found for this user and course"
    assert lms.record(api.user_id, course) is None


@BOTH
def test_unknown_course_is_404_everywhere(api, lms):
    """A well-formed id of no course: 404 'Course not found' on every endpoint."""
    missing = ObjectId()
    for response in (api.get(missing), api.patch(missing, ObjectId(), {"isCompleted": True}),
                     api.complete(missing), api.reset(missing)):
        assert response.status_code == 404
        assert response.json == {"status": "fail", "message": "Course not found"}


@BOTH
def test_lecture_of_another_course_is_400(api, lms):
    """A lecture that is not in this course: 400, nothing stored."""
    course, _ = lms.course(2)
    _, others = lms.course(1)
    response = api.patch(course, others[0], {"isCompleted": True})
    assert response.status_code == 400
    assert response.json["message"] == "Lecture does not belong to this course"
    assert response.json["errors"] == {"lectureId": ["Lecture does not belong to this course"]}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_unknown_user_is_served_with_null_fields(client, lms):
    """A valid token whose user is not in `users`: served, name/email/avatar null."""
    course, lectures = lms.course(1)
    ghost = ObjectId()
    lms.enroll(ghost, course)
    response = Api(client, ghost).patch(course, lectures[0], {"isCompleted": True})
    assert response.status_code == 200
    assert response.json["data"]["user"] == {"_id": str(ghost), "name": None, "email": None, "avatar": None}
    assert response.json["data"]["completionPercentage"] == 100


@BOTH
def test_no_password_ever_leaves(api, lms):
    """The users collection has a password hash; no response body contains it."""
    course, lectures = lms.course(1)
    bodies = [api.patch(course, lectures[0], {"isCompleted": True}), api.get(course),
              api.complete(course), api.reset(course)]
    for response in bodies:
        text = response.get_data(as_text=True)
        assert "password" not in text and "SECRETHASH" not in text


@BOTH
def test_original_documents_load_and_update(api, lms):
    """A record written by the Mongoose app (__v, entry _ids, extra fields) updates cleanly."""
    course, lectures = lms.course(2)
    entry_id = ObjectId()
    lms.db.courseprogresses.insert_one({
        "user": api.user_id, "course": course, "isCompleted": False, "completionPercentage": 0,
        "lectureProgress": [{"_id": entry_id, "lecture": lectures[0], "isCompleted": False,
                             "watchTime": 5, "lastWatched": None, "note": "kept"}],
        "lastAccessed": None, "createdAt": None, "updatedAt": None, "__v": 7, "legacyField": {"a": 1},
    })
    response = api.patch(course, lectures[0], {"isCompleted": True})
    assert response.status_code == 200
    assert response.json["data"]["completionPercentage"] == 50
    stored = lms.record(api.user_id, course)
    assert stored["__v"] == 8 and stored["legacyField"] == {"a": 1}
    assert stored["lectureProgress"][0]["_id"] == entry_id
    assert stored["lectureProgress"][0]["note"] == "kept"
    assert stored["lectureProgress"][0]["isCompleted"] is True
    assert [entry["lecture"] for entry in stored["lectureProgress"]] == lectures


@BOTH
def test_empty_course_stays_at_zero(api, lms):
    """A course with no lectures: complete gives 0 and isCompleted false."""
    course, _ = lms.course(0)
    lms.db.courseprogresses.insert_one({"user": api.user_id, "course": course, "lectureProgress": [],
                                        "isCompleted": True, "completionPercentage": 100, "__v": 0})
    body = api.complete(course).json
    assert body["data"]["completionPercentage"] == 0 and body["data"]["isCompleted"] is False
    assert body["data"]["lectureProgress"] == []
    stored = lms.record(api.user_id, course)
    assert stored["completionPercentage"] == 0 and stored["isCompleted"] is False


@BOTH
@pytest.mark.parametrize("app_config", [{"PROGRESS_LEGACY_FIRST_PATCH": True}])
def test_legacy_first_patch_drops_the_first_change(api, lms, app_config):
    """PROGRESS_LEGACY_FIRST_PATCH: the record is created unchanged, as the original did."""
    course, lectures = lms.course(2)
    first = api.patch(course, lectures[0], {"isCompleted": True})
    assert first.status_code == 200
    assert first.json["data"]["completionPercentage"] == 0
    assert [e["isCompleted"] for e in first.json["data"]["lectureProgress"]] == [False, False]
    assert flags(lms.record(api.user_id, course)) == [(lectures[0], False), (lectures[1], False)]
    second = api.patch(course, lectures[0], {"isCompleted": True})
    assert second.json["data"]["completionPercentage"] == 50
    # The checks still run first: a foreign lecture is a 400 and creates nothing.
    other_course, _ = lms.course(1)
    assert api.patch(other_course, ObjectId(), {"isCompleted": True}).status_code == 400
    assert lms.record(api.user_id, other_course) is None


@BOTH
def test_users_only_reach_their_own_record(client, lms):
    """The user comes from the token only: B never sees or changes A's record."""
    course, lectures = lms.course(2)
    alice, bob = Api(client, lms.user(name="Alice")), Api(client, lms.user(name="Bob"))
    alice.patch(course, lectures[0], {"isCompleted": True})
    assert bob.get(course).status_code == 404
    bob.patch(course, lectures[1], {"isCompleted": True})
    assert alice.get(course).json["data"]["lectureProgress"][1]["isCompleted"] is False
    assert lms.record(alice.user_id, course)["completionPercentage"] == 50
    assert lms.record(bob.user_id, course)["completionPercentage"] == 50
    assert lms.db.courseprogresses.count_documents({}) == 2
