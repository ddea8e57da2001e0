"""Nothing lost under concurrency, on the real wire server (contract section 2, writes)."""
import multiprocessing
import threading

import pymongo.errors
import pytest
from bson import ObjectId

from progress_service import create_app
from progress_service.progress import store

from .support import SECRET, WIRE, Api, make_token, utc_ms

THREADS = 12


def run_together(functions):
    """Start every function at the same moment (a barrier) and wait for all."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def runner(index, function):
        barrier.wait()
        results[index] = function()

    threads = [threading.Thread(target=runner, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@WIRE
def test_threads_changing_different_lectures_all_land(app, lms):
    """12 simultaneous PATCHes of different lectures of one record: all stored, percentage true."""
    user = lms.user()
    course, lectures = lms.course(THREADS)
    api = Api(app.test_client(), user)
    assert api.patch(course, lectures[0], {"isCompleted": False}).status_code == 200
    calls = [lambda lecture=lecture: Api(app.test_client(), user).patch(course, lecture, {"isCompleted": True})
             for lecture in lectures]
    responses = run_together(calls)
    assert [r.status_code for r in responses] == [200] * THREADS
    stored = lms.record(user, course)
    assert all(entry["isCompleted"] for entry in stored["lectureProgress"])
    assert stored["completionPercentage"] == 100 and stored["isCompleted"] is True
    assert stored["__v"] == THREADS, "each write incremented __v exactly once"
    assert len(stored["lectureProgress"]) == THREADS


@WIRE
def test_simultaneous_first_patches_create_one_record(app, lms):
    """Two first PATCHes at once: one record, both 200, both changes applied."""
    user = lms.user()
    course, lectures = lms.course(2)
    calls = [lambda lecture=lecture: Api(app.test_client(), user).patch(course, lecture, {"isCompleted": True})
             for lecture in lectures]
    responses = run_together(calls)
    assert [r.status_code for r in responses] == [200, 200]
    assert lms.db.courseprogresses.count_documents({"user": user, "course": course}) == 1
    stored = lms.record(user, course)
    assert [e["isCompleted"] for e in stored["lectureProgress"]] == [True, True]
    assert stored["completionPercentage"] == 100


@WIRE
def test_unique_index_refuses_a_second_record(app, lms, client):
    """The database itself enforces one record per (user, course)."""
    user = lms.user()
    course, lectures = lms.course(1)
    Api(client, user).patch(course, lectures[0], {"isCompleted": True})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        lms.db.courseprogresses.insert_one({"user": user, "course": course, "lectureProgress": []})


def interfere_once(monkeypatch, rival):
    """Run `rival(user_id, course_id)` right after the write's first read (another writer)."""
    real_find = store.find
    interfered = []

    def find_then_interfere(records, user_id, course_id):
        raw = real_find(records, user_id, course_id)
        if not interfered:
            interfered.append(True)
            rival(user_id, course_id)
        return raw

    monkeypatch.setattr(store, "find", find_then_interfere)
    return interfered


@WIRE
@pytest.mark.parametrize("bumps_version", [True, False], ids=["with __v bump", "element write, no __v bump"])
def test_a_lost_race_is_redone_from_a_fresh_read(app, lms, monkeypatch, bumps_version):
    """A Mongoose-style write between our read and our save: ours is retried, theirs is kept.

    Mongoose sets a field of an existing entry without incrementing __v, but always sets
    updatedAt: the write's condition covers both.
    """
    user = lms.user()
    course, lectures = lms.course(3)
    api = Api(app.test_client(), user)
    api.patch(course, lectures[0], {"isCompleted": False})
    # A lecture added since: our write appends its entry, which must not erase theirs.
    lms.set_lectures(course, lectures + [ObjectId()])

    def rival(user_id, course_id):
        """The original app's element write (filtered on __v, as Mongoose does)."""
        stored = lms.record(user_id, course_id)
        update = {"$set": {"lectureProgress.0.isCompleted": True, "updatedAt": utc_ms(seconds=1)}}
        if bumps_version:
            update["$inc"] = {"__v": 1}
        lms.db.courseprogresses.update_one({"_id": stored["_id"], "__v": stored["__v"]}, update)

    interfered = interfere_once(monkeypatch, rival)
    response = api.patch(course, lectures[1], {"isCompleted": True})
    assert interfered and response.status_code == 200
    assert response.json["data"]["completionPercentage"] == 50
    stored = lms.record(user, course)
    assert [e["isCompleted"] for e in stored["lectureProgress"]] == [True, True, False, False]
    assert stored["completionPercentage"] == 50 and stored["__v"] == (2 if bumps_version else 1)
    assert api.get(course).json == response.json


