"""The student's side of contract section 8: watch position, completion by watching, minimal answers."""
import json
from contextlib import contextmanager

import pytest
from bson import ObjectId
from pymongo import monitoring

from progress_service.progress import mount_of, signals
from progress_service.progress.settings import complete_at
from progress_service.progress.watching import watched_enough

from .support import BOTH, PREFIX, WIRE, Api

MINIMAL = {"Prefer": "return=minimal"}


def entry(lms, api, course, index=0):
    """The stored entry of the course's index-th lecture."""
    return lms.record(api.user_id, course)["lectureProgress"][index]


@contextmanager
def completed_events():
    """The lecture_completed events sent meanwhile, as lecture ids."""
    seen = []

    def receive(sender, **kwargs):
        seen.append(kwargs["lecture_id"])

    with signals.lecture_completed.connected_to(receive):
        yield seen


# --- watch position ----------------------------------------------------------------------------

@BOTH
def test_a_position_alone_records_watch_time_and_leaves_the_flag(api, lms):
    """Only watchTime: watchTime and lastWatched set, isCompleted as it was (either way)."""
    course, lectures = lms.course(2)
    first = api.patch(course, lectures[0], {"watchTime": 30})
    assert first.status_code == 200, "creates the record on first use like any PATCH"
    data = first.json["data"]
    assert data["lectureProgress"][0]["watchTime"] == 30 and data["lectureProgress"][0]["isCompleted"] is False
    assert data["lectureProgress"][0]["lastWatched"] is not None
    assert api.patch(course, lectures[1], {"isCompleted": True}).status_code == 200
    again = api.patch(course, lectures[1], {"watchTime": 5}).json["data"]
    assert again["lectureProgress"][1] == {**again["lectureProgress"][1], "isCompleted": True, "watchTime": 5}
    assert again["completionPercentage"] == 50
    assert api.get(course).json["data"] == again


@BOTH
def test_the_reported_case_saving_a_position_no_longer_uncompletes(api, lms):
    """Before: {"isCompleted": false, "watchTime": 95} was the only way to save 95 s. Now: watchTime alone."""
    course, lectures = lms.course(1)
    api.patch(course, lectures[0], {"isCompleted": True})
    api.patch(course, lectures[0], {"watchTime": 95})
    stored = entry(lms, api, course)
    assert (stored["isCompleted"], stored["watchTime"]) == (True, 95.0)


# --- completion by watching --------------------------------------------------------------------

@pytest.mark.parametrize("seconds,duration,done", [
    (108, 120, True), (107.999, 120, False), (107.9995, 120, True), (107.9994, 120, False),
    (900, 1000, True), (899.999, 1000, False), (0.9, 1, True), (0.899, 1, False), (0.0004, 0.001, False), (0.0005, 0.001, True),
    (27, 30, True), (26.9995, 30, True),
    # 0.9 x 2.675 s is 2407.5 ms exactly, rounded 2408; a float product gives 2407.4999...
    (2.407, 2.675, False), (2.408, 2.675, True),
])
def test_ninety_percent_is_compared_in_whole_milliseconds(seconds, duration, done):
    """Both sides rounded to whole ms, computed exactly: 108 s of 120 s is 90 %."""
    assert watched_enough(complete_at("0.9"), duration, seconds) is done


@pytest.mark.parametrize("duration", [None, 0, -5, "120", True, float("nan"), float("inf")])
def test_a_lecture_without_a_positive_duration_never_completes_by_watching(duration):
    """No duration, zero, negative, or not a number: only an explicit flag completes it."""
    assert watched_enough(complete_at("0.9"), duration, 10 ** 6) is False


@BOTH
def test_watching_ninety_percent_completes_the_lecture_and_sends_the_event(api, lms):
    """108 s of a 120 s lecture: completed, with the same lecture_completed signal as an explicit one."""
    course, lectures = lms.course(2, durations=[120, 600])
    with completed_events() as seen:
        below = api.patch(course, lectures[0], {"watchTime": 107.99})
        assert below.json["data"]["lectureProgress"][0]["isCompleted"] is False and seen == []
        at = api.patch(course, lectures[0], {"watchTime": 108}).json["data"]
    assert at["lectureProgress"][0]["isCompleted"] is True and at["completionPercentage"] == 50
    assert seen == [lectures[0]]
    assert entry(lms, api, course)["isCompleted"] is True


