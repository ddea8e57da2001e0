"""The player's side on the server (contract section 14): played intervals, watchedSeconds,
completion by played seconds, POST for sendBeacon, and `at` ordering late positions.

Every HTTP test checks the answer and the stored document. The cheap position update merges
in the database (a pipeline update mongomock cannot run), so its tests use the wire server.
"""
import json
import random
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from flask import Flask

from progress_service import create_app
from progress_service.progress import MountError, Progress, mount_of, played
from progress_service.progress.service import LectureChange
from progress_service.progress.settings import complete_by
from progress_service.standalone.config import from_env

from .support import BOTH, PREFIX, SECRET, WIRE, Api, Lms, make_token, utc_ms
from .test_watching import MINIMAL, completed_events, watched_course

WATCHED = {"PROGRESS_COMPLETE_BY": "watched"}


def entry(lms, api, course, index=0):
    """The stored entry of the course's index-th lecture."""
    return lms.record(api.user_id, course)["lectureProgress"][index]


def shown(response, index=0):
    """The answer's lectureProgress item."""
    return response.json["data"]["lectureProgress"][index]


def post(api, course, lecture, body, headers=None, raw=False):
    """POST /:courseId/lectures/:lectureId (what navigator.sendBeacon sends)."""
    return api.client.post(f"{PREFIX}/{course}/lectures/{lecture}", data=body if raw else json.dumps(body),
                           headers={"Authorization": f"Bearer {api.token}", **(headers or {})})


def batch(api, course, items, headers=None):
    """PATCH /:courseId/lectures."""
    return api.client.patch(f"{PREFIX}/{course}/lectures", json={"lectures": items},
                            headers={"Authorization": f"Bearer {api.token}", **(headers or {})})


