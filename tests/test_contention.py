"""Contention (issue 3, point 3): a spent retry budget is an honest 409, never a 500 or a lost write."""
import threading

from progress_service.progress import service, store

from .support import WIRE, Api

CONFLICT = {"status": "fail", "message": "The record is being changed by other requests; retry"}


def started_record(app, lms, lectures, first_done):
    """A student's record on a new course, created by a first PATCH; (user, course, lectures, api)."""
    user = lms.user()
    course, lecture_ids = lms.course(lectures)
    api = Api(app.test_client(), user)
    assert api.patch(course, lecture_ids[0], {"isCompleted": first_done}).status_code == 200
    return user, course, lecture_ids, api


@WIRE
def test_retry_budget_spent_is_an_honest_409_and_nothing_stored(app, lms, monkeypatch):
    """Another writer wins every race: 409 in the envelope, our change absent, theirs kept."""
    user, course, lectures, api = started_record(app, lms, 3, first_done=False)
    real_find = store.find

    def find_then_lose_the_race(records, user_id, course_id):
        """The original app's write lands between our read and our conditional save."""
        raw = real_find(records, user_id, course_id)
        lms.db.courseprogresses.update_one({"user": user_id, "course": course_id},
                                           {"$inc": {"__v": 1, "watchedByOther": 1}})
        return raw

    monkeypatch.setattr(service, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(store, "find", find_then_lose_the_race)
    response = api.patch(course, lectures[1], {"isCompleted": True})
    assert response.status_code == 409
    assert response.json == CONFLICT and response.headers["Retry-After"] == "1"
    stored = lms.record(user, course)
    assert [e["isCompleted"] for e in stored["lectureProgress"]] == [False, False, False]
    assert stored["__v"] == 3 and stored["watchedByOther"] == 3, "the other writer's changes are kept"


@WIRE
def test_a_create_race_lost_every_time_is_409_not_500(app, lms, monkeypatch):
    """The first-PATCH path: a duplicate key on every attempt is a 409, the existing record untouched."""
    user, course, lectures, api = started_record(app, lms, 2, first_done=True)
    before = lms.record(user, course)
    monkeypatch.setattr(service, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(store, "find", lambda records, user_id, course_id: None)
    response = api.patch(course, lectures[1], {"isCompleted": True})
    assert response.status_code == 409 and response.json == CONFLICT
    assert lms.record(user, course) == before
    assert lms.db.courseprogresses.count_documents({"user": user, "course": course}) == 1


@WIRE
def test_concurrent_writers_on_a_small_budget_get_200_or_409_and_every_200_is_stored(app, lms, monkeypatch):
    """One attempt each, 8 at once on one record: no 500, and stored flags equal the 200s exactly."""
    monkeypatch.setattr(service, "MAX_ATTEMPTS", 1)
    user = lms.user()
    conflicts = 0
    for _ in range(5):
        course, lectures = lms.course(8)
        assert Api(app.test_client(), user).patch(course, lectures[0], {"isCompleted": False}).status_code == 200
        barrier = threading.Barrier(len(lectures))
        results = {}

        def mark(lecture):
            """PATCH one lecture, all threads at once."""
            client = Api(app.test_client(), user)
            barrier.wait()
            results[lecture] = client.patch(course, lecture, {"isCompleted": True})

        threads = [threading.Thread(target=mark, args=(lecture,)) for lecture in lectures]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        statuses = {lecture: response.status_code for lecture, response in results.items()}
        assert set(statuses.values()) <= {200, 409}, statuses
        for response in results.values():
            if response.status_code == 409:
                assert response.json == CONFLICT
        stored = lms.record(user, course)
        done = {e["lecture"] for e in stored["lectureProgress"] if e["isCompleted"]}
        assert done == {lecture for lecture, status in statuses.items() if status == 200}
        assert stored["__v"] == len(done), "one version per acknowledged write"
        conflicts += list(statuses.values()).count(409)
        if conflicts:
            break
    assert conflicts, "five rounds of 8 simultaneous writers never ran out of a 1-attempt budget"
