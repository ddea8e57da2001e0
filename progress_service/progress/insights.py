"""Read-only views beyond the original (contract sections 7 and 15): the student's dashboard and
the instructor's summary and student list. No Flask in here.

Every figure shown per record on the dashboard comes from `present`, i.e. the same rule over
the course's current lectures as GET /:courseId; the instructor's views answer from the
figures kept per course (figures.py, upkeep.py), which apply the same rule.
"""
from dataclasses import dataclass

from . import stored, tally, upkeep, windows
from .catalog import CourseInfo
from .exceptions import Forbidden, NotFound
from .present import RECORDS, iso_time, oid, present
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
                "lectures": [{"lecture": oid(row["lecture"]), "title": row["title"], "completed": row["completed"]}
                             for row in self.lectures],
                "asOf": iso_time(self.as_of)}


def _in_order(mount, user_id):
    """The caller's records, newest lastAccessed first (ties: newest _id first).

    Not hinted: MongoDB's planner takes the dashboard index unhinted (the one plan that
    needs no sort), while the embedded test server runs a hinted query by walking the whole
    index, every user's records.
    """
    return mount.database.records().find({"user": user_id}).sort(DASHBOARD_SORT)


class Caller:
    """The caller's user, read once and only when their role decides."""

    def __init__(self, mount, user_id):
        self.mount, self.user_id, self._user, self._read = mount, user_id, None, False

    def may_read(self, course):
        """Whether the caller may still read `course` (service.may_read, role read if needed)."""
        if may_read(self.mount, course, self.user_id):
            return True
        return may_read(self.mount, course, self.user_id, self.user())

    def user(self):
        """The caller's user (None when not in `users`)."""
        if not self._read:
            self._user, self._read = self.mount.catalog.user(self.user_id), True
        return self._user


def _readable_page(mount, caller, page, limit):
    """(records of the page, their courses): the caller's records of courses they may still
    read, in order, asked about a batch at a time, so that a page costs what it shows (and
    the pages before it), not what the caller has."""
    skip, raws, courses = (page - 1) * limit, [], {}
    cursor = _in_order(mount, caller.user_id).batch_size(limit + 1)
    try:
        for batch in windows.batches(cursor, limit):
            # A record's course that is not an id (an object, null) names no course.
            course_ids = [stored.read(raw, "course", stored.key, RECORDS) for raw in batch]
            found = mount.catalog.courses({cid for cid in course_ids if cid is not None}, caller.user_id)
            for raw, course_id in zip(batch, course_ids):
                info = found.get(course_id)
                if info is None or not caller.may_read(info):
                    continue
                if skip:
                    skip -= 1
                    continue
                raws.append(raw)
                courses[course_id] = info
                if len(raws) == limit:
                    return raws, courses
    finally:
        cursor.close()
    return raws, courses


def _readable_total(mount, caller):
    """How many of the caller's records are of courses they may still read, counted by the
    database (catalog.count_courses): no course is loaded into Python."""
    course_ids = [cid for cid in mount.database.records().distinct("course", {"user": caller.user_id})
                  if stored.is_key(cid)]
    if not course_ids:
        return 0
    total = mount.catalog.count_courses(course_ids, caller.user_id)
    if total < len(course_ids) and getattr(caller.user(), "role", None) == ADMIN:
        total = mount.catalog.count_courses(course_ids)  # an admin may read every course there is
    return total


def dashboard(mount, user_id, page, limit):
    """The caller's records across courses, each shown with the rule over its current lectures.

    With enrollment required, only the courses the caller may still read are listed (a
    dropped student's record stays stored, and still counts for the instructor).
    """
    ready(mount)
    if mount.settings.enrollment_required:
        caller = Caller(mount, user_id)
        raws, courses = _readable_page(mount, caller, page, limit)
        total = _readable_total(mount, caller)
    else:
        raws = list(_in_order(mount, user_id).skip((page - 1) * limit).limit(limit))
        course_ids = {stored.read(raw, "course", stored.key, RECORDS) for raw in raws} - {None}
        courses = mount.catalog.courses(course_ids, user_id) if course_ids else {}
        total = mount.database.records().count_documents({"user": user_id})
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