def iso(moment):
    """As a browser's Date.toISOString() writes it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the union, in Python and in the database ----------------------------------------------------

@pytest.mark.parametrize("stored,reported,union", [
    ([], [(0, 10)], [[0, 10]]),
    ([[0, 10]], [(5, 15)], [[0, 15]]),                       # overlapping
    ([[0, 10]], [(10, 20)], [[0, 20]]),                      # touching
    ([[0, 10]], [(20, 30), (12, 14)], [[0, 10], [12, 14], [20, 30]]),   # disjoint, kept sorted
    ([[0, 10], [20, 30]], [(5, 25)], [[0, 30]]),             # one bridging two
    ([[0, 10], [20, 30]], [(2, 3), (21, 29)], [[0, 10], [20, 30]]),   # inside: nothing new
])
def test_reported_intervals_merge_into_a_sorted_disjoint_union(stored, reported, union):
    """Overlapping and touching intervals become one; the union stays sorted."""
    assert played.merge(stored, reported) == union


def test_over_the_bound_the_smallest_gap_closes_and_only_over_counts_by_it():
    """One interval over MAX_STORED: the two with the smallest gap become one (the first of
    equal gaps); the union never loses played time and grows only by the gaps it closed."""
    stored = [[10 * k, 10 * k + 5] for k in range(played.MAX_STORED)]   # gaps of 5 s
    union = played.merge(stored, [(1000, 1001)])
    assert len(union) == played.MAX_STORED
    assert union[:2] == [[0, 15], [20, 25]], "the first of the equal smallest gaps closed"
    assert union[-1] == [1000, 1001]
    assert played.watched_ms(union) == played.watched_ms(stored) + 1000 + 5000
    closer = stored[:5] + [[46, 55]] + stored[6:]  # one gap of 1 s, after [40, 45]
    union = played.merge(closer, [(900, 901)])
    assert [40, 55] in union and [0, 5] in union and len(union) == played.MAX_STORED


def test_the_stored_union_never_exceeds_its_bound():
    """Fifty scattered intervals a report, many reports: at most MAX_STORED kept, and every
    reported second is inside the union."""
    rng = random.Random(7)
    union = []
    for _ in range(20):
        reported = [(start, start + rng.uniform(0.1, 2)) for start in (rng.uniform(0, 3000) for _ in range(50))]
        union = played.merge(union, reported)
        assert len(union) <= played.MAX_STORED
        assert all(any(s <= start and end <= e for s, e in union) for start, end in reported)
        assert all(union[k][1] < union[k + 1][0] for k in range(len(union) - 1))


@WIRE
def test_the_database_merges_exactly_as_python_does(app, lms):
    """The pipeline of the cheap path against the Python rule (the oracle), on random
    unions and reports, with the bound crossed; other entries and nulls left alone."""
    rng = random.Random(28)
    records = lms.db.courseprogresses

    def random_intervals(count):
        return [tuple(sorted(rng.sample(range(0, 400), 2))) for _ in range(count)]

    for case in range(40):
        lecture, other = ObjectId(), ObjectId()
        stored = played.merge([], random_intervals(rng.randrange(0, 40)))
        records.delete_many({})
        records.insert_one({"user": 1, "course": 2, "__v": 4, "lectureProgress": [
            {"lecture": other, "played": [[1.0, 2.0]]}, None, {"lecture": lecture, "played": stored, "watchTime": 1.0},
            {"lecture": lecture, "note": "a second entry of the lecture: the first one wins"}]})
        reported = random_intervals(rng.randrange(1, 50))
        now = utc_ms()
        records.update_one({"user": 1}, played.position_pipeline(LectureChange(lecture, None, 7.5, tuple(reported)), now))
        after = records.find_one({"user": 1})
        assert after["lectureProgress"][2]["played"] == played.merge(stored, reported), case
        assert after["lectureProgress"][2]["watchTime"] == 7.5 and after["lectureProgress"][2]["lastWatched"] == now
        assert after["lectureProgress"][:2] == [{"lecture": other, "played": [[1.0, 2.0]]}, None]
        assert after["lectureProgress"][3] == {"lecture": lecture, "note": "a second entry of the lecture: the first one wins"}
        assert after["__v"] == 5 and after["updatedAt"] == now


@WIRE
@pytest.mark.parametrize("stored", [
    "a string", 5, float("inf"), float("nan"), {"an": "object"}, True,
    [None, {"x": 1}, "junk", [1], [1, 2, 3], [True, 4], [float("nan"), 3], [1, float("inf")], [3, 2], [0, 2]],
], ids=["a string", "a number", "Infinity", "NaN", "an object", "a bool", "a list of junk and one interval"])
def test_the_database_reads_hostile_stored_intervals_as_python_does(app, lms, stored):
    """What another program stored in `played` that is not a list of [start, end] pairs: the pipeline
    ignores it as intervals_of does (it was a 500: `$filter` refuses a string), contract section 12."""
    records = lms.db.courseprogresses
    lecture = ObjectId()
    records.insert_one({"user": 3, "course": 4, "__v": 1,
                        "lectureProgress": [{"lecture": lecture, "played": stored, "watchTime": 1.0}]})
    records.update_one({"user": 3}, played.position_pipeline(LectureChange(lecture, None, 9.0, ((5, 8),)), utc_ms()))
    assert records.find_one({"user": 3})["lectureProgress"][0]["played"] == played.merge(stored, [(5, 8)])


# --- played and watchedSeconds over HTTP ------------------------------------------------------

@BOTH
def test_played_intervals_are_kept_as_their_union_and_shown_as_watched_seconds(api, lms):
    """Reports merge across requests; the answer and the next GET show the union's length."""
    course, lectures = lms.course(2, durations=[600, 600])
    first = api.patch(course, lectures[0], {"watchTime": 15, "played": [[0, 15]]})
    assert shown(first)["watchedSeconds"] == 15 and shown(first, 1)["watchedSeconds"] == 0
    second = api.patch(course, lectures[0], {"watchTime": 40.5, "played": [[10, 30], [35.25, 40.5]]})
    assert shown(second)["watchedSeconds"] == 35.25
    assert entry(lms, api, course)["played"] == [[0.0, 30.0], [35.25, 40.5]]
    assert api.get(course).json["data"] == second.json["data"]