@BOTH
def test_an_explicit_flag_wins_over_watching(api, lms):
    """isCompleted false with a watchTime past 90 %: not completed."""
    course, lectures = lms.course(1, durations=[120])
    data = api.patch(course, lectures[0], {"isCompleted": False, "watchTime": 119}).json["data"]
    assert data["lectureProgress"][0]["isCompleted"] is False and data["lectureProgress"][0]["watchTime"] == 119
    assert entry(lms, api, course)["isCompleted"] is False


@BOTH
def test_watching_never_uncompletes(api, lms):
    """A completed lecture watched from the start again stays completed."""
    course, lectures = lms.course(1, durations=[120])
    api.patch(course, lectures[0], {"watchTime": 120})
    for position in (0, 3, 60):
        assert api.patch(course, lectures[0], {"watchTime": position}).json["data"]["isCompleted"] is True
    assert entry(lms, api, course)["isCompleted"] is True


@WIRE
@pytest.mark.parametrize("duration", [float("inf"), float("-inf"), float("nan"), "120", {"s": 120}, [120]],
                         ids=["Infinity", "-Infinity", "NaN", "a string", "an object", "an array"])
@pytest.mark.parametrize("headers", [{}, MINIMAL], ids=["full answer", "minimal answer"])
def test_a_stored_duration_that_is_not_a_finite_number_is_no_duration(api, lms, duration, headers):
    """A live stream's `duration: Infinity` (as browsers report it), NaN or text, stored as the LMS got it:
    every position update is stored (it was a 500), single and batch, and completes nothing by watching."""
    course, lectures = lms.course(2)
    lms.db.lectures.update_many({"_id": {"$in": lectures}}, {"$set": {"duration": duration}})
    first = api.patch(course, lectures[0], {"watchTime": 1e6}, headers=headers)
    assert first.status_code == (204 if headers else 200), first.get_data(as_text=True)
    again = api.patch(course, lectures[0], {"watchTime": 7200}, headers=headers)
    assert again.status_code == (204 if headers else 200), again.get_data(as_text=True)
    batch = api.client.patch(f"{PREFIX}/{course}/lectures", json={"lectures": [
        {"lecture": str(lectures[1]), "watchTime": 99999}]}, headers=api._headers(headers))
    assert batch.status_code == (204 if headers else 200), batch.get_data(as_text=True)
    stored = lms.record(api.user_id, course)["lectureProgress"]
    assert [(e["watchTime"], e["isCompleted"]) for e in stored] == [(7200, False), (99999, False)]


@BOTH
def test_a_lecture_without_a_duration_completes_only_explicitly(api, lms):
    """The LMS's lecture has no duration: any position leaves it open."""
    course, lectures = lms.course(1)
    assert api.patch(course, lectures[0], {"watchTime": 10 ** 6}).json["data"]["isCompleted"] is False


@BOTH
@pytest.mark.parametrize("app_config", [{"PROGRESS_COMPLETE_AT": "off"}])
def test_completion_by_watching_can_be_turned_off(api, lms, app_config):
    """PROGRESS_COMPLETE_AT=off: watching the whole lecture completes nothing."""
    course, lectures = lms.course(1, durations=[120])
    assert api.patch(course, lectures[0], {"watchTime": 120}).json["data"]["isCompleted"] is False


@BOTH
@pytest.mark.parametrize("app_config", [{"PROGRESS_COMPLETE_AT": "1"}])
def test_the_fraction_is_configurable(api, lms, app_config):
    """PROGRESS_COMPLETE_AT=1: only the whole lecture completes it."""
    course, lectures = lms.course(1, durations=[120])
    assert api.patch(course, lectures[0], {"watchTime": 119.999}).json["data"]["isCompleted"] is False
    assert api.patch(course, lectures[0], {"watchTime": 120}).json["data"]["isCompleted"] is True


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "ninety", ""])
def test_a_fraction_outside_zero_to_one_is_refused(value):
    """The setting must be in (0, 1] or off."""
    with pytest.raises(ValueError):
        complete_at(value)


