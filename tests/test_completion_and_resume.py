"""completedAt and resume in every `<progress>` (contract section 7), from the outside."""
import re
import time
from datetime import datetime, timezone

from .support import BOTH

ISO_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def parse(iso):
    """An aware datetime from the API's ISO string."""
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def complete(api, course, first_lecture):
    """Create the record (complete needs one), then mark the whole course completed."""
    api.patch(course, first_lecture, {"isCompleted": False})
    return api.complete(course).json["data"]


def tick():
    """Let the clock move past the millisecond, so a moved time would show."""
    time.sleep(0.003)


@BOTH
def test_completed_at_is_set_when_the_course_becomes_complete(api, lms):
    """Null while incomplete; the time of the completing write, stored as that time."""
    course, lectures = lms.course(2)
    first = api.patch(course, lectures[0], {"isCompleted": True}).json["data"]
    assert first["completedAt"] is None
    assert lms.record(api.user_id, course)["completedAt"] is None
    tick()
    done = api.patch(course, lectures[1], {"isCompleted": True}).json["data"]
    assert done["isCompleted"] is True
    assert ISO_PATTERN.match(done["completedAt"])
    assert done["completedAt"] == done["updatedAt"]
    assert lms.record(api.user_id, course)["completedAt"] == parse(done["completedAt"])
    assert api.get(course).json["data"]["completedAt"] == done["completedAt"]


@BOTH
def test_completed_at_is_not_moved_while_the_course_stays_complete(api, lms):
    """Later writes that keep it complete (PATCH, complete again) leave the time alone."""
    course, lectures = lms.course(2)
    done = complete(api, course, lectures[0])
    for write in (lambda: api.patch(course, lectures[0], {"isCompleted": True, "watchTime": 50}),
                  lambda: api.complete(course)):
        tick()
        later = write().json["data"]
        assert later["updatedAt"] > done["updatedAt"], "the write happened"
        assert later["completedAt"] == done["completedAt"]
    assert lms.record(api.user_id, course)["completedAt"] == parse(done["completedAt"])


@BOTH
def test_completed_at_is_cleared_when_the_course_stops_being_complete(api, lms):
    """Unmarking a lecture clears it (stored as null, not removed); completing again sets a new one."""
    course, lectures = lms.course(2)
    done = complete(api, course, lectures[0])
    tick()
    undone = api.patch(course, lectures[1], {"isCompleted": False}).json["data"]
    assert undone["isCompleted"] is False and undone["completedAt"] is None
    stored = lms.record(api.user_id, course)
    assert "completedAt" in stored and stored["completedAt"] is None
    tick()
    again = api.patch(course, lectures[1], {"isCompleted": True}).json["data"]
    assert again["completedAt"] == again["updatedAt"] and again["completedAt"] > done["completedAt"]


@BOTH
def test_reset_clears_completed_at(api, lms):
    """reset: completedAt null in the response and in storage."""
    course, lectures = lms.course(1)
    complete(api, course, lectures[0])
    assert api.reset(course).json["data"]["completedAt"] is None
    assert lms.record(api.user_id, course)["completedAt"] is None


@BOTH
def test_get_hides_completed_at_while_a_new_lecture_is_open(api, lms):
    """A lecture added to the course makes it incomplete on GET, which writes nothing."""
    course, lectures = lms.course(1)
    done = complete(api, course, lectures[0])
    lms.set_lectures(course, lectures + [lms.course(1)[1][0]])
    shown = api.get(course).json["data"]
    assert shown["isCompleted"] is False and shown["completedAt"] is None
    assert lms.record(api.user_id, course)["completedAt"] == parse(done["completedAt"])


@BOTH
def test_completing_a_course_that_gained_a_lecture_is_a_new_completion(api, lms):
    """Stored complete, then a lecture added (GET: incomplete): completing it sets a new time."""
    course, lectures = lms.course(1)
    done = complete(api, course, lectures[0])
    added = lms.course(1)[1][0]
    lms.set_lectures(course, lectures + [added])
    again = api.patch(course, added, {"isCompleted": True}).json["data"]
    assert again["isCompleted"] is True
    assert again["completedAt"] == again["updatedAt"] and again["completedAt"] > done["completedAt"]
    assert lms.record(api.user_id, course)["completedAt"] == parse(again["completedAt"])


@BOTH
def test_resume_is_the_first_open_lecture_when_none_was_watched_open(api, lms):
    """Only completed lectures watched: the first not completed, in course order."""
    course, lectures = lms.course(3)
    data = api.patch(course, lectures[0], {"isCompleted": True, "watchTime": 90}).json["data"]
    assert data["resume"] == {"lecture": str(lectures[1]), "watchTime": 0}
    # The course's order decides, not the stored order of the entries.
    lms.set_lectures(course, [lectures[2], lectures[0], lectures[1]])
    assert api.get(course).json["data"]["resume"] == {"lecture": str(lectures[2]), "watchTime": 0}


@BOTH
def test_resume_is_the_most_recently_watched_open_lecture(api, lms):
    """The latest lastWatched among lectures not completed, with its watchTime."""
    course, lectures = lms.course(4)
    api.patch(course, lectures[3], {"isCompleted": False, "watchTime": 30})
    tick()
    data = api.patch(course, lectures[2], {"isCompleted": False, "watchTime": 12.5}).json["data"]
    assert data["resume"] == {"lecture": str(lectures[2]), "watchTime": 12.5}
    tick()
    data = api.patch(course, lectures[3], {"isCompleted": False, "watchTime": 45}).json["data"]
    assert data["resume"] == {"lecture": str(lectures[3]), "watchTime": 45}
    tick()
    # Completing the latest one hands resume back to the one watched before it.
    data = api.patch(course, lectures[3], {"isCompleted": True}).json["data"]
    assert data["resume"] == {"lecture": str(lectures[2]), "watchTime": 12.5}
    assert api.get(course).json["data"]["resume"] == data["resume"]


@BOTH
def test_resume_ignores_a_removed_lecture(api, lms):
    """A lecture no longer in the course is never the resume point."""
    course, lectures = lms.course(3)
    api.patch(course, lectures[0], {"isCompleted": False, "watchTime": 5})
    tick()
    api.patch(course, lectures[2], {"isCompleted": False, "watchTime": 7})
    lms.set_lectures(course, lectures[:2])
    assert api.get(course).json["data"]["resume"] == {"lecture": str(lectures[0]), "watchTime": 5}


@BOTH
def test_resume_is_null_when_everything_is_done_and_first_after_reset(api, lms):
    """All completed: null; after reset: the first lecture at 0."""
    course, lectures = lms.course(2)
    api.patch(course, lectures[1], {"isCompleted": False, "watchTime": 3})
    assert api.complete(course).json["data"]["resume"] is None
    assert api.get(course).json["data"]["resume"] is None
    assert api.reset(course).json["data"]["resume"] == {"lecture": str(lectures[0]), "watchTime": 0}