@WIRE
def test_a_minimal_heartbeat_with_played_merges_in_the_database(api, lms):
    """The cheap path: 204, the union stored, the same as the full path would store."""
    course, lectures = lms.course(2, durations=[600, 600])
    api.patch(course, lectures[1], {"watchTime": 15, "played": [[0, 15]]}, headers=MINIMAL)   # creates: full path
    response = api.patch(course, lectures[1], {"watchTime": 30, "played": [[14, 30], [100, 101]]}, headers=MINIMAL)
    assert response.status_code == 204
    stored = entry(lms, api, course, 1)
    assert (stored["played"], stored["watchTime"]) == ([[0.0, 30.0], [100.0, 101.0]], 30.0)
    assert shown(api.get(course), 1)["watchedSeconds"] == 31


@WIRE
def test_a_heartbeat_with_played_and_at_is_still_two_commands_and_reads_no_record(app, api, lms):
    """One course question and one update (a pipeline) - no read of the record, like a bare position."""
    listener, course, lectures = watched_course(app, api, lms)
    listener.seen.clear()
    response = api.patch(course, lectures[1], {"watchTime": 20, "played": [[5, 20]], "at": iso(utc_ms())},
                         headers=MINIMAL)
    assert response.status_code == 204
    names = [(name, collection) for name, collection, _ in listener.seen if name != "listIndexes"]
    assert names == [("aggregate", "courses"), ("update", "courseprogresses")]
    assert isinstance(listener.seen[-1][2]["updates"][0]["u"], list), "a pipeline update"
    assert entry(lms, api, course, 1)["played"] == [[5.0, 20.0]]


@BOTH
@pytest.mark.parametrize("played_value,errors", [
    ("0-10", ["Not a valid list."]),
    ([[0, 10], [5]], {"1": ["Not a [start, end] pair of seconds."]}),
    ([[0, 10], [3, 2, 1]], {"1": ["Not a [start, end] pair of seconds."]}),
    ([[0, 10], {"start": 0}], {"1": ["Not a [start, end] pair of seconds."]}),
    ([[0, 10], [0, 5], ["0", 5]], {"2": ["Not a valid number."]}),
    ([[-1, 5]], {"0": ["Must be greater than or equal to 0."]}),
    ([[5, 5]], {"0": ["start must be less than end."]}),
    ([[0, 1], [9, 3]], {"1": ["start must be less than end."]}),
    ([[0, 10 ** 400]], {"0": ["Number too large."]}),
    ([[True, 3]], {"0": ["Not a valid number."]}),
    ([[0, None]], {"0": ["Field may not be null."]}),
    ([[k, k + 1] for k in range(51)], ["Longer than maximum length 50."]),
])
def test_invalid_intervals_are_a_400_naming_the_item(api, lms, played_value, errors):
    """Each kind of bad interval: 400 naming `played` and the item; nothing stored."""
    course, lectures = lms.course(1)
    response = api.patch(course, lectures[0], {"watchTime": 10, "played": played_value})
    assert response.status_code == 400
    assert response.json == {"status": "fail", "message": "Invalid request", "errors": {"played": errors}}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_a_bad_interval_in_a_batch_names_the_item_and_its_interval(api, lms):
    """lectures.<i>.played.<k>: the whole batch refused, nothing stored."""
    course, lectures = lms.course(2)
    response = batch(api, course, [{"lecture": str(lectures[0]), "watchTime": 1, "played": [[0, 1]]},
                                   {"lecture": str(lectures[1]), "watchTime": 1, "played": [[0, 1], [4, 2]]}])
    assert response.status_code == 400
    assert response.json["errors"] == {"lectures": {"1": {"played": {"1": ["start must be less than end."]}}}}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_played_without_a_flag_or_a_position_is_refused(api, lms):
    """Intervals come with a position (or a flag): the body still needs one of the two."""
    course, lectures = lms.course(1)
    response = api.patch(course, lectures[0], {"played": [[0, 1]]})
    assert response.status_code == 400 and set(response.json["errors"]) == {"isCompleted", "watchTime"}
    assert lms.record(api.user_id, course) is None


