"""Nothing lost under concurrency, on the real wire server (contract section 2, writes)."""
import multiprocessing
import threading

import pymongo.errors
import pytest

from progress_service import create_app
from progress_service.progress import service

from .support import SECRET, WIRE, Api, make_token

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


@WIRE
def test_a_lost_race_is_redone_from_a_fresh_read(app, lms, monkeypatch):
    """A Mongoose-style write between our read and our save: ours is retried, theirs is kept."""
    user = lms.user()
    course, lectures = lms.course(2)
    api = Api(app.test_client(), user)
    api.patch(course, lectures[0], {"isCompleted": False})
    real_find = service.find_record
    interfered = []

    def find_then_interfere(user_id, course_id):
        record = real_find(user_id, course_id)
        if not interfered:
            interfered.append(True)
            # The original app's array write: positional update and a __v bump.
            lms.db.courseprogresses.update_one(
                {"user": user_id, "course": course_id, "lectureProgress.lecture": lectures[0]},
                {"$set": {"lectureProgress.$.isCompleted": True}, "$inc": {"__v": 1}})
        return record

    monkeypatch.setattr(service, "find_record", find_then_interfere)
    response = api.patch(course, lectures[1], {"isCompleted": True})
    assert response.status_code == 200
    assert response.json["data"]["completionPercentage"] == 100
    stored = lms.record(user, course)
    assert [e["isCompleted"] for e in stored["lectureProgress"]] == [True, True]
    assert stored["completionPercentage"] == 100 and stored["__v"] == 2


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