@BOTH
def test_the_batch_completes_by_watching_per_item(api, lms):
    """Each batch item may be a position alone; watching completes its lecture, a flag still wins."""
    course, lectures = lms.course(3, durations=[100, 100, 100])
    response = api.client.patch(f"{PREFIX}/{course}/lectures", headers={"Authorization": f"Bearer {api.token}"},
                                json={"lectures": [{"lecture": str(lectures[0]), "watchTime": 95},
                                                   {"lecture": str(lectures[1]), "watchTime": 40},
                                                   {"lecture": str(lectures[2]), "watchTime": 99, "isCompleted": False}]})
    rows = response.json["data"]["lectureProgress"]
    assert [(row["isCompleted"], row["watchTime"]) for row in rows] == [(True, 95), (False, 40), (False, 99)]


# --- minimal answers ---------------------------------------------------------------------------

@BOTH
def test_every_write_answers_204_with_prefer_minimal_and_stores_the_change(api, lms):
    """Single, position, batch, complete, reset: 204, Preference-Applied, no body; the change is stored."""
    course, lectures = lms.course(2, durations=[100, 100])
    auth = {"Authorization": f"Bearer {api.token}"}

    def minimal(response):
        """The 204 of RFC 7240's return=minimal."""
        assert response.status_code == 204, response.get_data()
        assert response.headers["Preference-Applied"] == "return=minimal"
        assert response.get_data() == b"" and "Content-Type" not in response.headers

    minimal(api.patch(course, lectures[0], {"isCompleted": True}, headers=MINIMAL))
    assert entry(lms, api, course, 0)["isCompleted"] is True
    minimal(api.patch(course, lectures[1], {"watchTime": 42}, headers=MINIMAL))
    assert entry(lms, api, course, 1)["watchTime"] == 42.0
    minimal(api.client.patch(f"{PREFIX}/{course}/lectures", headers={**auth, **MINIMAL},
                             json={"lectures": [{"lecture": str(lectures[1]), "watchTime": 91}]}))
    assert entry(lms, api, course, 1)["isCompleted"] is True, "watching 91 % completed it"
    minimal(api.reset(course, headers=MINIMAL))
    assert lms.record(api.user_id, course)["completionPercentage"] == 0
    minimal(api.complete(course, headers={"Prefer": 'respond-async, return="minimal"; x=1'}))
    assert lms.record(api.user_id, course)["completionPercentage"] == 100
    full = api.get(course)
    assert full.status_code == 200 and full.json["data"]["completionPercentage"] == 100


@BOTH
def test_without_the_header_or_with_another_preference_the_answer_is_full(api, lms):
    """No Prefer, or return=representation: the usual 200 with `<progress>`."""
    course, lectures = lms.course(1)
    for headers in ({}, {"Prefer": "return=representation"}, {"Prefer": "minimal"}):
        response = api.patch(course, lectures[0], {"watchTime": 1}, headers=headers)
        assert response.status_code == 200 and "Preference-Applied" not in response.headers


@BOTH
def test_errors_are_unchanged_with_prefer_minimal(api, lms):
    """A 400, 404 or 403 is the usual JSON failure whatever the preference."""
    course, lectures = lms.course(1)
    bad = api.patch(course, lectures[0], {"watchTime": -1}, headers=MINIMAL)
    assert bad.status_code == 400 and bad.json["errors"] == {"watchTime": ["Must be greater than or equal to 0."]}
    missing = api.complete(course, headers=MINIMAL)
    assert (missing.status_code, missing.json["message"]) == (404, "No progress record found for this user and course")


class Commands(monitoring.CommandListener):
    """Every command sent by clients made after registration: (name, collection, command)."""

    def __init__(self):
        self.seen = []
        self.replies = []

    def started(self, event):
        self.seen.append((event.command_name, event.command.get(event.command_name), event.command))

    def succeeded(self, event):
        self.replies.append(event.reply)

    def failed(self, event):
        pass