@BOTH
def test_reset_clears_what_was_played(api, lms):
    """A reset lecture starts over: no played seconds, no player time kept."""
    course, lectures = lms.course(1, durations=[600])
    api.patch(course, lectures[0], {"watchTime": 50, "played": [[0, 50]], "at": iso(utc_ms())})
    reset = api.reset(course)
    assert shown(reset)["watchedSeconds"] == 0
    stored = entry(lms, api, course)
    assert (stored["played"], stored["positionAt"], stored["watchTime"]) == ([], None, 0.0)


# --- completion: by position (default) or by played seconds -------------------------------------

@pytest.mark.parametrize("value", ["", "both", "seconds"])
def test_complete_by_is_position_or_watched(value):
    """PROGRESS_COMPLETE_BY refuses anything else at start-up."""
    assert complete_by(" Watched ") == "watched" and complete_by("position") == "position"
    with pytest.raises(ValueError):
        complete_by(value)


def test_complete_by_comes_from_the_environment_and_a_bad_one_stops_the_mount():
    """The standalone app reads PROGRESS_COMPLETE_BY; a host's unusable value is a MountError."""
    assert from_env({"PROGRESS_COMPLETE_BY": "watched"})["PROGRESS_COMPLETE_BY"] == "watched"
    assert from_env({})["PROGRESS_COMPLETE_BY"] == "position"
    host = Flask("host")
    host.config.update(JWT_SECRET_KEY=SECRET, MONGODB_URI="mongodb://127.0.0.1:9/lms",
                       PROGRESS_COMPLETE_BY="seconds")
    with pytest.raises(MountError, match="PROGRESS_COMPLETE_BY"):
        Progress(host)


@BOTH
@pytest.mark.parametrize("app_config", [WATCHED])
def test_under_watched_seeking_to_the_end_completes_nothing(api, lms, app_config):
    """The playhead at 119 s of 120 with 10 s played: not completed (with `position` it would be)."""
    course, lectures = lms.course(1, durations=[120])
    response = api.patch(course, lectures[0], {"watchTime": 119, "played": [[0, 5], [114, 119]]})
    assert shown(response)["isCompleted"] is False and shown(response)["watchedSeconds"] == 10
    assert response.json["data"]["completionPercentage"] == 0
    assert entry(lms, api, course)["isCompleted"] is False


@BOTH
@pytest.mark.parametrize("app_config", [WATCHED])
def test_under_watched_played_seconds_complete_at_the_fraction(api, lms, app_config):
    """107.99 s played of 120: open; 0.01 s more (anywhere not yet played): completed, with the
    event; an explicit false still wins."""
    course, lectures = lms.course(2, durations=[120, 120])
    with completed_events() as seen:
        below = api.patch(course, lectures[0], {"watchTime": 50, "played": [[0, 50], [60, 117.99]]})
        assert shown(below)["isCompleted"] is False and shown(below)["watchedSeconds"] == 107.99 and seen == []
        at = api.patch(course, lectures[0], {"watchTime": 55, "played": [[50, 50.01]]})
    assert shown(at)["isCompleted"] is True and at.json["data"]["completionPercentage"] == 50 and seen == [lectures[0]]
    assert entry(lms, api, course)["isCompleted"] is True
    refused = api.patch(course, lectures[1], {"isCompleted": False, "watchTime": 120, "played": [[0, 120]]})
    assert shown(refused, 1)["isCompleted"] is False and entry(lms, api, course, 1)["isCompleted"] is False


@BOTH
def test_under_position_played_seconds_do_not_complete(api, lms):
    """The default: a lecture all played but whose playhead is at 10 s stays open; the playhead completes it."""
    course, lectures = lms.course(1, durations=[120])
    response = api.patch(course, lectures[0], {"watchTime": 10, "played": [[0, 120]]})
    assert shown(response)["isCompleted"] is False and shown(response)["watchedSeconds"] == 120
    assert shown(api.patch(course, lectures[0], {"watchTime": 108}))["isCompleted"] is True
    assert entry(lms, api, course)["isCompleted"] is True


