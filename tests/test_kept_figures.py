"""The instructor's summary from kept figures (contract section 15) against a brute-force oracle.

Every test compares the summary with tests/figures_oracle.py, which reads every record and
applies the rule in plain Python; most also check the invariant of progress/figures.py
(the counts are the sum of the record documents, which hold their records' states).
"""
import multiprocessing
import random
import time
from datetime import timedelta

import pytest
from bson import ObjectId

from progress_service import create_app
from progress_service.progress import figures, mount_of, upkeep
from progress_service.progress.present import iso_time

from .command_audit import AUDIT
from .figures_oracle import check_invariant, figures_key, oracle, shown
from .support import BOTH, PREFIX, SECRET, WIRE, Api, make_token, utc_ms
from .test_mongoose_interleaving import Round, play

MINIMAL = {"Prefer": "return=minimal"}
WRITES = ("flag", "position", "minimal position", "watched", "flag and position", "batch", "complete", "reset")
# Outside writes are swept at this interval here; the default (30 s) bounds them the same way.
QUICK = {"PROGRESS_SUMMARY_REFRESH_SECONDS": "0.2"}


def summary(client, user_id, course):
    """The summary's data, as `user_id` (an instructor or admin) sees it."""
    response = client.get(f"{PREFIX}/{course}/summary", headers={"Authorization": f"Bearer {make_token(user_id)}"})
    assert response.status_code == 200, response.get_json()
    return response.json["data"]


def random_write(rng, api, course, lectures):
    """One write of a random kind through the API; (kind, response)."""
    kind = rng.choice(WRITES)
    lecture = rng.choice(lectures)
    if kind == "flag":
        return kind, api.patch(course, lecture, {"isCompleted": rng.random() < 0.6})
    if kind == "position":
        return kind, api.patch(course, lecture, {"watchTime": rng.randint(1, 80)})
    if kind == "minimal position":
        return kind, api.patch(course, lecture, {"watchTime": rng.randint(1, 80)}, headers=MINIMAL)
    if kind == "watched":  # 95 of 100 s: completes the lecture by watching
        return kind, api.patch(course, lecture, {"watchTime": 95}, headers=MINIMAL)
    if kind == "flag and position":
        return kind, api.patch(course, lecture, {"isCompleted": rng.random() < 0.5, "watchTime": 12})
    if kind == "batch":
        picked = rng.sample(lectures, 2)
        body = {"lectures": [{"lecture": str(item), "isCompleted": rng.random() < 0.5} for item in picked]}
        return kind, api.client.patch(f"{PREFIX}/{course}/lectures", json=body,
                                      headers={"Authorization": f"Bearer {api.token}"})
    if kind == "complete":
        return kind, api.complete(course)
    return kind, api.reset(course)


@BOTH
@pytest.mark.parametrize("app_config", [{}, {"PROGRESS_LEGACY_FIRST_PATCH": True}], ids=["default", "legacy first"])
def test_every_kind_of_write_is_in_the_summary_as_soon_as_it_answers(client, lms, app_config):
    """Flags, positions (full and minimal), completion by watching, batches, complete, reset
    and first writes creating records: after each, the summary equals the oracle."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(5, instructor=teacher, durations=[100] * 5)
    apis = [Api(client, lms.user()) for _ in range(4)]
    assert summary(client, teacher, course)["students"] == 0  # the figures exist before the writes
    key = figures_key(lms.db, course)
    rng, kinds = random.Random(26), set()
    for step in range(70):
        kind, response = random_write(rng, rng.choice(apis), course, lectures)
        assert response.status_code in (200, 204, 404), (step, kind, response.get_json())
        kinds.add(kind)
        assert shown(summary(client, teacher, course)) == oracle(lms.db, course), (step, kind)
        assert figures_key(lms.db, course) == key, "kept exact by the writes, never rebuilt"
    assert kinds == set(WRITES)
    check_invariant(lms.db, course)


@WIRE
def test_a_flag_costs_one_command_and_a_position_none(app, client, lms):
    """With the course's figures kept: a flag PATCH adds one command (an update of two
    statements on the figures), a position update adds nothing, minimal or not."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(3, instructor=teacher)
    api = Api(client, lms.user())
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    summary(client, teacher, course)
    assert api.patch(course, lectures[1], {"isCompleted": True}).status_code == 200  # learns the key
    for body, headers, added in (({"isCompleted": False}, None, 1), ({"watchTime": 30}, MINIMAL, 0),
                                 ({"watchTime": 31}, None, 0), ({"isCompleted": True}, MINIMAL, 1)):
        with AUDIT.capture() as seen:
            assert api.patch(course, lectures[1], body, headers=headers).status_code in (200, 204)
        kept = [(name, command) for name, collection, command in seen if collection == figures.COLLECTION]
        assert len(kept) == added, (body, headers, kept)
        if added:
            assert kept[0][0] == "update" and len(kept[0][1]["updates"]) == 2
    assert shown(summary(client, teacher, course)) == oracle(lms.db, course)


