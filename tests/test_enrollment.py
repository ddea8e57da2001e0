"""Enrollment (contract section 8): only enrolled students, the instructor and admins use a course.

`PROGRESS_ENROLLMENT=required` (the default): anyone else gets 403 `Not enrolled in this
course` after the 404 for a missing course and before everything after it, and no record is
created. A course without `enrolledStudents` keeps no list (open to every signed-in user);
an empty list means nobody. `off` is the original's behaviour.
"""
import bson
import pytest
from bson import ObjectId
from pymongo import monitoring

from progress_service.progress import mount_of, service
from progress_service.progress.catalog import CourseInfo, HostCatalog
from progress_service.progress.exceptions import Forbidden

from .support import BOTH, PREFIX, WIRE, Api

NOT_ENROLLED = {"status": "fail", "message": "Not enrolled in this course"}


def every_call(api, course, lectures):
    """Each endpoint a student uses on a course, as (name, response)."""
    headers = {"Authorization": f"Bearer {api.token}"}
    return [
        ("GET", api.get(course)),
        ("PATCH", api.patch(course, lectures[0], {"isCompleted": True})),
        ("PATCH position", api.patch(course, lectures[0], {"watchTime": 12})),
        ("PATCH minimal", api.patch(course, lectures[0], {"watchTime": 12}, headers={"Prefer": "return=minimal"})),
        ("batch", api.client.patch(f"{PREFIX}/{course}/lectures", headers=headers,
                                   json={"lectures": [{"lecture": str(lectures[0]), "isCompleted": True}]})),
        ("complete", api.complete(course)),
        ("reset", api.reset(course)),
    ]


@BOTH
def test_a_student_not_enrolled_gets_403_everywhere_and_no_record(client, lms):
    """Every endpoint: 403 in the envelope; nothing created, even by a PATCH."""
    course, lectures = lms.course(2)
    outsider = Api(client, lms.user(enrolled=False))
    for name, response in every_call(outsider, course, lectures):
        assert (response.status_code, response.json) == (403, NOT_ENROLLED), name
    assert lms.db.courseprogresses.count_documents({}) == 0


@BOTH
def test_a_dropped_student_keeps_the_record_but_may_not_use_it(client, lms, api):
    """Enrolled, then dropped: 403 from then on; the record stays stored for the instructor."""
    course, lectures = lms.course(2)
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    lms.drop(api.user_id, course)
    for name, response in every_call(api, course, lectures):
        assert (response.status_code, response.json) == (403, NOT_ENROLLED), name
    assert lms.record(api.user_id, course)["completionPercentage"] == 50


@BOTH
def test_the_instructor_and_an_admin_may_use_a_course_without_being_enrolled(client, lms):
    """Enrolled, the course's instructor, or role admin."""
    teacher = lms.user(role="instructor")
    admin = lms.user(role="admin")
    course, lectures = lms.course(2, instructor=teacher, enrolledStudents=[])
    for user in (teacher, admin):
        response = Api(client, user).patch(course, lectures[1], {"isCompleted": True})
        assert response.status_code == 200 and response.json["data"]["completionPercentage"] == 50
        assert lms.record(user, course) is not None


@BOTH
def test_a_course_without_a_list_is_open_and_an_empty_list_is_closed(client, lms):
    """No enrolledStudents field: every signed-in user; [] : nobody but the instructor and admins."""
    anyone = Api(client, lms.user(enrolled=False))
    open_course, lectures = lms.course(1, no_enrollment_list=True)
    assert anyone.patch(open_course, lectures[0], {"isCompleted": True}).status_code == 200
    closed, closed_lectures = lms.course(1, enrolledStudents=[])
    assert anyone.patch(closed, closed_lectures[0], {"isCompleted": True}).json == NOT_ENROLLED
    stranger = Api(client, ObjectId())  # not even in `users`: the list still decides
    assert stranger.patch(open_course, lectures[0], {"isCompleted": False}).status_code == 200
    assert stranger.get(closed).json == NOT_ENROLLED


@BOTH
def test_the_order_of_checks_puts_enrollment_between_the_course_and_the_rest(client, lms):
    """401 -> 400 ids -> 400 body -> 404 course -> 403 enrollment -> 400 lecture -> 404 record."""
    course, lectures = lms.course(1)
    other_course, other_lectures = lms.course(1)
    outsider = Api(client, lms.user(enrolled=False))
    no_token = client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", json={"isCompleted": True})
    assert no_token.status_code == 401
    assert outsider.patch("nope", lectures[0], {"isCompleted": True}).status_code == 400
    assert outsider.patch(course, lectures[0], {"isCompleted": "yes"}).status_code == 400
    missing = outsider.patch(ObjectId(), lectures[0], {"isCompleted": True})
    assert (missing.status_code, missing.json["message"]) == (404, "Course not found")
    # Not enrolled comes before "lecture not in course" and before "no record".
    assert outsider.patch(course, other_lectures[0], {"isCompleted": True}).json == NOT_ENROLLED
    assert outsider.get(course).json == NOT_ENROLLED
    assert outsider.complete(course).json == NOT_ENROLLED
    lms.enroll(outsider.user_id, course)
    foreign = outsider.patch(course, other_lectures[0], {"isCompleted": True})
    assert (foreign.status_code, foreign.json["message"]) == (400, "Lecture does not belong to this course")
    assert outsider.complete(course).json["message"] == "No progress record found for this user and course"


