"""The dashboard and the instructor views (contract section 7): HTTP in, JSON and database out.

The summary's figures are checked against completion_state over the same records in
tests/test_summary_figures.py.
"""
import json
import time
from datetime import timedelta

import pytest
from bson import ObjectId

from progress_service.progress import insights, mount_of
from progress_service.progress.schemas import iso_time

from .support import BOTH, PREFIX, WIRE, Api, make_token, utc_ms

ITEM_KEYS = {"course", "completionPercentage", "isCompleted", "completedAt", "lastAccessed", "resume"}
FORBIDDEN = {"status": "fail", "message": "Only the course's instructor or an admin can see its progress"}


def get(client, user_id, path, **params):
    """GET under the prefix as `user_id` (Bearer), with query parameters."""
    return client.get(f"{PREFIX}{path}", query_string=params,
                      headers={"Authorization": f"Bearer {make_token(user_id)}"})


def raw_record(user, course, flags, accessed, **fields):
    """A courseprogresses document in the original Mongoose shape: flags = {lecture: bool}."""
    return {
        "_id": fields.pop("_id", ObjectId()), "user": user, "course": course,
        "isCompleted": False, "completionPercentage": 0,
        "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": done,
                             "watchTime": 0, "lastWatched": None} for lecture, done in flags.items()],
        "lastAccessed": accessed, "createdAt": fields.pop("createdAt", accessed),
        "updatedAt": accessed, "__v": 0, **fields,
    }


def ids(items, key="course"):
    """The ids of a page's items."""
    return [item[key]["_id"] for item in items]


# --- the dashboard ------------------------------------------------------------------------

@BOTH
def test_dashboard_lists_the_callers_records_newest_first(api, lms, client):
    """Each write moves its course to the top; items carry the rule's figures and resume."""
    courses = [lms.course(2, title=f"Course {n}") for n in range(3)]
    for course, lectures in courses:
        api.patch(course, lectures[0], {"isCompleted": True, "watchTime": 8})
        time.sleep(0.003)  # distinct lastAccessed: ties are the next test's business
    api.patch(courses[0][0], courses[0][1][1], {"isCompleted": False, "watchTime": 21})
    Api(client, lms.user()).patch(courses[1][0], courses[1][1][1], {"isCompleted": True})

    response = api.client.get(PREFIX, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200
    data = response.json["data"]
    assert (data["page"], data["limit"], data["total"]) == (1, 20, 3)
    assert ids(data["items"]) == [str(courses[0][0]), str(courses[2][0]), str(courses[1][0])]
    top = data["items"][0]
    assert set(top) == ITEM_KEYS
    assert top["course"] == {"_id": str(courses[0][0]), "title": "Course 0", "thumbnail": None}
    assert (top["completionPercentage"], top["isCompleted"], top["completedAt"]) == (50, False, None)
    assert top["resume"] == {"lecture": str(courses[0][1][1]), "watchTime": 21}
    stored = lms.record(api.user_id, courses[0][0])
    assert top["lastAccessed"] == iso_time(stored["lastAccessed"])
    assert get(client, api.user_id, "/").json == response.json, "trailing slash serves the same"


@BOTH
def test_dashboard_breaks_ties_by_newest_id_and_pages(api, lms, client):
    """Equal lastAccessed: newest _id first; page/limit cut the list, total counts it all."""
    now = utc_ms()
    course_ids = [lms.course(1)[0] for _ in range(5)]
    record_ids = sorted(ObjectId() for _ in range(5))
    docs = [raw_record(api.user_id, course, {}, now, _id=record_id)
            for course, record_id in zip(course_ids, record_ids)]
    docs.append(raw_record(api.user_id, lms.course(1)[0], {}, now - timedelta(days=1)))
    docs.append(raw_record(lms.user(), course_ids[0], {}, now + timedelta(days=1)))
    lms.db.courseprogresses.insert_many(docs)

    newest_first = [str(course) for course in reversed(course_ids)] + [str(docs[5]["course"])]
    pages = [get(client, api.user_id, "", page=page, limit=4).json["data"] for page in (1, 2, 3)]
    assert [ids(page["items"]) for page in pages] == [newest_first[:4], newest_first[4:], []]
    assert all((page["total"], page["limit"]) == (6, 4) for page in pages)
    assert [page["page"] for page in pages] == [1, 2, 3]


@BOTH
def test_dashboard_applies_the_rule_over_current_lectures(api, lms, client):
    """Stored figures are not trusted: a lecture added since is open; GET writes nothing."""
    course, lectures = lms.course(2)
    api.patch(course, lectures[0], {"isCompleted": True})
    done = api.patch(course, lectures[1], {"isCompleted": True}).json["data"]
    added = lms.course(1)[1][0]
    lms.set_lectures(course, lectures + [added])
    before = lms.record(api.user_id, course)
    item = get(client, api.user_id, "").json["data"]["items"][0]
    assert (item["completionPercentage"], item["isCompleted"], item["completedAt"]) == (67, False, None)
    assert item["resume"] == {"lecture": str(added), "watchTime": 0}
    assert lms.record(api.user_id, course) == before
    lms.set_lectures(course, lectures)
    item = get(client, api.user_id, "").json["data"]["items"][0]
    assert (item["completionPercentage"], item["completedAt"], item["resume"]) == (100, done["completedAt"], None)


@BOTH
@pytest.mark.parametrize("app_config", [{"PROGRESS_ENROLLMENT": "off"}])
def test_without_enrollment_the_dashboard_keeps_a_record_of_a_deleted_course(api, lms, client):
    """Enrollment off (the original's behaviour): the item stays (total agrees), id only, 0 percent."""
    course, lectures = lms.course(1)
    api.patch(course, lectures[0], {"isCompleted": True})
    lms.db.courses.delete_one({"_id": course})
    data = get(client, api.user_id, "").json["data"]
    assert data["total"] == 1
    assert data["items"][0]["course"] == {"_id": str(course), "title": None, "thumbnail": None}
    assert (data["items"][0]["completionPercentage"], data["items"][0]["resume"]) == (0, None)


@BOTH
def test_the_dashboard_lists_only_the_courses_the_caller_may_still_read(api, lms, client):
    """A deleted course, or one the student dropped, leaves the dashboard; the record stays stored."""
    kept, deleted, dropped = (lms.course(1) for _ in range(3))
    for course, lectures in (kept, deleted, dropped):
        assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    lms.db.courses.delete_one({"_id": deleted[0]})
    lms.drop(api.user_id, dropped[0])
    data = get(client, api.user_id, "").json["data"]
    assert (data["total"], [item["course"]["_id"] for item in data["items"]]) == (1, [str(kept[0])])
    assert lms.record(api.user_id, dropped[0])["completionPercentage"] == 100
    assert lms.record(api.user_id, deleted[0]) is not None
    lms.enroll(api.user_id, dropped[0])
    assert get(client, api.user_id, "").json["data"]["total"] == 2


@BOTH
@pytest.mark.parametrize("params,field", [
    ({"page": "0"}, "page"), ({"page": "-1"}, "page"), ({"page": "x"}, "page"), ({"page": "1.5"}, "page"),
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "abc"}, "limit"),
])
def test_dashboard_refuses_bad_paging(api, client, params, field):
    """Out of range or not an integer: 400 naming the parameter."""
    response = get(client, api.user_id, "", **params)
    assert response.status_code == 400
    assert response.json["status"] == "fail" and list(response.json["errors"]) == [field]