@BOTH
def test_a_late_or_replayed_write_changes_nothing(app, client, lms):
    """A write's figure update arriving after later ones (or twice) is refused whole: the
    record's document must hold what that write read, at a version no newer (figures.py, 1)."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(3, instructor=teacher)
    api = Api(client, lms.user())
    api.patch(course, lectures[0], {"isCompleted": True})  # version 0: {L0}
    summary(client, teacher, course)
    api.patch(course, lectures[1], {"isCompleted": True})  # version 1: {L0, L1}
    api.patch(course, lectures[1], {"isCompleted": False})  # version 2: {L0} again
    record = lms.record(api.user_id, course)
    kept = mount_of(app).figures
    before = lms.db[figures.COLLECTION].find_one({"_id": record["_id"]})
    counts = lms.db[figures.COLLECTION].find_one({"_id": figures.course_key(course)})
    key, state = figures_key(lms.db, course), dict(before)
    state.pop("_id"), state.pop("k")
    # The second write again (it read version 0, {L0}, and made {L0, L1}), and the first again.
    assert figures._apply_write(kept, course, key, record["_id"], 0, 0b01, 0b11, state) is False
    assert figures._apply_write(kept, course, key, record["_id"], None, None, 0b01, state) is False
    assert lms.db[figures.COLLECTION].find_one({"_id": record["_id"]}) == before
    assert lms.db[figures.COLLECTION].find_one({"_id": figures.course_key(course)}) == counts
    assert shown(summary(client, teacher, course)) == oracle(lms.db, course)


def _racing_writer(uri, course, lectures, students, seed, rounds, started, queue):
    """In a process of its own (its own app and connection): random writes by shared students."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": uri})
    client = app.test_client()
    rng = random.Random(seed)
    apis = [Api(client, student) for student in students]
    statuses = []
    for number in range(rounds):
        statuses.append(random_write(rng, rng.choice(apis), course, lectures)[1].status_code)
        if number == 2:
            started.release()
    queue.put(statuses)


@WIRE
@pytest.mark.slow
def test_writers_in_several_processes_racing_a_rebuild_keep_the_figures_exact(app, client, lms, db_uri):
    """Four processes write the same students' records at once while this one rebuilds the
    figures twice (the operator's command) and the course gains a lecture: afterwards the
    summary equals the oracle and every record's document holds its record's state."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(6, instructor=teacher, durations=[100] * 6)
    students = [lms.user() for _ in range(5)]
    summary(client, teacher, course)
    context = multiprocessing.get_context("spawn")
    queue, started = context.Queue(), context.Semaphore(0)
    processes = [context.Process(target=_racing_writer,
                                 args=(db_uri, course, lectures, students, seed, 60, started, queue))
                 for seed in range(4)]
    for process in processes:
        process.start()
    for _ in processes:
        assert started.acquire(timeout=120)  # every writer is writing
    mount = mount_of(app)
    upkeep.rebuild(mount, mount.catalog.course(course))
    lms.set_lectures(course, lectures + lms.course(1)[1])
    summary(client, teacher, course)  # counts the new list while the writers go on
    upkeep.rebuild(mount, mount.catalog.course(course))
    statuses = [status for _ in processes for status in queue.get(timeout=300)]
    for process in processes:
        process.join(timeout=30)
    assert set(statuses) <= {200, 204, 404} and statuses.count(200) > 100
    assert shown(summary(client, teacher, course)) == oracle(lms.db, course)
    check_invariant(lms.db, course)


@BOTH
@pytest.mark.parametrize("app_config", [QUICK])
def test_writes_made_elsewhere_are_in_the_summary_after_the_refresh_interval(client, lms, app_config):
    """Records created and changed by the original app (Mongoose-style element writes, no __v
    bump) and a lecture list edited in the LMS: the list at once, the records within the
    interval; asOf says when the figures were exact, and moves."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(4, instructor=teacher)
    api = Api(client, lms.user())
    api.patch(course, lectures[0], {"isCompleted": True})
    first = summary(client, teacher, course)
    assert first["students"] == 1
    key = figures_key(lms.db, course)
    theirs = ObjectId()
    lms.db.courseprogresses.insert_one({
        "user": lms.user(), "course": course, "__v": 0, "isCompleted": False, "completionPercentage": 50,
        "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": done}
                            for lecture, done in zip(lectures, (True, True, False, False))],
        "lastAccessed": utc_ms(), "createdAt": utc_ms(), "updatedAt": utc_ms(), "_id": theirs})
    lms.db.courseprogresses.update_one({"user": api.user_id, "course": course},
                                       {"$set": {"lectureProgress.1.isCompleted": True, "updatedAt": utc_ms()}})
    time.sleep(0.25)
    later = summary(client, teacher, course)
    assert shown(later) == oracle(lms.db, course) and later["students"] == 2
    assert later["asOf"] > first["asOf"] and figures_key(lms.db, course) == key, "swept, not rebuilt"
    lms.set_lectures(course, [lectures[3], lectures[1]])
    assert shown(summary(client, teacher, course)) == oracle(lms.db, course)
    check_invariant(lms.db, course)


