"""PATCH /:courseId/lectures, the offline sync (contract section 7): all in one save or none."""
import json
import threading

import pytest
from bson import ObjectId

from progress_service.progress import signals

from .support import BOTH, PREFIX, WIRE, Api
from .test_concurrency import run_together

NOT_IN_COURSE = "Lecture does not belong to this course"


def batch(api, course, items, headers=None, body=None):
    """PATCH the batch endpoint as `api`'s student; `body` replaces {"lectures": items}."""
    data = json.dumps({"lectures": items} if body is None else body)
    return api.client.patch(f"{PREFIX}/{course}/lectures", data=data,
                            headers={"Authorization": f"Bearer {api.token}", **(headers or {})})


def item(lecture, done=True, **fields):
    """One batch item."""
    return {"lecture": str(lecture), "isCompleted": done, **fields}


@pytest.fixture
def events():
    """Every host event sent during the test, as (signal name, keyword arguments)."""
    seen, lock = [], threading.Lock()
    receivers = []
    for signal in (signals.lecture_completed, signals.course_completed, signals.progress_reset):
        def receiver(sender, _name=signal.name, **kwargs):
            """Note the event; the service sends with no sender (it has no Flask in it)."""
            assert sender is None
            with lock:
                seen.append((_name, kwargs))
        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def completed_lectures(events):
    """The lecture ids of the lecture-completed events, in order."""
    return [kwargs["lecture_id"] for name, kwargs in events if name == "lecture-completed"]


def course_completions(events):
    """How many course-completed events were sent."""
    return sum(1 for name, _ in events if name == "course-completed")


@BOTH
def test_batch_creates_the_record_and_applies_every_item(api, lms):
    """First sync: the record is created and every item applied, in that one insert."""
    course, lectures = lms.course(4)
    response = batch(api, course, [item(lectures[0], watchTime=10), item(lectures[2]),
                                   item(lectures[3], False, watchTime=7.5)])
    assert response.status_code == 200 and response.json["status"] == "success"
    data = response.json["data"]
    assert (data["completionPercentage"], data["isCompleted"]) == (50, False)
    shown = data["lectureProgress"]
    assert [(e["isCompleted"], e["watchTime"]) for e in shown] == [(True, 10), (False, 0), (True, 0), (False, 7.5)]
    assert shown[1]["lastWatched"] is None
    assert {shown[i]["lastWatched"] for i in (0, 2, 3)} == {data["updatedAt"]}
    assert data["resume"] == {"lecture": str(lectures[3]), "watchTime": 7.5}
    stored = lms.record(api.user_id, course)
    assert [(e["lecture"], e["isCompleted"]) for e in stored["lectureProgress"]] == [
        (lectures[0], True), (lectures[1], False), (lectures[2], True), (lectures[3], False)]
    assert stored["completionPercentage"] == 50 and stored["__v"] == 0
    assert api.get(course).json["data"] == data


@BOTH
def test_batch_is_one_save(api, lms):
    """Three items on an existing record: __v goes up by exactly one."""
    course, lectures = lms.course(3)
    api.patch(course, lectures[0], {"isCompleted": False})
    assert lms.record(api.user_id, course)["__v"] == 0
    data = batch(api, course, [item(lecture) for lecture in lectures]).json["data"]
    stored = lms.record(api.user_id, course)
    assert stored["__v"] == 1
    assert stored["isCompleted"] is True and stored["completedAt"] is not None
    assert (data["completionPercentage"], data["resume"]) == (100, None)


@BOTH
@pytest.mark.parametrize("bad,field", [
    ({"isCompleted": "true"}, "isCompleted"), ({"isCompleted": 1}, "isCompleted"),
    ({"isCompleted": None}, "isCompleted"), ({"watchTime": -1}, "watchTime"),
    ({"watchTime": "5"}, "watchTime"), ({"lecture": "not-an-id"}, "lecture"),
    ({"completionPercentage": 100}, "completionPercentage"),
])
def test_an_invalid_item_rejects_the_whole_batch(api, lms, events, bad, field):
    """One bad item (index 2): 400 naming that index and field; nothing stored, no event."""
    course, lectures = lms.course(3)
    api.patch(course, lectures[0], {"isCompleted": False})
    events.clear()
    before = lms.record(api.user_id, course)
    items = [item(lectures[0]), item(lectures[1]), {**item(lectures[2]), **bad}]
    response = batch(api, course, items)
    assert response.status_code == 400 and response.json["status"] == "fail"
    assert list(response.json["errors"]) == ["lectures"]
    assert response.json["errors"]["lectures"].keys() == {"2"}
    assert list(response.json["errors"]["lectures"]["2"]) == [field]
    assert lms.record(api.user_id, course) == before
    assert events == []