@BOTH
def test_the_instructor_views_count_every_stored_record(client, lms):
    """Unchanged by enrollment: a dropped student's history still counts for the instructor."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(2, instructor=teacher)
    stays, leaves = Api(client, lms.user()), Api(client, lms.user())
    lms.enroll(stays.user_id, course)
    lms.enroll(leaves.user_id, course)
    for student in (stays, leaves):
        assert student.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    lms.drop(leaves.user_id, course)
    auth = {"Authorization": f"Bearer {Api(client, teacher).token}"}
    summary = client.get(f"{PREFIX}/{course}/summary", headers=auth).json["data"]
    assert (summary["students"], summary["averagePercentage"]) == (2, 50.0)
    listed = client.get(f"{PREFIX}/{course}/students", headers=auth).json["data"]
    assert {item["user"]["_id"] for item in listed["items"]} == {str(stays.user_id), str(leaves.user_id)}


@BOTH
@pytest.mark.parametrize("app_config", [{"PROGRESS_ENROLLMENT": "off"}])
def test_enrollment_off_is_the_original_behaviour(client, lms, app_config):
    """Anyone signed in reads and writes any course; the dashboard lists every record."""
    course, lectures = lms.course(2, enrolledStudents=[])
    outsider = Api(client, lms.user(enrolled=False))
    calls = dict(every_call(outsider, course, lectures))
    assert calls["GET"].json["message"] == "No progress record found for this user and course"
    assert calls["PATCH"].json["data"]["completionPercentage"] == 50
    assert calls["PATCH minimal"].status_code == 204
    assert calls["complete"].json["data"]["completionPercentage"] == 100
    assert calls["reset"].json["data"]["completionPercentage"] == 0
    dashboard = client.get(PREFIX, headers={"Authorization": f"Bearer {outsider.token}"}).json["data"]
    assert dashboard["total"] == 1
    assert lms.record(outsider.user_id, course)["__v"] == 5


class ReplyBytes(monitoring.CommandListener):
    """The size of each reply to a question on `courses` (a find, or the aggregate that
    brings the caller's user with the course)."""

    def __init__(self):
        self.sizes = []
        self.pending = set()

    def started(self, event):
        if event.command_name in ("find", "aggregate") and event.command.get(event.command_name) == "courses":
            self.pending.add(event.request_id)

    def succeeded(self, event):
        if event.request_id in self.pending:
            self.sizes.append(len(bson.encode(event.reply)))

    def failed(self, event):
        self.pending.discard(event.request_id)


@WIRE
def test_a_course_of_100000_students_is_asked_about_one(app, client, lms, api):
    """The course query answers for the caller only: its reply is as small for 100,000 as for 10."""
    listener = ReplyBytes()
    monitoring.register(listener)  # listens to clients made from now on: the app makes a new one
    mount_of(app).database.close()
    lms.db = mount_of(app).database.db()
    crowd = [ObjectId() for _ in range(100_000)]
    big, big_lectures = lms.course(2, enrolledStudents=[*crowd, api.user_id])
    small, small_lectures = lms.course(2, enrolledStudents=[*crowd[:9], api.user_id])
    for course, lectures in ((big, big_lectures), (small, small_lectures)):
        assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    big_reply, small_reply = listener.sizes[-2:]
    assert big_reply == small_reply < 1024
    outsider = Api(client, lms.user(enrolled=False))
    assert outsider.get(big).json == NOT_ENROLLED


class OpenSchoolCatalog:
    """A host's catalog that keeps no enrollment (no enrolledStudents anywhere)."""

    def __init__(self, course_id, lecture_ids, enrolled=()):
        self.info = CourseInfo(course_id, "Host course", None, ObjectId(), tuple(lecture_ids))
        self.enrolled = set(enrolled)

    def course(self, course_id):
        return self.info if course_id == self.info.id else None

    def user(self, user_id):
        return None

    def lecture_titles(self, lecture_ids):
        return {}


class SchoolCatalog(OpenSchoolCatalog):
    """The same host, answering enrollment from its own records."""

    def is_enrolled(self, course_id, user_id):
        return user_id in self.enrolled


@BOTH
def test_a_host_catalog_that_answers_enrollment_decides(app):
    """is_enrolled(course, user) on the host's catalog is the answer; without it the course is open."""
    course, lectures, member, other = ObjectId(), [ObjectId()], ObjectId(), ObjectId()
    mount = mount_of(app)
    change = service.LectureChange(lectures[0], True)
    mount.catalog = HostCatalog(SchoolCatalog(course, lectures, [member]))
    assert service.mark_lecture(mount, member, course, change).data["completionPercentage"] == 100
    with pytest.raises(Forbidden):
        service.mark_lecture(mount, other, course, change)
    mount.catalog = HostCatalog(OpenSchoolCatalog(course, lectures))
    assert service.mark_lecture(mount, other, course, change).data["completionPercentage"] == 100