def watched_course(app, api, lms):
    """A course of three 600 s lectures, the first completed, and every command the app sends
    recorded from the start: (listener, course, lectures)."""
    listener = Commands()
    monitoring.register(listener)
    mount_of(app).database.close()  # the app's next client is made with the listener
    lms.db = mount_of(app).database.db()
    course, lectures = lms.course(3, durations=[600, 600, 600])
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    return listener, course, lectures


@WIRE
def test_a_minimal_position_update_is_two_commands_and_reads_no_record(app, api, lms):
    """One question about the course (enrollment, the lecture, its duration), one update.

    No read of the record, none of the user, and no lecture list in the course's reply.
    """
    listener, course, lectures = watched_course(app, api, lms)
    before = lms.record(api.user_id, course)
    listener.seen.clear()
    listener.replies.clear()
    response = api.patch(course, lectures[1], {"watchTime": 61.5}, headers=MINIMAL)
    assert response.status_code == 204
    names = [(name, collection) for name, collection, _ in listener.seen if name not in ("listIndexes",)]
    assert names == [("aggregate", "courses"), ("update", "courseprogresses")]
    assert "lectures" not in json.dumps(listener.replies[0], default=str).replace('"lecture"', "")
    update = listener.seen[-1][2]["updates"][0]["u"]
    assert update["$inc"] == {"__v": 1} and set(update["$set"]) == {
        "lectureProgress.$.watchTime", "lectureProgress.$.lastWatched", "lastAccessed", "updatedAt"}
    after = lms.record(api.user_id, course)
    assert after["__v"] == before["__v"] + 1 and after["updatedAt"] > before["updatedAt"]
    assert after["lectureProgress"][1]["watchTime"] == 61.5 and after["completionPercentage"] == 33


@WIRE
def test_a_minimal_position_that_completes_reads_the_duration_once(app, api, lms):
    """Watching 90 % with Prefer minimal: the cheap path's duration decides the full write.

    The course question already told the duration, so the full path asks no `lectures` again.
    """
    listener, course, lectures = watched_course(app, api, lms)
    listener.seen.clear()
    with completed_events() as seen:
        response = api.patch(course, lectures[1], {"watchTime": 540}, headers=MINIMAL)
    assert response.status_code == 204 and seen == [lectures[1]]
    names = [(name, collection) for name, collection, _ in listener.seen if name not in ("listIndexes",)]
    # The last: the completion asks whether the course's figures are kept (progress/figures.py).
    assert names == [("aggregate", "courses"), ("find", "courses"), ("find", "courseprogresses"),
                     ("update", "courseprogresses"), ("find", "courseprogressfigures")]
    stored = lms.record(api.user_id, course)
    assert stored["lectureProgress"][1]["isCompleted"] is True and stored["lectureProgress"][1]["watchTime"] == 540
    assert stored["completionPercentage"] == 67


@BOTH
def test_the_cheap_position_path_keeps_every_answer_of_the_full_one(api, lms, client):
    """With Prefer minimal: 404 course, 400 foreign lecture, first use creates, 90 % completes."""
    course, lectures = lms.course(2, durations=[100, 100])
    other, other_lectures = lms.course(1)
    missing = api.patch(ObjectId(), lectures[0], {"watchTime": 5}, headers=MINIMAL)
    assert (missing.status_code, missing.json["message"]) == (404, "Course not found")
    foreign = api.patch(course, other_lectures[0], {"watchTime": 5}, headers=MINIMAL)
    assert (foreign.status_code, foreign.json["errors"]) == (400, {"lectureId": ["Lecture does not belong to this course"]})
    assert lms.record(api.user_id, course) is None
    assert api.patch(course, lectures[0], {"watchTime": 5}, headers=MINIMAL).status_code == 204
    assert entry(lms, api, course)["watchTime"] == 5.0, "the first position creates the record"
    with completed_events() as seen:
        assert api.patch(course, lectures[0], {"watchTime": 90}, headers=MINIMAL).status_code == 204
    assert entry(lms, api, course)["isCompleted"] is True and seen == [lectures[0]]