@BOTH
def test_an_item_with_neither_flag_nor_position_names_its_item(api, lms):
    """Each item needs isCompleted, watchTime or both, as the single PATCH (contract section 8)."""
    course, lectures = lms.course(2)
    response = batch(api, course, [item(lectures[0]), {"lecture": str(lectures[1])}])
    assert response.status_code == 400
    nothing = ["Send isCompleted, watchTime or both."]
    assert response.json["errors"] == {"lectures": {"1": {"isCompleted": nothing, "watchTime": nothing}}}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_a_lecture_of_another_course_names_its_index(api, lms):
    """Checked after the course exists: 400 naming the item; no record created."""
    course, lectures = lms.course(2)
    _, others = lms.course(1)
    response = batch(api, course, [item(lectures[0]), item(others[0]), item(lectures[1])])
    assert response.status_code == 400
    assert response.json == {"status": "fail", "message": NOT_IN_COURSE,
                             "errors": {"lectures": {"1": {"lecture": [NOT_IN_COURSE]}}}}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_a_lecture_named_twice_is_refused(api, lms):
    """Each lecture once: the repeat is named by its index."""
    course, lectures = lms.course(2)
    response = batch(api, course, [item(lectures[0]), item(lectures[1]), item(lectures[0], False)])
    assert response.status_code == 400
    assert response.json["errors"] == {"lectures": {"2": {"lecture": ["Lecture appears more than once."]}}}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_batch_size_is_1_to_200(api, lms):
    """0 and 201 items: 400 on `lectures`; 200 items: one save of all of them."""
    course, lectures = lms.course(201)
    for items in ([], [item(lecture) for lecture in lectures]):
        response = batch(api, course, items)
        assert response.status_code == 400
        assert list(response.json["errors"]) == ["lectures"]
        assert isinstance(response.json["errors"]["lectures"], list), "about the list, not an item"
    assert lms.record(api.user_id, course) is None
    response = batch(api, course, [item(lecture) for lecture in lectures[:200]])
    assert response.status_code == 200
    assert response.json["data"]["completionPercentage"] == 100  # 200 of 201, half up
    assert sum(e["isCompleted"] for e in lms.record(api.user_id, course)["lectureProgress"]) == 200


@BOTH
@pytest.mark.parametrize("body,field", [
    ({}, "lectures"), ({"lectures": None}, "lectures"), ({"lectures": "all"}, "lectures"),
    ({"lectures": ["x"]}, "lectures"), ({"lectures": [], "user": "x"}, "user"),
])
def test_batch_body_shape(api, lms, body, field):
    """The body is an object with a list of objects and nothing else."""
    course, _ = lms.course(1)
    response = batch(api, course, None, body=body)
    assert response.status_code == 400 and field in response.json["errors"]