@WIRE
@pytest.mark.parametrize("action", ["complete", "reset"])
@pytest.mark.parametrize("bumps_version", [True, False], ids=["with __v bump", "element write, no __v bump"])
def test_a_whole_list_write_that_lost_a_race_keeps_the_rivals_write(app, lms, monkeypatch, action, bumps_version):
    """Complete and reset change every entry, so they write the whole list in one path: a
    Mongoose-style element write between our read and our write (a key neither touches) is
    still there afterwards, and ours is applied on top of it."""
    user = lms.user()
    course, lectures = lms.course(4)
    api = Api(app.test_client(), user)
    for lecture in lectures[:3]:
        api.patch(course, lecture, {"isCompleted": action == "reset", "watchTime": 30})

    def rival(user_id, course_id):
        """The original app tags one entry (filtered on __v, as Mongoose does)."""
        stored = lms.record(user_id, course_id)
        update = {"$set": {"lectureProgress.1.note": "theirs", "updatedAt": utc_ms(seconds=1)}}
        if bumps_version:
            update["$inc"] = {"__v": 1}
        lms.db.courseprogresses.update_one({"_id": stored["_id"], "__v": stored["__v"]}, update)

    before = lms.record(user, course)
    interfered = interfere_once(monkeypatch, rival)
    response = getattr(api, action)(course)
    assert interfered and response.status_code == 200
    stored = lms.record(user, course)
    assert [e["_id"] for e in stored["lectureProgress"]] == [e["_id"] for e in before["lectureProgress"]]
    assert stored["lectureProgress"][1]["note"] == "theirs"
    assert [e["isCompleted"] for e in stored["lectureProgress"]] == [action == "complete"] * 4
    assert stored["completionPercentage"] == (100 if action == "complete" else 0)
    assert stored["__v"] == before["__v"] + (2 if bumps_version else 1)
    assert api.get(course).json["data"] == response.json["data"]


def _process_worker(uri, user, course, lectures, rounds, queue):
    """In a separate process: its own app and connection, PATCHing its own lectures."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": uri})
    client = app.test_client()
    token = make_token(user)
    statuses = []
    for _ in range(rounds):
        for lecture in lectures:
            for flag in (False, True):
                response = client.patch(f"/api/v1/progress/{course}/lectures/{lecture}",
                                        data=f'{{"isCompleted": {str(flag).lower()}}}',
                                        headers={"Authorization": f"Bearer {token}"})
                statuses.append(response.status_code)
    queue.put(statuses)


@WIRE
def test_several_processes_writing_one_record_lose_nothing(app, lms, db_uri):
    """4 processes, each toggling its own lectures and ending on true: every flag is true."""
    user = lms.user()
    course, lectures = lms.course(8)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_process_worker,
                                 args=(db_uri, user, course, lectures[i::4], 3, queue))
                 for i in range(4)]
    for process in processes:
        process.start()
    statuses = [status for _ in processes for status in queue.get(timeout=120)]
    for process in processes:
        process.join(timeout=30)
    assert set(statuses) == {200}
    stored = lms.record(user, course)
    assert all(entry["isCompleted"] for entry in stored["lectureProgress"])
    assert stored["completionPercentage"] == 100
    assert stored["__v"] == len(statuses) - 1, "every acknowledged write is one version"


@WIRE
def test_indexes_already_made_by_the_original_lms_are_accepted(app, lms):
    """Mongoose created user_1_course_1 (background: true) before us: requests still work."""
    lms.db.courseprogresses.create_index([("user", 1), ("course", 1)], name="user_1_course_1",
                                         unique=True, background=True)
    user = lms.user()
    course, lectures = lms.course(1)
    response = Api(app.test_client(), user).patch(course, lectures[0], {"isCompleted": True})
    assert response.status_code == 200
    names = {index["name"] for index in lms.db.courseprogresses.list_indexes()}
    assert {"user_1_course_1", "user_1_lastAccessed_-1__id_-1", "course_1_createdAt_1__id_1"} <= names
