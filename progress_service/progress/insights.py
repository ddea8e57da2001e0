"""Read-only views beyond the original (contract sections 7 and 15): the student's dashboard and
the instructor's summary and student list. No Flask in here.

Every figure shown per record on the dashboard comes from `present`, i.e. the same rule over
the course's current lectures as GET /:courseId; the instructor's views answer from the
figures kept per course (figures.py, upkeep.py), which apply the same rule.
"""
from dataclasses import dataclass

from . import tally, upkeep
from .catalog import CourseInfo
from .database import DASHBOARD
from .exceptions import Forbidden, NotFound
from .present import iso_time, present
from .service import ADMIN, COURSE_NOT_FOUND, may_read, ready

NOT_ALLOWED = "Only the course's instructor or an admin can see its progress"
DASHBOARD_SORT = [("lastAccessed", -1), ("_id", -1)]
DASHBOARD_KEYS = ("course", "completionPercentage", "isCompleted", "completedAt", "lastAccessed", "resume")


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
    as_of: object

    def as_dict(self):
        """The figures as the client sees them."""
        return {"students": self.students, "completed": self.completed,
                "averagePercentage": self.average_percentage,
                "lectures": [{"lecture": str(row["lecture"]), "title": row["title"], "completed": row["completed"]}
                             for row in self.lectures],
                "asOf": iso_time(self.as_of)}


def _page_of(mount, query, sort, index, page, limit):
    """A cursor over one page of `query`, in `sort` order, served by `index` when it exists.

    The hint is given because SecantusDB's planner, unhinted, may pick user_1_course_1 and
    sort in memory; it is left out while the index is missing (a hint naming no index fails).
    """
    cursor = mount.database.records().find(query).sort(sort)
    if index.name in mount.database.indexes.present:
        cursor = cursor.hint(list(index.keys))
    return cursor.skip((page - 1) * limit).limit(limit)


def dashboard_query(user_id, readable=None):
    """The dashboard's filter: the user's records (of the courses they may still read)."""
    query = {"user": user_id}
    if readable is not None:
        query["course"] = {"$in": list(readable)}
    return query


def readable_courses(mount, user_id):
    """(courses by id, ids the caller may still read) among those the caller has records of."""
    course_ids = mount.database.records().distinct("course", {"user": user_id})
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
    raws = list(_page_of(mount, query, DASHBOARD_SORT, DASHBOARD, page, limit))
    total = mount.database.records().count_documents(query)
    items = []
    for raw in raws:
        # With enrollment off, a course deleted from the LMS keeps its place in the list (so
        # pages and total agree), shown with its id only and, having no lectures, 0 percent.
        course = courses.get(raw["course"]) or CourseInfo(raw["course"])
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


def mean_one_decimal(total, count):
    """total / count rounded half up to one decimal, exactly (0 when there is nothing)."""
    if count == 0:
        return 0.0
    return (20 * total + count) // (2 * count) / 10


def summary(mount, user_id, course_id):
    """The course's figures over its current lectures, from the figures kept for it (upkeep.py)."""
    course = require_instructor(mount, user_id, course_id)
    kept = upkeep.current(mount, course)
    counts, lectures = kept.figures, kept.lectures
    titles = mount.catalog.lecture_titles(lectures) if lectures else {}
    return Summary(
        students=counts["students"],
        completed=tally.completed_count(counts),
        average_percentage=mean_one_decimal(tally.percentage_sum(counts), counts["students"]),
        lectures=[{"lecture": lecture, "title": titles.get(lecture), "completed": counts["per"][position]}
                  for position, lecture in enumerate(lectures)],
        as_of=kept.as_of,
    )