@BOTH
def test_dashboard_accepts_the_limits_and_ignores_other_parameters(api, client):
    """limit=100 and page=1 are fine; ?utm_source= is not an error; an empty list is 200."""
    response = get(client, api.user_id, "", limit="100", utm_source="mail")
    assert response.status_code == 200
    assert response.json == {"status": "success", "data": {"items": [], "page": 1, "limit": 100, "total": 0}}


@BOTH
def test_dashboard_needs_a_token_and_only_get(client):
    """401 without a token; other methods on the bare prefix are 405 allowing GET."""
    response = client.get(PREFIX)
    assert response.status_code == 401 and response.json["status"] == "fail"
    response = client.post(PREFIX)
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


@BOTH
@pytest.mark.parametrize("role", ["student", "admin"])
def test_the_dashboard_total_counts_every_course_the_caller_may_read(client, lms, role):
    """Enrolled, teaching (not enrolled) and list-less courses count; dropped ones count for
    an admin only; deleted ones never. total equals what the pages list, whatever the page."""
    caller = lms.user(role=role, enrolled=False)
    now = utc_ms()
    kinds = {"enrolled": [], "teaching": [], "open": [], "dropped": [], "deleted": []}
    for number in range(30):
        kind = list(kinds)[number % len(kinds)]
        fields = {"enrolledStudents": [caller] if kind == "enrolled" else [ObjectId()]}
        if kind == "open":
            fields = {"no_enrollment_list": True}
        course = lms.course(1, instructor=caller if kind == "teaching" else None, **fields)[0]
        kinds[kind].append(course)
        lms.db.courseprogresses.insert_one(raw_record(caller, course, {}, now - timedelta(minutes=number)))
    lms.db.courses.delete_many({"_id": {"$in": kinds["deleted"]}})
    readable = {*kinds["enrolled"], *kinds["teaching"], *kinds["open"], *(kinds["dropped"] if role == "admin" else ())}
    listed, totals = [], set()
    for page in range(1, 6):
        data = get(client, caller, "", page=page, limit=7).json["data"]
        listed += ids(data["items"])
        totals.add(data["total"])
    assert totals == {len(readable)} and sorted(listed) == sorted(str(course) for course in readable)