@BOTH
@pytest.mark.parametrize("app_config", [WATCHED])
def test_under_watched_a_batch_completes_per_item_by_played_seconds(api, lms, app_config):
    """Each item's union decides; the playhead does not."""
    course, lectures = lms.course(3, durations=[100, 100, 100])
    response = batch(api, course, [{"lecture": str(lectures[0]), "watchTime": 95, "played": [[0, 95]]},
                                   {"lecture": str(lectures[1]), "watchTime": 95},
                                   {"lecture": str(lectures[2]), "watchTime": 10, "played": [[0, 89.9]]}])
    rows = response.json["data"]["lectureProgress"]
    assert [(row["isCompleted"], row["watchedSeconds"]) for row in rows] == [(True, 95), (False, 0), (False, 89.9)]
    assert [e["isCompleted"] for e in lms.record(api.user_id, course)["lectureProgress"]] == [True, False, False]


@WIRE
@pytest.mark.parametrize("app_config", [WATCHED])
def test_under_watched_the_cheap_heartbeat_that_completes_takes_the_full_path(app, app_config, api, lms):
    """Ordinary heartbeats: one course question and one findAndModify answering the merged
    entry. The one whose union reaches 90 % is then written by the full path: completed,
    with its event, the union not counted twice."""
    listener, course, lectures = watched_course(app, api, lms)
    listener.seen.clear()
    assert api.patch(course, lectures[1], {"watchTime": 300, "played": [[0, 300]]}, headers=MINIMAL).status_code == 204
    names = [(name, collection) for name, collection, _ in listener.seen if name != "listIndexes"]
    assert names == [("aggregate", "courses"), ("findAndModify", "courseprogresses")]
    assert entry(lms, api, course, 1)["isCompleted"] is False
    listener.seen.clear()
    with completed_events() as seen:
        response = api.patch(course, lectures[1], {"watchTime": 540, "played": [[300, 540]]}, headers=MINIMAL)
    assert response.status_code == 204 and seen == [lectures[1]]
    names = [(name, collection) for name, collection, _ in listener.seen if name != "listIndexes"]
    assert names[:2] == [("aggregate", "courses"), ("findAndModify", "courseprogresses")]
    # The completion then asks whether the course's figures are kept (progress/figures.py).
    assert names[-3:] == [("find", "courseprogresses"), ("update", "courseprogresses"),
                          ("find", "courseprogressfigures")]
    stored = lms.record(api.user_id, course)
    assert stored["lectureProgress"][1]["isCompleted"] is True and stored["lectureProgress"][1]["played"] == [[0.0, 540.0]]
    assert stored["completionPercentage"] == 67


# --- POST for sendBeacon ---------------------------------------------------------------------------