@BOTH
def test_batch_checks_in_contract_order(api, lms, client):
    """401 -> 403 (origin) -> 400 (course id, then body) -> 404 (course) -> 400 (lecture)."""
    course, lectures = lms.course(1)
    good = {"lectures": [item(lectures[0])]}
    assert client.patch(f"{PREFIX}/{course}/lectures", json=good).status_code == 401
    client.set_cookie("token", api.token)
    cross_site = client.patch(f"{PREFIX}/not-an-id/lectures", data="{}", headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    client.delete_cookie("token")
    bad_id = batch(api, "not-an-id", None, body={})
    assert bad_id.status_code == 400 and list(bad_id.json["errors"]) == ["courseId"]
    bad_body = batch(api, ObjectId(), None, body={"lectures": []})
    assert bad_body.status_code == 400
    missing = batch(api, ObjectId(), [item(lectures[0])])
    assert (missing.status_code, missing.json["message"]) == (404, "Course not found")


@BOTH
@pytest.mark.parametrize("app_config", [{"PROGRESS_LEGACY_FIRST_PATCH": True}])
def test_the_legacy_flag_does_not_apply_to_the_batch(api, lms, app_config):
    """PROGRESS_LEGACY_FIRST_PATCH only changes the single PATCH: the first batch applies."""
    course, lectures = lms.course(2)
    assert batch(api, course, [item(lectures[1])]).json["data"]["completionPercentage"] == 50
    assert lms.record(api.user_id, course)["lectureProgress"][1]["isCompleted"] is True


@BOTH
def test_events_fire_once_per_real_change(api, lms, events):
    """lecture-completed for each lecture that became completed; course-completed when the
    course did; a repeat or an unmarking sends nothing."""
    course, lectures = lms.course(3)
    batch(api, course, [item(lectures[0]), item(lectures[1]), item(lectures[2], False)])
    assert completed_lectures(events) == [lectures[0], lectures[1]] and course_completions(events) == 0
    _, kwargs = events[0]
    assert (kwargs["user_id"], kwargs["course_id"]) == (api.user_id, course)
    assert kwargs["progress"].id == lms.record(api.user_id, course)["_id"]
    events.clear()
    batch(api, course, [item(lectures[0]), item(lectures[2])])
    assert completed_lectures(events) == [lectures[2]] and course_completions(events) == 1
    events.clear()
    batch(api, course, [item(lectures[0]), item(lectures[2])])
    batch(api, course, [item(lectures[1], False)])
    assert events == []
    batch(api, course, [item(lectures[1])])
    assert completed_lectures(events) == [lectures[1]] and course_completions(events) == 1


@WIRE
def test_concurrent_batches_and_single_patches_lose_nothing(app, lms, events):
    """Three batches and three single PATCHes at once on a record nobody has created yet:
    one record, every change stored, one save each, every event exactly once."""
    user = lms.user()
    course, lectures = lms.course(12)
    groups = [lectures[0:3], lectures[3:6], lectures[6:9]]
    calls = [lambda group=group: batch(Api(app.test_client(), user), course, [item(x) for x in group])
             for group in groups]
    calls += [lambda lecture=lecture: Api(app.test_client(), user).patch(course, lecture, {"isCompleted": True})
              for lecture in lectures[9:]]
    responses = run_together(calls)
    assert [r.status_code for r in responses] == [200] * 6
    assert lms.db.courseprogresses.count_documents({"user": user, "course": course}) == 1
    stored = lms.record(user, course)
    assert [e["lecture"] for e in stored["lectureProgress"]] == lectures
    assert all(e["isCompleted"] for e in stored["lectureProgress"])
    assert stored["completionPercentage"] == 100 and stored["isCompleted"] is True
    assert stored["__v"] == 5, "one insert, then five conditional saves"
    assert sorted(completed_lectures(events)) == sorted(lectures)
    assert course_completions(events) == 1


def test_a_failing_event_receiver_does_not_fail_the_stored_write(api, lms, caplog):
    """The write is stored and answered 200; the receiver's error is logged."""
    course, lectures = lms.course(2)

    def broken(sender, **kwargs):
        raise RuntimeError("host bug")

    signals.lecture_completed.connect(broken)
    try:
        response = api.patch(course, lectures[0], {"isCompleted": True})
    finally:
        signals.lecture_completed.disconnect(broken)
    assert response.status_code == 200 and response.json["data"]["completionPercentage"] == 50
    assert lms.record(api.user_id, course)["lectureProgress"][0]["isCompleted"] is True
    assert "a receiver of lecture-completed failed" in caplog.text


@BOTH
def test_an_item_that_is_not_an_object_is_named_by_its_index(api, lms):
    """`{"lectures": [5]}`: the error is under the item's index, not marshmallow's `_schema`."""
    course, _ = lms.course(1)
    response = batch(api, course, [5])
    assert response.status_code == 400
    assert response.json["errors"] == {"lectures": {"0": ["Invalid input type."]}}