@BOTH
def test_the_first_page_of_a_long_dashboard_asks_about_its_own_courses_only(client, lms, app, monkeypatch):
    """Page 1 of 5 asks the catalog about one batch of courses, not every course the caller
    has (a dropped course in it makes it ask for the next batch); the total is counted."""
    user = lms.user()
    courses = [lms.course(1)[0] for _ in range(40)]
    lms.db.courseprogresses.insert_many([raw_record(user, course, {}, utc_ms(seconds=-number))
                                         for number, course in enumerate(courses)])
    lms.drop(user, courses[1])
    asked = []
    catalog = mount_of(app).catalog
    real = catalog.courses
    monkeypatch.setattr(catalog, "courses", lambda ids, user_id=None: asked.append(len(ids)) or real(ids, user_id),
                        raising=False)
    data = get(client, user, "", limit=5).json["data"]
    assert ids(data["items"]) == [str(course) for course in courses[:1] + courses[2:6]]
    assert data["total"] == 39 and asked == [5, 5]


def index_scan(stage):
    """The IXSCAN stage of a plan (stages nest under inputStage)."""
    while stage.get("stage") != "IXSCAN":
        stage = stage["inputStage"]
    return stage


@WIRE
def test_dashboard_query_is_served_by_an_index_of_the_callers_records(app, api, lms):
    """explain() of exactly the query the code runs: IXSCAN on an index led by the user, no
    COLLSCAN, and only the caller's index keys examined.

    Unhinted: MongoDB's planner takes the dashboard index (the one that avoids a sort); the
    embedded server reports the (user, course) index and sorts the caller's records, which
    is why the test checks what the index bounds rather than which index or the SORT.
    """
    mine = [lms.course(1)[0] for _ in range(12)]
    lms.db.courseprogresses.insert_many(
        [raw_record(api.user_id, course, {}, utc_ms(seconds=-n)) for n, course in enumerate(mine)]
        + [raw_record(ObjectId(), mine[0], {}, utc_ms(seconds=-n)) for n in range(300)])
    assert api.get(mine[0]).status_code == 200  # a request creates the indexes
    explained = insights._in_order(mount_of(app), api.user_id).skip(5).limit(5).explain()
    plan = json.dumps(explained["queryPlanner"]["winningPlan"], default=str)
    assert '"IXSCAN"' in plan and '"COLLSCAN"' not in plan
    assert list(index_scan(explained["queryPlanner"]["winningPlan"])["keyPattern"])[0] == "user"
    assert explained["executionStats"]["totalKeysExamined"] == 12


# --- the instructor views: who may see them -----------------------------------------------

@pytest.fixture
def classroom(lms, client):
    """A course with an instructor, another instructor, an admin and two students' records."""
    teacher = lms.user(role="instructor", name="Teacher")
    course, lectures = lms.course(2, instructor=teacher)
    students = [lms.user(name=f"Student {n}") for n in range(2)]
    for student in students:
        Api(client, student).patch(course, lectures[0], {"isCompleted": True})
    return {"course": course, "lectures": lectures, "teacher": teacher, "students": students,
            "other_teacher": lms.user(role="instructor"), "admin": lms.user(role="admin")}


@BOTH
@pytest.mark.parametrize("view", ["summary", "students"])
def test_instructor_views_are_for_the_instructor_and_admins(client, classroom, view):
    """200 for the course's instructor and an admin; 403 for a student, another instructor
    and a token whose user is not in `users`."""
    path = f"/{classroom['course']}/{view}"
    allowed = [get(client, classroom[who], path) for who in ("teacher", "admin")]
    assert [r.status_code for r in allowed] == [200, 200]
    assert allowed[0].json == allowed[1].json and allowed[0].json["status"] == "success"
    for caller in (classroom["students"][0], classroom["other_teacher"], ObjectId()):
        response = get(client, caller, path)
        assert (response.status_code, response.json) == (403, FORBIDDEN)


@BOTH
@pytest.mark.parametrize("view", ["summary", "students"])
def test_instructor_views_check_in_contract_order(client, classroom, view):
    """401 -> 400 (malformed id, paging) -> 404 (course, even for a student) -> 403."""
    assert client.get(f"{PREFIX}/{classroom['course']}/{view}").status_code == 401
    student = classroom["students"][0]
    bad_id = get(client, student, f"/not-an-id/{view}")
    assert bad_id.status_code == 400 and "courseId" in bad_id.json["errors"]
    missing = get(client, student, f"/{ObjectId()}/{view}")
    assert (missing.status_code, missing.json["message"]) == (404, "Course not found")
    if view == "students":
        paging = get(client, student, f"/{ObjectId()}/{view}", limit="101")
        assert paging.status_code == 400 and list(paging.json["errors"]) == ["limit"]