@BOTH
def test_post_is_the_patch(api, lms):
    """Same body, same answer, same stored change; a text/plain body (a beacon's string) too."""
    course, lectures = lms.course(2, durations=[600, 600])
    response = post(api, course, lectures[0], {"watchTime": 42, "played": [[0, 42]]})
    assert response.status_code == 200 and shown(response)["watchTime"] == 42
    assert response.json["data"] == api.get(course).json["data"]
    beacon = post(api, course, lectures[1], '{"isCompleted": true, "watchTime": 7}', raw=True,
                  headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert beacon.status_code == 200 and shown(beacon, 1)["isCompleted"] is True
    stored = lms.record(api.user_id, course)["lectureProgress"]
    assert (stored[0]["watchTime"], stored[0]["played"], stored[1]["isCompleted"]) == (42.0, [[0.0, 42.0]], True)
    assert post(api, course, lectures[0], {"watchTime": 50}, headers=MINIMAL).status_code == 204
    assert entry(lms, api, course)["watchTime"] == 50.0


@BOTH
def test_post_answers_every_error_the_patch_does_in_the_same_order(api, lms):
    """400 body, 400 foreign lecture, 404 course, 401 without a token: as the PATCH."""
    course, lectures = lms.course(1)
    _, foreign = lms.course(1)
    for body, lecture in (({"watchTime": -1}, lectures[0]), ({"watchTime": 1}, foreign[0])):
        by_post, by_patch = post(api, course, lecture, body), api.patch(course, lecture, body)
        assert (by_post.status_code, by_post.json) == (by_patch.status_code, by_patch.json) == (400, by_patch.json)
    missing = post(api, ObjectId(), lectures[0], {"watchTime": 1})
    assert (missing.status_code, missing.json["message"]) == (404, "Course not found")
    anonymous = api.client.post(f"{PREFIX}/{course}/lectures/{lectures[0]}", data='{"watchTime": 1}')
    assert anonymous.status_code == 401
    assert lms.record(api.user_id, course) is None


@BOTH
def test_a_cookie_post_from_a_foreign_origin_is_refused(api, lms, client):
    """A beacon carries the cookie: the origin check applies as to any cookie write."""
    course, lectures = lms.course(1)
    client.set_cookie("token", make_token(api.user_id))
    url = f"{PREFIX}/{course}/lectures/{lectures[0]}"
    body = '{"watchTime": 12}'
    refused = client.post(url, data=body, headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
    assert (refused.status_code, refused.json["message"]) == (403, "Origin not allowed")
    assert lms.record(api.user_id, course) is None
    allowed = client.post(url, data=body, headers={"Origin": "http://localhost:5173", "Content-Type": "text/plain"})
    assert allowed.status_code == 200 and entry(lms, api, course)["watchTime"] == 12.0


# --- at: late positions do not rewind ----------------------------------------------------------------

@BOTH
def test_an_older_at_does_not_rewind_but_its_flag_and_played_count(api, lms):
    """Position at t1, then a late one from t0: watchTime, lastWatched and positionAt stay;
    its played intervals and its flag are applied."""
    course, lectures = lms.course(1, durations=[600])
    t0, t1 = utc_ms(seconds=-60), utc_ms(seconds=-30)
    newer = api.patch(course, lectures[0], {"watchTime": 90, "played": [[60, 90]], "at": iso(t1)})
    before = entry(lms, api, course)
    late = api.patch(course, lectures[0], {"watchTime": 30, "played": [[0, 30]], "isCompleted": True,
                                           "at": int(t0.timestamp() * 1000)})
    assert shown(late)["watchTime"] == 90 and shown(late)["lastWatched"] == shown(newer)["lastWatched"]
    assert shown(late)["isCompleted"] is True and shown(late)["watchedSeconds"] == 60
    stored = entry(lms, api, course)
    assert (stored["watchTime"], stored["lastWatched"], stored["positionAt"]) == (90.0, before["lastWatched"], t1)
    assert stored["played"] == [[0.0, 30.0], [60.0, 90.0]] and stored["isCompleted"] is True
    later = api.patch(course, lectures[0], {"watchTime": 120, "at": iso(t1 + timedelta(seconds=1))})
    assert shown(later)["watchTime"] == 120 and entry(lms, api, course)["positionAt"] == t1 + timedelta(seconds=1)


@BOTH
def test_without_at_the_last_write_wins_and_keeps_the_stored_at(api, lms):
    """A position without `at` moves the position; the player time stays for later ones."""
    course, lectures = lms.course(1)
    t1 = utc_ms(seconds=-30)
    api.patch(course, lectures[0], {"watchTime": 90, "at": iso(t1)})
    assert shown(api.patch(course, lectures[0], {"watchTime": 10}))["watchTime"] == 10
    stored = entry(lms, api, course)
    assert (stored["watchTime"], stored["positionAt"]) == (10.0, t1)
    late = api.patch(course, lectures[0], {"watchTime": 50, "at": iso(t1 - timedelta(seconds=5))})
    assert shown(late)["watchTime"] == 10 and entry(lms, api, course)["watchTime"] == 10.0


@WIRE
def test_the_cheap_path_orders_by_at_in_the_database(api, lms):
    """With Prefer minimal: the late heartbeat's intervals merge, its position does not land."""
    course, lectures = lms.course(1, durations=[600])
    t0, t1 = utc_ms(seconds=-60), utc_ms(seconds=-30)
    api.patch(course, lectures[0], {"watchTime": 90, "played": [[60, 90]], "at": iso(t1)}, headers=MINIMAL)
    before = lms.record(api.user_id, course)
    response = api.patch(course, lectures[0], {"watchTime": 30, "played": [[0, 30]], "at": iso(t0)}, headers=MINIMAL)
    assert response.status_code == 204
    stored = lms.record(api.user_id, course)
    lecture, was = stored["lectureProgress"][0], before["lectureProgress"][0]
    assert (lecture["watchTime"], lecture["lastWatched"], lecture["positionAt"]) == (90.0, was["lastWatched"], t1)
    assert lecture["played"] == [[0.0, 30.0], [60.0, 90.0]]
    assert stored["__v"] == before["__v"] + 1 and stored["updatedAt"] >= before["updatedAt"]
    api.patch(course, lectures[0], {"watchTime": 95, "at": iso(t1 + timedelta(seconds=5))}, headers=MINIMAL)
    assert entry(lms, api, course)["watchTime"] == 95.0


@BOTH
def test_a_replayed_batch_never_rewinds(api, lms):
    """An offline queue replayed late: items older than what is stored only add their intervals."""
    course, lectures = lms.course(2, durations=[600, 600])
    now = utc_ms()
    api.patch(course, lectures[0], {"watchTime": 200, "at": iso(now)})
    response = batch(api, course, [
        {"lecture": str(lectures[0]), "watchTime": 100, "played": [[80, 100]], "at": iso(now - timedelta(minutes=5))},
        {"lecture": str(lectures[1]), "watchTime": 45, "played": [[0, 45]], "at": iso(now - timedelta(minutes=4))}])
    rows = response.json["data"]["lectureProgress"]
    assert [(row["watchTime"], row["watchedSeconds"]) for row in rows] == [(200, 20), (45, 45)]
    stored = lms.record(api.user_id, course)["lectureProgress"]
    assert (stored[0]["watchTime"], stored[0]["positionAt"], stored[0]["played"]) == (200.0, now, [[80.0, 100.0]])
    assert (stored[1]["watchTime"], stored[1]["positionAt"]) == (45.0, now - timedelta(minutes=4))


@BOTH
def test_at_orders_a_post_too(api, lms):
    """The beacon of a page closed earlier, arriving after a newer heartbeat, does not rewind."""
    course, lectures = lms.course(1)
    now = utc_ms()
    api.patch(course, lectures[0], {"watchTime": 70, "at": iso(now)})
    late = post(api, course, lectures[0], {"watchTime": 20, "at": iso(now - timedelta(seconds=1))})
    assert late.status_code == 200 and shown(late)["watchTime"] == 70
    assert entry(lms, api, course)["watchTime"] == 70.0


@BOTH
@pytest.mark.parametrize("at", [
    "yesterday", "2026-01-01", "2026-01-01T10:00:00", True, None, -1, [1], "1969-12-31T23:59:59Z",
    "9" * 50, float("1e300"),
])
def test_an_invalid_at_is_a_400_naming_it(api, lms, at):
    """Not a time with an offset, not epoch milliseconds from 1970: 400 naming `at`."""
    course, lectures = lms.course(1)
    response = api.patch(course, lectures[0], {"watchTime": 1, "at": at})
    assert response.status_code == 400 and list(response.json["errors"]) == ["at"]
    assert lms.record(api.user_id, course) is None


@BOTH
def test_an_at_far_ahead_of_the_server_is_refused(api, lms):
    """A clock a day ahead would outrank every real position: 400; an hour ahead is taken."""
    course, lectures = lms.course(1)
    ahead = datetime.now(timezone.utc) + timedelta(days=1, minutes=5)
    response = api.patch(course, lectures[0], {"watchTime": 1, "at": iso(ahead)})
    assert response.json["errors"] == {"at": ["More than a day ahead of the server's clock."]}
    assert lms.record(api.user_id, course) is None
    soon = utc_ms(hours=1)
    assert api.patch(course, lectures[0], {"watchTime": 1, "at": iso(soon)}).status_code == 200
    assert entry(lms, api, course)["positionAt"] == soon


@BOTH
def test_at_in_any_offset_or_epoch_milliseconds_is_the_same_moment(api, lms):
    """+02:00 and epoch ms are read as UTC, to the millisecond."""
    course, lectures = lms.course(1)
    moment = utc_ms(seconds=-10)
    local = moment.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="microseconds")
    api.patch(course, lectures[0], {"watchTime": 1, "at": local})
    assert entry(lms, api, course)["positionAt"] == moment
    api.patch(course, lectures[0], {"watchTime": 2, "at": moment.timestamp() * 1000 + 0.4})
    assert entry(lms, api, course)["positionAt"] == moment and entry(lms, api, course)["watchTime"] == 2.0


# --- the original app's documents stay valid ----------------------------------------------------

@pytest.mark.wire
def test_mongoose_loads_saves_and_returns_the_new_entry_fields(mongoose, wire_server):
    """A record we wrote `played` and `positionAt` into: the original's Mongoose model loads it
    (and returns them), saves an edit of the entry and a pushed entry without dropping them,
    and our next write and GET still see them."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
                      "MONGODB_URI": wire_server.uri(mongoose.database)})
    try:
        with app.app_context():
            lms = Lms(mount_of(app).database.db())
            api = Api(app.test_client(), lms.user())
            course, lectures = lms.course(3, durations=[600, 600, 600])
            mongoose.ok("create", user=api.user_id, course=course, lectures=lectures[:2])
            at = utc_ms(seconds=-5)
            assert api.patch(course, lectures[0], {"watchTime": 30, "played": [[0, 30]], "at": iso(at)},
                             headers=MINIMAL).status_code == 204
            loaded = mongoose.ok("load", user=api.user_id, course=course)
            assert loaded["doc"]["lectureProgress"][0]["played"] == [[0, 30]]
            assert loaded["doc"]["lectureProgress"][0]["positionAt"] == iso(at)
            mongoose.ok("setEntryField", handle=loaded["handle"], index=0, field="isCompleted", value=True)
            mongoose.ok("pushEntry", handle=loaded["handle"], entry={"lecture": lectures[2]})
            saved = mongoose.ok("save", handle=loaded["handle"])
            assert saved["doc"]["lectureProgress"][0]["played"] == [[0, 30]]
            stored = lms.record(api.user_id, course)["lectureProgress"]
            assert (stored[0]["played"], stored[0]["positionAt"], stored[0]["isCompleted"]) == ([[0.0, 30.0]], at, True)
            assert len(stored) == 3
            again = api.patch(course, lectures[0], {"watchTime": 45, "played": [[30, 45]]})
            assert shown(again)["watchedSeconds"] == 45 and shown(again)["isCompleted"] is True
            reloaded = mongoose.ok("load", user=api.user_id, course=course)["doc"]["lectureProgress"][0]
            assert (reloaded["played"], reloaded["watchTime"]) == ([[0, 45]], 45)
    finally:
        mount_of(app).database.close()


# --- the module and its demo page, as the standalone app serves them ---------------------------

def test_the_app_serves_the_module_and_a_demo_page_that_runs_only_its_own_scripts(client):
    """/player/progress-player.js (importable from any origin), the demo page under its policy,
    nothing else of the directory; errors there are JSON like everywhere."""
    module = client.get("/player/progress-player.js")
    assert module.status_code == 200 and module.mimetype == "text/javascript"
    assert module.headers["Access-Control-Allow-Origin"] == "*"
    assert b"export function trackProgress" in module.data
    page = client.get("/player/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "unsafe-inline" not in policy
    assert f'data-api="{PREFIX}"' in page.get_data(as_text=True) and "<script>" not in page.get_data(as_text=True)
    assert client.get("/player").status_code == 200
    assert client.get("/player/demo.js").headers.get("Access-Control-Allow-Origin") is None
    missing = client.get("/player/player.py")
    assert missing.status_code == 404 and missing.json == {"status": "fail", "message": "Not found"}
