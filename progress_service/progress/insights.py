"""Read-only views beyond the original (contract section 7): the student's dashboard and the
instructor's summary and student list. No Flask in here.

Every figure shown per record comes from `present`, i.e. the same rule over the course's
current lectures as GET /:courseId; only the summary computes the rule in the database, and
`summary_pipeline` says how it mirrors `rule.completion_state`.
"""
import logging
from dataclasses import dataclass

from pymongo.errors import OperationFailure

from . import stored
from .catalog import CourseInfo
from .exceptions import Forbidden, NotFound
from .indexes import DASHBOARD, STUDENTS, names_an_index
from .present import RECORDS, oid, present
from .service import ADMIN, COURSE_NOT_FOUND, may_read, ready

log = logging.getLogger("progress_service")

NOT_ALLOWED = "Only the course's instructor or an admin can see its progress"
DASHBOARD_SORT = [("lastAccessed", -1), ("_id", -1)]
STUDENTS_SORT = [("createdAt", 1), ("_id", 1)]
DASHBOARD_KEYS = ("course", "completionPercentage", "isCompleted", "completedAt", "lastAccessed", "resume")
STUDENT_KEYS = ("completionPercentage", "isCompleted", "completedAt", "lastAccessed")


@dataclass
class Page:
    """One page of a list endpoint."""

    items: list
    page: int
    limit: int
    total: int

    def as_dict(self):
        """The page as the client sees it."""
        return {"items": self.items, "page": self.page, "limit": self.limit, "total": self.total}


@dataclass
class Summary:
    """The instructor's figures for one course."""

    students: int
    completed: int
    average_percentage: float
    lectures: list

    def as_dict(self):
        """The figures as the client sees them."""
        return {"students": self.students, "completed": self.completed,
                "averagePercentage": self.average_percentage,
                "lectures": [{"lecture": oid(row["lecture"]), "title": row["title"], "completed": row["completed"]}
                             for row in self.lectures]}


def _page_of(mount, query, sort, index, page, limit, hinted=None):
    """A cursor over one page of `query`, in `sort` order, served by `index` when it exists.

    The hint is given because SecantusDB's planner, unhinted, may pick user_1_course_1 and
    sort in memory; it is left out while the index is missing (a hint naming no index fails).
    `hinted`: force the choice (None: hint when the guard saw the index).
    """
    cursor = mount.database.records().find(query).sort(sort)
    if hinted if hinted is not None else index.name in mount.database.indexes.present:
        cursor = cursor.hint(list(index.keys))
    return cursor.skip((page - 1) * limit).limit(limit)


def _records_of_page(mount, query, sort, index, page, limit):
    """The records of one page (see _page_of).

    An index dropped since the guard last looked fails the hinted query: the page is read
    unhinted, and the guard looks at the indexes again (and makes the index anew).
    """
    try:
        return list(_page_of(mount, query, sort, index, page, limit))
    except OperationFailure as exc:
        if not names_an_index(exc):
            raise
        log.warning("index %s is gone (%s): reading unhinted, checking the indexes again", index.name, exc)
        mount.database.indexes.invalidate()
        return list(_page_of(mount, query, sort, index, page, limit, hinted=False))


def dashboard_query(user_id, readable=None):
    """The dashboard's filter: the user's records (of the courses they may still read)."""
    query = {"user": user_id}
    if readable is not None:
        query["course"] = {"$in": list(readable)}
    return query


def readable_courses(mount, user_id):
    """(courses by id, ids the caller may still read) among those the caller has records of."""
    # A record's course that is not an id (an object, null) names no course.
    course_ids = [cid for cid in mount.database.records().distinct("course", {"user": user_id}) if stored.is_key(cid)]
    courses = mount.catalog.courses(course_ids, user_id) if course_ids else {}
    if not mount.settings.enrollment_required:
        return courses, None
    caller = None
    if any(info.enrolled is False and info.instructor != user_id for info in courses.values()):
        caller = mount.catalog.user(user_id)
    return courses, [cid for cid, info in courses.items() if may_read(mount, info, user_id, caller)]


def dashboard(mount, user_id, page, limit):
    """The caller's records across courses, each shown with the rule over its current lectures.

    With enrollment required, only the courses the caller may still read are listed (a
    dropped student's record stays stored, and still counts for the instructor).
    """
    ready(mount)
    courses, readable = readable_courses(mount, user_id)
    query = dashboard_query(user_id, readable)
    raws = _records_of_page(mount, query, DASHBOARD_SORT, DASHBOARD, page, limit)
    total = mount.database.records().count_documents(query)
    items = []
    for raw in raws:
        # With enrollment off, a course deleted from the LMS keeps its place in the list (so
        # pages and total agree), shown with its id only and, having no lectures, 0 percent.
        course_id = stored.read(raw, "course", stored.key, RECORDS)
        course = courses.get(course_id) or CourseInfo(course_id)
        shown = present(raw, course, None, user_id)
        items.append({key: shown[key] for key in DASHBOARD_KEYS})
    return Page(items, page, limit, total)


def require_instructor(mount, user_id, course_id):
    """The course, if the caller is its instructor or an admin: 404, then 403."""
    ready(mount)
    course = mount.catalog.course(course_id)
    if course is None:
        raise NotFound(COURSE_NOT_FOUND)
    if course.instructor == user_id:
        return course
    caller = mount.catalog.user(user_id)
    if caller is None or caller.role != ADMIN:
        raise Forbidden(NOT_ALLOWED)
    return course


def students(mount, user_id, course_id, page, limit):
    """The course's records with their users, for its instructor or an admin."""
    course = require_instructor(mount, user_id, course_id)
    query = {"course": course.id}
    raws = _records_of_page(mount, query, STUDENTS_SORT, STUDENTS, page, limit)
    total = mount.database.records().count_documents(query)
    student_ids = [stored.read(raw, "user", stored.key, RECORDS) for raw in raws]
    users = mount.catalog.users({student for student in student_ids if student is not None})
    items = []
    for raw, student in zip(raws, student_ids):
        shown = present(raw, course, None, student)
        user = users.get(student)
        items.append({"user": {"_id": oid(student), "name": getattr(user, "name", None),
                               "email": getattr(user, "email", None)},
                      **{key: shown[key] for key in STUDENT_KEYS}})
    return Page(items, page, limit, total)


def _first_entry_completed(lecture):
    """Expression: the first stored entry of `lecture` exists and its isCompleted is true."""
    entries = {"$filter": {"input": stored.array_expression("$lectureProgress"), "as": "entry",
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

    It mirrors rule.completion_state, which stays the single source of the rule for
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


def summary(mount, user_id, course_id):
    """The course's figures over its current lectures, computed by the database."""
    course = require_instructor(mount, user_id, course_id)
    lecture_ids = tuple(dict.fromkeys(course.lecture_ids))
    rows = list(mount.database.records().aggregate(summary_pipeline(course.id, lecture_ids)))
    figures = rows[0] if rows else {}
    titles = mount.catalog.lecture_titles(lecture_ids)
    count = figures.get("students", 0)
    return Summary(
        students=count,
        completed=figures.get("completed", 0),
        average_percentage=mean_one_decimal(int(figures.get("percentageSum", 0)), count),
        lectures=[{"lecture": lecture, "title": titles.get(lecture), "completed": figures.get(f"f{i}", 0)}
                  for i, lecture in enumerate(lecture_ids)],
    )