@WIRE
@pytest.mark.parametrize("app_config", [{"PROGRESS_SUMMARY_REFRESH_SECONDS": "0.3"}])
def test_a_write_the_summary_missed_is_in_it_after_the_interval(client, lms, monkeypatch):
    """The process died between storing a write and updating the figures: the next sweep
    finds the record by its updatedAt. Until then the summary is as of its asOf."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(2, instructor=teacher)
    api = Api(client, lms.user())
    api.patch(course, lectures[0], {"isCompleted": True})
    summary(client, teacher, course)
    key = figures_key(lms.db, course)
    monkeypatch.setattr(figures, "record_written", lambda mount, done: None)
    api.patch(course, lectures[1], {"isCompleted": True})
    monkeypatch.undo()
    assert summary(client, teacher, course)["completed"] == 0
    time.sleep(0.35)
    assert shown(summary(client, teacher, course)) == oracle(lms.db, course)
    assert figures_key(lms.db, course) == key
    check_invariant(lms.db, course)


@BOTH
def test_a_record_the_original_created_then_we_changed_is_counted_at_once(client, lms):
    """No sweep has seen the original's record when our write changes it: the write's change
    counts it from what it was (figures.py: owed)."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(3, instructor=teacher)
    summary(client, teacher, course)
    key = figures_key(lms.db, course)
    student = lms.user()
    lms.db.courseprogresses.insert_one({
        "user": student, "course": course, "__v": 3, "lectureProgress": [
            {"_id": ObjectId(), "lecture": lectures[0], "isCompleted": True}],
        "createdAt": utc_ms(), "updatedAt": utc_ms(), "lastAccessed": utc_ms()})
    assert Api(client, student).patch(course, lectures[2], {"isCompleted": True}).status_code == 200
    data = summary(client, teacher, course)
    assert shown(data) == oracle(lms.db, course) and data["lectures"][0]["completed"] == 1
    assert figures_key(lms.db, course) == key
    check_invariant(lms.db, course)
    assert lms.db[figures.COLLECTION].count_documents({"owed": {"$exists": True}}) == 0


@BOTH
@pytest.mark.parametrize("app_config", [QUICK])
@pytest.mark.parametrize("damage", ["figures document deleted", "collection dropped", "counts corrupted",
                                    "record documents deleted"])
