"""Input validation and the order of checks (contract section 3)."""
import pytest
from bson import ObjectId

from .support import BOTH, PREFIX, Api


@pytest.mark.parametrize("body,field", [
    ('{"isCompleted": "true"}', "isCompleted"),
    ('{"isCompleted": 1}', "isCompleted"),
    ('{"isCompleted": "yes"}', "isCompleted"),
    ('{"isCompleted": null}', "isCompleted"),
    ("{}", "isCompleted"),
    ("{}", "watchTime"),
    ('{"isCompleted": true, "watchTime": "12"}', "watchTime"),
    ('{"isCompleted": true, "watchTime": -1}', "watchTime"),
    ('{"isCompleted": true, "watchTime": true}', "watchTime"),
    ('{"isCompleted": true, "watchTime": null}', "watchTime"),
    ('{"isCompleted": true, "completionPercentage": 100}', "completionPercentage"),
    ('{"isCompleted": true, "user": "6b0000000000000000000000"}', "user"),
    ('{"isCompleted": true, "course": "6b0000000000000000000000"}', "course"),
])
def test_invalid_bodies_name_the_field(api, lms, body, field):
    """Strict types, a flag or a position required, unknown fields refused by name; nothing stored."""
    course, lectures = lms.course(2)
    response = api.patch(course, lectures[0], body, raw=True)
    assert response.status_code == 400
    assert response.json["status"] == "fail"
    assert field in response.json["errors"], response.json
    assert lms.record(api.user_id, course) is None


@pytest.mark.parametrize("body", [
    "", "not json", "[true]", '"isCompleted"', "null", '{"isCompleted": true',
    '{"isCompleted": true, "watchTime": NaN}', '{"isCompleted": true, "watchTime": Infinity}',
])
def test_body_must_be_a_json_object(api, lms, body):
    """Not JSON, or not an object (NaN/Infinity are not JSON): 400 with a message."""
    course, lectures = lms.course(1)
    response = api.patch(course, lectures[0], body, raw=True)
    assert response.status_code == 400
    assert response.json["status"] == "fail" and response.json["message"]
    assert lms.record(api.user_id, course) is None


@BOTH
def test_body_is_json_whatever_the_content_type(api, lms):
    """curl -d sends application/x-www-form-urlencoded; the body is still read as JSON."""
    course, lectures = lms.course(2)
    response = api.patch(course, lectures[0], {"isCompleted": True, "watchTime": 7},
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert response.json["data"]["lectureProgress"][0]["watchTime"] == 7
    assert lms.record(api.user_id, course)["lectureProgress"][0]["isCompleted"] is True


def test_zero_watch_time_and_false_are_accepted(api, lms):
    """The edges of the valid range."""
    course, lectures = lms.course(1)
    response = api.patch(course, lectures[0], {"isCompleted": False, "watchTime": 0})
    assert response.status_code == 200
    assert response.json["data"]["lectureProgress"][0] == {
        "lecture": str(lectures[0]), "isCompleted": False, "watchTime": 0, "watchedSeconds": 0,
        "lastWatched": response.json["data"]["lectureProgress"][0]["lastWatched"]}


@pytest.mark.parametrize("course_id", ["not-an-id", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "6b" * 13])
def test_malformed_course_id_is_400(api, course_id):
    """Every endpoint: 400 naming courseId."""
    for response in (api.get(course_id), api.complete(course_id), api.reset(course_id),
                     api.patch(course_id, ObjectId(), {"isCompleted": True})):
        assert response.status_code == 400
        assert "courseId" in response.json["errors"]


def test_malformed_lecture_id_is_400(api, lms):
    """400 naming lectureId."""
    course, _ = lms.course(1)
    response = api.patch(course, "nope", {"isCompleted": True})
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["lectureId"]


def test_order_401_before_400(client):
    """No token and a malformed id: 401."""
    response = client.get(f"{PREFIX}/not-an-id")
    assert response.status_code == 401
    assert response.json["status"] == "fail"


def test_order_malformed_id_before_body(api):
    """A malformed id and a bad body: the id is reported (ids come first)."""
    response = api.patch("bad", ObjectId(), {"isCompleted": "x"})
    assert response.status_code == 400
    assert "courseId" in response.json["errors"] and "isCompleted" not in response.json["errors"]


def test_order_body_before_unknown_course(api):
    """A bad body on a course that does not exist: 400, not 404."""
    response = api.patch(ObjectId(), ObjectId(), {"isCompleted": "x"})
    assert response.status_code == 400
    assert "isCompleted" in response.json["errors"]


def test_order_unknown_course_before_foreign_lecture(api):
    """A foreign lecture on a missing course: 404 course."""
    response = api.patch(ObjectId(), ObjectId(), {"isCompleted": True})
    assert response.status_code == 404
    assert response.json["message"] == "Course not found"


def test_order_foreign_lecture_before_missing_record(api, lms):
    """A foreign lecture with no record yet: 400 (and no record is created)."""
    course, _ = lms.course(1)
    response = api.patch(course, ObjectId(), {"isCompleted": True})
    assert response.status_code == 400
    assert lms.record(api.user_id, course) is None


def test_order_origin_403_before_400(client, lms):
    """A cookie write from a foreign origin with a malformed id: 403."""
    user = lms.user()
    client.set_cookie("token", Api(client, user).token)
    response = client.post(f"{PREFIX}/bad-id/complete", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json == {"status": "fail", "message": "Origin not allowed"}
