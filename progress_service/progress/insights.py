"""Read-only views beyond the original (contract section 7): the student's dashboard and the
instructor's summary and student list. No Flask in here.

Every figure shown per record comes from `service.present`, i.e. the same rule function over
the course's current lectures as GET /:courseId; only the summary computes the rule in the
database, and `summary_pipeline` says how it mirrors `models.completion_state`.
"""
from dataclasses import dataclass

from ..exceptions import Forbidden
from .catalog import CourseInfo, courses_of, users_of
from .models import CourseProgress, ProgressSnapshot
from .service import present, require_course

ADMIN = "admin"
NOT_ALLOWED = "Only the course's instructor or an admin can see its progress"
# Declared in models.CourseProgress.meta; the queries below name them as hints, so the
# planner cannot pick user_1_course_1 and sort in memory (SecantusDB does, unhinted).
DASHBOARD_INDEX = "user_1_lastAccessed_-1__id_-1"
STUDENTS_INDEX = "course_1_createdAt_1__id_1"


@dataclass
class Page:
    """One page of a list endpoint."""

    items: list
    page: int
    limit: int
    total: int


@dataclass
class Summary:
    """The instructor's figures for one course."""

    students: int
    completed: int
    average_percentage: float
    lectures: list


def index_keys(name):
    """The key pattern of one of CourseProgress's declared indexes, found by its name."""
    for spec in CourseProgress._meta["index_specs"]:
        if spec.get("name") == name:
            return spec["fields"]
    raise LookupError(f"CourseProgress declares no index named {name}")


def _collection():
    """The raw courseprogresses collection."""
    return CourseProgress._get_collection()


def _page_of(query, sort, index, page, limit):
    """A cursor over one page of `query`, in `sort` order, served by the named index."""
    return (_collection().find(query).sort(sort).hint(index_keys(index))
            .skip((page - 1) * limit).limit(limit))


def _records(cursor):
    """Read-only snapshots of raw results: the lists store nothing (as GET)."""
    return [ProgressSnapshot.from_son(raw) for raw in cursor]


def dashboard_cursor(user_id, page, limit):
    """The dashboard's query: one user's records, newest lastAccessed first, ties newest _id."""
    return _page_of({"user": user_id}, [("lastAccessed", -1), ("_id", -1)], DASHBOARD_INDEX, page, limit)


def dashboard(catalog, user_id, page, limit):
    """The caller's records across courses, each shown with the rule over its current lectures."""
    records = _records(dashboard_cursor(user_id, page, limit))
    total = _collection().count_documents({"user": user_id})
    courses = courses_of(catalog, {record.course for record in records})
    # A course deleted from the LMS keeps its place in the list (so pages and total agree),
    # shown with its id only and, having no lectures, 0 percent.
    items = [present(record, courses.get(record.course) or CourseInfo(record.course), None)
             for record in records]
    return Page(items, page, limit, total)


def require_instructor(catalog, user_id, course_id):
    """The course, if the caller is its instructor or an admin: 404, then 403."""
    course = require_course(catalog, course_id)
    if course.instructor == user_id:
        return course
    caller = catalog.user(user_id)
    if caller is None or caller.role != ADMIN:
        raise Forbidden(NOT_ALLOWED)
    return course


def students_cursor(course_id, page, limit):
    """The student list's query: one course's records, oldest first, ties oldest _id."""
    return _page_of({"course": course_id}, [("createdAt", 1), ("_id", 1)], STUDENTS_INDEX, page, limit)


def students(catalog, user_id, course_id, page, limit):
    """The course's records with their users, for its instructor or an admin."""
    course = require_instructor(catalog, user_id, course_id)
    records = _records(students_cursor(course.id, page, limit))
    total = _collection().count_documents({"course": course.id})
    users = users_of(catalog, {record.user for record in records})
    items = [present(record, course, users.get(record.user)) for record in records]
    return Page(items, page, limit, total)


def _first_entry_completed(lecture):
    """Expression: the first stored entry of `lecture` exists and its isCompleted is true."""
    entries = {"$filter": {"input": {"$ifNull": ["$lectureProgress", []]}, "as": "entry",
                           "cond": {"$eq": ["$$entry.lecture", lecture]}}}
    flags = {"$map": {"input": entries, "as": "found",
                      "in": {"$eq": [{"$ifNull": ["$$found.isCompleted", False]}, True]}}}
    return {"$in": [True, {"$slice": [flags, 1]}]}


def _percentage(lecture_count):
    """Expression: the contract's (200*c + t) // (2*t) over the projected flags f0..f{t-1}."""
    if lecture_count == 0:
        return {"$literal": 0}
    completed = {"$add": [{"$cond": [f"$f{i}", 1, 0]} for i in range(lecture_count)]}
    # $floor of the double quotient is integer division here: a quotient below an integer
    # is below it by at least 1/(2t), far more than a double's rounding error.
    return {"$floor": {"$divide": [{"$add": [{"$multiply": [200, completed]}, lecture_count]},
                                   2 * lecture_count]}}


def summary_pipeline(course_id, lecture_ids):
    """One aggregation over a course's records: students, completed, percentage sum, per lecture.

    It mirrors models.completion_state, which stays the single source of the rule for
    saves: only the given current lectures count, the first entry of a lecture wins, a
    lecture without an entry is not completed, no lectures is 0. The test comparing its
    figures with completion_state over the same records is what keeps the two aligned.
    Flags are one field per lecture (f0, f1, ...) rather than a $map over the lecture
    list, because mongomock loses the outer variable inside a nested $map.
    """
    flags = {f"f{i}": _first_entry_completed(lecture) for i, lecture in enumerate(lecture_ids)}
    per_lecture = {f"f{i}": {"$sum": {"$cond": [f"$f{i}", 1, 0]}} for i in range(len(lecture_ids))}
    return [
        {"$match": {"course": course_id}},
        {"$project": {"_id": 0, **flags}},
        {"$project": {"percentage": _percentage(len(lecture_ids)), **dict.fromkeys(flags, 1)}},
        {"$group": {"_id": None, "students": {"$sum": 1},
                    "completed": {"$sum": {"$cond": [{"$eq": ["$percentage", 100]}, 1, 0]}},
                    "percentageSum": {"$sum": "$percentage"}, **per_lecture}},
    ]


def mean_one_decimal(total, count):
    """total / count rounded half up to one decimal, exactly (0 when there is nothing)."""
    if count == 0:
        return 0.0
    return (20 * total + count) // (2 * count) / 10


def summary(catalog, user_id, course_id):
    """The course's figures over its current lectures, computed by the database."""
    course = require_instructor(catalog, user_id, course_id)
    lecture_ids = tuple(dict.fromkeys(course.lecture_ids))
    rows = list(_collection().aggregate(summary_pipeline(course.id, lecture_ids)))
    figures = rows[0] if rows else {}
    titles = catalog.lecture_titles(lecture_ids)
    count = figures.get("students", 0)
    return Summary(
        students=count,
        completed=figures.get("completed", 0),
        average_percentage=mean_one_decimal(int(figures.get("percentageSum", 0)), count),
        lectures=[{"lecture": lecture, "title": titles.get(lecture), "completed": figures.get(f"f{i}", 0)}
                  for i, lecture in enumerate(lecture_ids)],
    )
