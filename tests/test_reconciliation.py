"""The course's lecture list changes under a record (contract section 2, reconciliation)."""
from bson import ObjectId

from .support import BOTH


@BOTH
def test_new_lecture_counts_as_not_completed_and_is_appended(api, lms):
    """A lecture added later: shown, not completed; the next write appends its entry last."""
    course, lectures = lms.course(2)
    api.patch(course, lectures[0], {"isCompleted": True})
    api.patch(course, lectures[1], {"isCompleted": True})
    added = ObjectId()
    lms.set_lectures(course, [added, *lectures])
    shown = api.get(course).json["data"]
    assert shown["completionPercentage"] == 67 and shown["isCompleted"] is False
    assert [e["lecture"] for e in shown["lectureProgress"]] == [str(added), *map(str, lectures)]
    assert shown["lectureProgress"][0]["isCompleted"] is False
    api.patch(course, lectures[0], {"isCompleted": True})
    stored = lms.record(api.user_id, course)
    assert [e["lecture"] for e in stored["lectureProgress"]] == [*lectures, added], "appended, not reordered"
    assert stored["completionPercentage"] == 67


@BOTH
def test_removed_lecture_is_hidden_and_kept(api, lms):
    """A removed lecture no longer counts or shows; its entry stays and returns with its state."""
    course, lectures = lms.course(3)
    api.patch(course, lectures[0], {"isCompleted": True, "watchTime": 12})
    lms.set_lectures(course, lectures[1:])
    shown = api.get(course).json["data"]
    assert [e["lecture"] for e in shown["lectureProgress"]] == [str(x) for x in lectures[1:]]
    assert shown["completionPercentage"] == 0
    api.patch(course, lectures[1], {"isCompleted": True})
    stored = lms.record(api.user_id, course)
    assert [e["lecture"] for e in stored["lectureProgress"]] == lectures
    assert stored["lectureProgress"][0]["isCompleted"] is True
    assert stored["completionPercentage"] == 50
    lms.set_lectures(course, lectures)
    back = api.get(course).json["data"]
    assert back["lectureProgress"][0]["isCompleted"] is True
    assert back["lectureProgress"][0]["watchTime"] == 12
    assert back["completionPercentage"] == 67


@BOTH
def test_get_never_writes(api, lms):
    """GET applies the rule to the stored flags without storing anything."""
    course, lectures = lms.course(2)
    api.patch(course, lectures[0], {"isCompleted": True})
    api.patch(course, lectures[1], {"isCompleted": True})
    before = lms.record(api.user_id, course)
    assert before["isCompleted"] is True and before["completedAt"] is not None
    lms.set_lectures(course, [*lectures, ObjectId(), ObjectId()])
    shown = api.get(course).json["data"]
    assert shown["completionPercentage"] == 50 and shown["isCompleted"] is False
    assert shown["completedAt"] is None
    assert lms.record(api.user_id, course) == before


@BOTH
def test_complete_covers_lectures_added_since(api, lms):
    """complete marks the current lectures, including ones with no entry yet."""
    course, lectures = lms.course(1)
    api.patch(course, lectures[0], {"isCompleted": False})
    added = ObjectId()
    lms.set_lectures(course, [*lectures, added])
    body = api.complete(course).json["data"]
    assert body["completionPercentage"] == 100
    stored = lms.record(api.user_id, course)
    assert [(e["lecture"], e["isCompleted"]) for e in stored["lectureProgress"]] == [
        (lectures[0], True), (added, True)]


@BOTH
def test_duplicated_entries_from_the_original_are_not_double_counted(api, lms):
    """The first entry of a lecture is the one that is read and written."""
    course, lectures = lms.course(2)
    lms.db.courseprogresses.insert_one({
        "user": api.user_id, "course": course, "__v": 0, "isCompleted": False, "completionPercentage": 0,
        "lectureProgress": [{"lecture": lectures[0], "isCompleted": False},
                            {"lecture": lectures[0], "isCompleted": True},
                            {"lecture": lectures[1], "isCompleted": False}],
    })
    assert api.get(course).json["data"]["completionPercentage"] == 0
    body = api.patch(course, lectures[0], {"isCompleted": True}).json["data"]
    assert body["completionPercentage"] == 50
    assert len(body["lectureProgress"]) == 2