def test_lost_or_corrupted_figures_are_rebuilt_from_the_records(client, lms, damage):
    """The kept figures are a cache: whatever happens to them, the summary comes back exact
    (the record documents' loss is found by the periodic count, COUNT_EVERY intervals on)."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(3, instructor=teacher)
    apis = [Api(client, lms.user()) for _ in range(3)]
    for number, api in enumerate(apis):
        api.patch(course, lectures[number], {"isCompleted": True})
    summary(client, teacher, course)
    kept = lms.db[figures.COLLECTION]
    if damage == "figures document deleted":
        kept.delete_one({"_id": figures.course_key(course)})
    elif damage == "collection dropped":
        kept.drop()
    elif damage == "counts corrupted":
        kept.update_one({"_id": figures.course_key(course)}, {"$inc": {"per.0": 1}})
    else:
        kept.delete_many({"course": course, "k": {"$exists": True}})
    apis[0].patch(course, lectures[1], {"isCompleted": True})  # writes go on meanwhile
    if damage == "record documents deleted":
        time.sleep(0.2 * upkeep.COUNT_EVERY + 0.1)
    assert shown(summary(client, teacher, course)) == oracle(lms.db, course)
    check_invariant(lms.db, course)


@BOTH
def test_an_erased_user_leaves_the_figures_at_once(client, lms, app):
    """Mount.erase_user: the user's records leave their courses' figures as they are deleted
    (figures.records_removed), which stay kept (same key)."""
    teacher = lms.user(role="instructor")
    courses = [lms.course(2, instructor=teacher) for _ in range(2)]
    apis = [Api(client, lms.user()) for _ in range(3)]
    for api in apis:
        for course, lectures in courses:
            api.patch(course, lectures[0], {"isCompleted": True})
    keys = []
    for course, _ in courses:
        summary(client, teacher, course)
        keys.append(figures_key(lms.db, course))
    assert mount_of(app).erase_user(apis[0].user_id).records == 2
    for (course, _), key in zip(courses, keys):
        data = summary(client, teacher, course)
        assert shown(data) == oracle(lms.db, course) and data["students"] == 2
        assert figures_key(lms.db, course) == key
        check_invariant(lms.db, course)


@BOTH
def test_an_erased_course_has_its_figures_forgotten(client, lms, app):
    """Mount.erase_course: the course's figures go with its records; the next summary counts
    nothing, and the record documents under its key are gone."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(2, instructor=teacher)
    for _ in range(3):
        Api(client, lms.user()).patch(course, lectures[0], {"isCompleted": True})
    summary(client, teacher, course)
    key = figures_key(lms.db, course)
    assert mount_of(app).erase_course(course).records == 3
    assert lms.db[figures.COLLECTION].count_documents({"k": key}) == 0
    data = summary(client, teacher, course)
    assert shown(data) == oracle(lms.db, course) and data["students"] == 0
    check_invariant(lms.db, course)


@pytest.fixture
def shared_quick(mongoose, wire_server):
    """(app, lms, mongoose): the service (short refresh interval) and the original app on one database."""
    from .support import Lms

    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, **QUICK,
                      "MONGODB_URI": wire_server.uri(mongoose.database)})
    with app.app_context():
        yield app, Lms(mount_of(app).database.db()), mongoose
    mount_of(app).database.close()


@pytest.mark.wire
def test_real_mongoose_writes_interleaved_with_ours_converge(shared_quick, monkeypatch):
    """Real Mongoose 8 creates records and saves element writes, pushes and reassignments,
    inside and across our writes: ours are in the summary at once, the original's after the
    interval, and then it equals the oracle."""
    app, lms, mongoose = shared_quick
    rng = random.Random(15)
    admin = lms.user(role="admin")
    client = app.test_client()
    api = Api(client, lms.user())
    for number in range(40):
        round_ = Round(rng, lms, mongoose, api, api.user_id)
        summary(client, admin, round_.course)
        key = figures_key(lms.db, round_.course)
        response, _flags, _figures = play(round_, monkeypatch)
        assert response.status_code in (200, 204), (number, response.get_json())
        time.sleep(0.25)
        assert shown(summary(client, admin, round_.course)) == oracle(lms.db, round_.course), number
        assert figures_key(lms.db, round_.course) == key, number
        check_invariant(lms.db, round_.course)


@BOTH
def test_with_the_default_interval_outside_changes_show_within_thirty_seconds(client, lms, monkeypatch):
    """The real default (30 s), on a clock moved forward: a change made elsewhere is not in
    a summary asked for 29 s after the last sweep, and is in one asked for 31 s after it,
    whose asOf is that moment. (Any summary's asOf is thus at most 30 s old when the asking
    process sweeps; when another process is sweeping, at most that sweep's time more.)"""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(2, instructor=teacher)
    api = Api(client, lms.user())
    api.patch(course, lectures[0], {"isCompleted": True})
    built = summary(client, teacher, course)
    key = figures_key(lms.db, course)
    lms.db.courseprogresses.update_one({"user": api.user_id, "course": course},
                                       {"$set": {"lectureProgress.1.isCompleted": True, "updatedAt": utc_ms()}})
    real_now = upkeep.now_ms
    for seconds, exact in ((29, False), (31, True)):
        monkeypatch.setattr(upkeep, "now_ms", lambda seconds=seconds: real_now() + timedelta(seconds=seconds))
        asked = upkeep.now_ms()
        data = summary(client, teacher, course)
        assert (shown(data) == oracle(lms.db, course)) is exact, seconds
        assert (data["asOf"] == built["asOf"]) is not exact
        if exact:
            assert iso_time(asked) <= data["asOf"] <= iso_time(upkeep.now_ms())
    assert figures_key(lms.db, course) == key