# --- the summary ----------------------------------------------------------------------------

@BOTH
def test_summary_counts_over_current_lectures_in_course_order(client, lms, classroom):
    """Removed lectures do not count, new ones are open; titles from `lectures`."""
    course, (first, second) = classroom["course"], classroom["lectures"]
    Api(client, classroom["students"][1]).patch(course, second, {"isCompleted": True})
    added = lms.course(1)[1][0]
    lms.set_lectures(course, [second, first, added])
    data = get(client, classroom["teacher"], f"/{course}/summary").json["data"]
    assert data.pop("asOf") >= iso_time(utc_ms(seconds=-5))
    # Records: {first} -> 1 of 3 = 33; {first, second} -> 2 of 3 = 67.
    assert data == {"students": 2, "completed": 0, "averagePercentage": 50.0, "lectures": [
        {"lecture": str(second), "title": "Lecture 2", "completed": 1},
        {"lecture": str(first), "title": "Lecture 1", "completed": 2},
        {"lecture": str(added), "title": "Lecture 1", "completed": 0}]}
    lms.set_lectures(course, [first, second])
    data = get(client, classroom["admin"], f"/{course}/summary").json["data"]
    assert (data["students"], data["completed"], data["averagePercentage"]) == (2, 1, 75.0)


@BOTH
def test_summary_of_a_course_without_records_or_lectures(client, lms):
    """No records: zeros; no lectures: every record at 0, none completed."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(2, instructor=teacher)
    data = get(client, teacher, f"/{course}/summary").json["data"]
    assert data.pop("asOf")
    assert data == {"students": 0, "completed": 0, "averagePercentage": 0.0, "lectures": [
        {"lecture": str(lecture), "title": f"Lecture {n + 1}", "completed": 0} for n, lecture in enumerate(lectures)]}
    lms.db.courseprogresses.insert_one(raw_record(ObjectId(), course, {lectures[0]: True}, utc_ms(),
                                                  isCompleted=True, completionPercentage=100))
    lms.set_lectures(course, [])
    data = get(client, teacher, f"/{course}/summary").json["data"]
    assert data.pop("asOf")
    assert data == {"students": 1, "completed": 0, "averagePercentage": 0.0, "lectures": []}


# --- the student list -----------------------------------------------------------------------

@BOTH
def test_students_are_listed_oldest_first_with_the_rule_applied(client, lms):
    """createdAt ascending, ties by _id; user without avatar or password; pages and total."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(2, instructor=teacher)
    start = utc_ms(days=-3)
    users = [lms.user(name=f"S{n}", avatar="a.png") for n in range(3)] + [ObjectId()]
    same_time = sorted(ObjectId() for _ in range(2))
    lms.db.courseprogresses.insert_many([
        raw_record(users[0], course, {lectures[0]: True}, start, createdAt=start + timedelta(hours=2),
                   completionPercentage=100, isCompleted=True),  # stale stored figures
        raw_record(users[1], course, {lectures[0]: True, lectures[1]: True}, start, _id=same_time[1]),
        raw_record(users[2], course, {}, start, _id=same_time[0]),
        raw_record(users[3], course, {lectures[1]: True}, start, createdAt=start + timedelta(hours=1)),
        raw_record(users[0], lms.course(1)[0], {}, start - timedelta(days=1)),
    ])
    first = get(client, teacher, f"/{course}/students", limit=3).json["data"]
    second = get(client, teacher, f"/{course}/students", limit=3, page=2).json["data"]
    assert (first["total"], second["total"], first["limit"], second["page"]) == (4, 4, 3, 2)
    assert ids(first["items"] + second["items"], "user") == [str(u) for u in (users[2], users[1], users[3], users[0])]
    assert first["items"][0] == {"user": {"_id": str(users[2]), "name": "S2", "email": f"{users[2]}@example.com"},
                                 "completionPercentage": 0, "isCompleted": False, "completedAt": None,
                                 "lastAccessed": iso_time(start)}
    assert first["items"][1]["completionPercentage"] == 100
    assert first["items"][2]["user"] == {"_id": str(users[3]), "name": None, "email": None}
    assert (second["items"][0]["completionPercentage"], second["items"][0]["isCompleted"]) == (50, False)
    text = json.dumps(first) + json.dumps(second)
    assert "password" not in text and "SECRETHASH" not in text and "avatar" not in text
