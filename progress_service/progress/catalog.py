"""Where courses, lectures, users and enrollment come from: the LMS's collections, or a host's hook.

The default, MongoCatalog, reads the original LMS's `courses`, `lectures` and `users` from
the mount's database (or collections of other names). A host whose data model differs passes
its own object to `Progress(catalog=...)`; HostCatalog adapts it once, at mount time, so the
service asks every catalog the same questions (docs/mounting.md lists the methods). Every
catalog has a `parse_id` (ids.py): the host's ids from text.
"""
import copy
from dataclasses import dataclass, field, replace
from functools import cached_property

from . import stored
from .exceptions import MountError
from .ids import id_parser

COURSE_FIELDS = {"title": 1, "thumbnail": 1, "instructor": 1, "lectures": 1}
# Above this many lectures the course and the caller's user are asked in two commands rather
# than one joined aggregate: the join's stages each copy the course's lecture list in the
# embedded database (at 200 lectures the join cost it 2.4 ms of CPU against 1.5 ms for the
# two finds, at 1,000 lectures 10.7 against 5.0), while a command more costs the worker
# about 0.1-0.3 ms, which the join saves on a short course.
JOIN_MAX_LECTURES = 25
# At most this many long courses remembered per process (then forgotten all at once).
LONG_COURSES_KEPT = 10_000
# The projection names what may leave the service, so `password` is never even loaded.
USER_FIELDS = {"name": 1, "email": 1, "avatar": 1, "role": 1}
HOST_REQUIRED = ("course", "user", "lecture_titles")


@dataclass(frozen=True)
class CourseInfo:
    """What the service needs of a course.

    `enrolled` answers for the user the course was asked about: True or False, or None
    when the catalog keeps no enrollment list for it (then every signed-in user may use it).
    """

    id: object
    title: str = None
    thumbnail: str = None
    instructor: object = None
    lecture_ids: tuple = field(default_factory=tuple)
    enrolled: bool = None

    @cached_property
    def current(self):
        """The course's lectures once each, in order, as a dict (computed once per request)."""
        return dict.fromkeys(self.lecture_ids)


@dataclass(frozen=True)
class LecturePlace:
    """One lecture of one course, asked about for one user: all a position update needs.

    `course` has no lecture list (a position update does not read it); `in_course` says
    whether the lecture is one of the course's, `duration` its length in seconds (or None).
    """

    course: CourseInfo
    in_course: bool
    duration: float = None


@dataclass(frozen=True)
class UserInfo:
    """What the service shows of a user: never a password."""

    id: object
    name: str = None
    email: str = None
    avatar: str = None
    role: str = None


def _course_info(raw):
    """A CourseInfo from a raw `courses` document (with `enrolled`/`listed` when asked).

    A field of the wrong type counts as absent (stored.py): `lectures` not an array is no
    lectures, `enrolledStudents` not an array is no enrollment list (contract section 12).
    """
    listed = raw.get("listed")
    if raw.get("unlisted"):
        stored.odd("courses", "enrolledStudents", raw["_id"], "not an array")
    return CourseInfo(
        id=raw["_id"],
        title=stored.read(raw, "title", stored.text, "courses"),
        thumbnail=stored.read(raw, "thumbnail", stored.text, "courses"),
        instructor=raw.get("instructor"),
        lecture_ids=tuple(stored.ids(raw, "lectures", "courses")),
        enrolled=bool(raw.get("enrolled")) if listed else None,
    )


def _user_info(raw):
    """A UserInfo from a raw `users` document (a field that is not a string: absent)."""
    shown = (stored.read(raw, key, stored.text, "users") for key in ("name", "email", "avatar", "role"))
    return UserInfo(raw["_id"], *shown)


def _duration(raw):
    """A `lectures` document's duration in seconds, when it is finite and positive (else None)."""
    return stored.read(raw, "duration", stored.seconds, "lectures") or None


def enrollment_projection(user_id):
    """A find projection answering "is user_id in enrolledStudents?" without returning the list.

    The database evaluates the expressions (find projections take them since MongoDB 4.4):
    a course with 100,000 enrolled students costs our worker and the reply the same as one
    with ten. `listed` tells a course without the field (open to everyone) from one with an
    empty list (nobody).
    """
    return {
        **COURSE_FIELDS,
        "enrolled": {"$in": [user_id, stored.array_expression("$enrolledStudents")]},
        "listed": {"$isArray": "$enrolledStudents"},
        # Set but not an array: treated as no list, and logged (contract section 12).
        "unlisted": {"$and": [{"$not": [{"$isArray": "$enrolledStudents"}]},
                              {"$ne": [{"$ifNull": ["$enrolledStudents", None]}, None]}]},
    }


class MongoCatalog:
    """The default catalog: the original LMS's `courses`, `lectures` and `users`.

    `parse_id` turns a path id or an identity into the host's id (ids.id_parser: ObjectId by
    default, or int, str, uuid.UUID, any function); `courses`, `lectures`, `users` name the
    collections when the host's are named otherwise (MongoEngine's defaults are `course`, ...).
    """

    # Whether course_and_caller and lecture_place may ask one joined question, and
    # count_courses count in the database. They would go around a subclass's own course(),
    # courses(), user() or lecture_durations(), so a subclass that changes one of those is
    # asked through them (decided once, when the class is defined).
    joins_caller = True
    joins_lecture = True
    counts_courses = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.joins_caller = not _replaces(cls, "course", "user")
        cls.joins_lecture = not _replaces(cls, "course", "lecture_durations")
        cls.counts_courses = not _replaces(cls, "courses")

    def __init__(self, database=None, *, parse_id=None, courses="courses", lectures="lectures", users="users"):
        """`database`: the mount's Database (Progress binds it when the host leaves it out)."""
        self.database = database
        self.parse_id = id_parser(parse_id)
        self.collections = {"courses": courses, "lectures": lectures, "users": users}

    def bound_to(self, database):
        """This catalog reading from `database` (a copy when it was bound elsewhere)."""
        if self.database is database:
            return self
        bound = copy.copy(self)
        bound.database = database
        vars(bound).pop("_long_courses", None)
        return bound

    @property
    def long_courses(self):
        """Ids of the courses last seen with more than JOIN_MAX_LECTURES lectures (this
        process's, made on first use: a subclass's __init__ need not call ours). Only which
        question course_and_caller asks depends on it, never its answer."""
        return vars(self).setdefault("_long_courses", set())

    def _read(self, name):
        """The collection this catalog reads as `courses`, `lectures` or `users`."""
        return self.database.db()[self.collections[name]]

    def course(self, course_id, user_id=None):
        """The course with its ordered lecture ids, and whether `user_id` is enrolled; or None."""
        projection = COURSE_FIELDS if user_id is None else enrollment_projection(user_id)
        raw = self._read("courses").find_one({"_id": course_id}, projection)
        return None if raw is None else _course_info(raw)

    def course_and_caller(self, course_id, user_id):
        """(the course with its enrollment answer, the caller's user or None), or (None, None).

        One command where course() and user() take two: an answer that shows the caller's
        user (a GET, a full write) asks for it with the course, unless the course was last
        seen longer than JOIN_MAX_LECTURES. Without the join (see `joins_caller`, and for a
        long course) the user is read when it is needed.
        """
        if not self.joins_caller or course_id in self.long_courses:
            return self._measured(self.course(course_id, user_id)), None
        raw = self._course_joined(course_id, enrollment_projection(user_id), "users", user_id, "caller",
                                  ("_id", *USER_FIELDS))
        if raw is None:
            return None, None
        callers = raw.get("caller") or ()
        return self._measured(_course_info(raw)), (_user_info(callers[0]) if callers else None)

    def _measured(self, course):
        """`course`, its length noted for the next course_and_caller's choice of question."""
        if course is None:
            return None
        long_courses = self.long_courses
        if len(course.lecture_ids) <= JOIN_MAX_LECTURES:
            long_courses.discard(course.id)
        elif course.id not in long_courses:
            if len(long_courses) >= LONG_COURSES_KEPT:
                long_courses.clear()
            long_courses.add(course.id)
        return course

    def lecture_place(self, course_id, user_id, lecture_id):
        """The course's enrollment answer, whether the lecture is in it and its duration, or None.

        One command, and no list in the reply: the cheapest question a video player's
        position update can ask (the course's lecture list may be 1,000 ids long). Without
        the join (see `joins_lecture`), two: course() and lecture_durations().
        """
        if not self.joins_lecture:
            return _place_from(self, course_id, user_id, lecture_id)
        projection = enrollment_projection(user_id)
        del projection["lectures"], projection["title"], projection["thumbnail"]
        projection["inCourse"] = {"$in": [lecture_id, stored.array_expression("$lectures")]}
        raw = self._course_joined(course_id, projection, "lectures", lecture_id, "lecture", ("_id", "duration"))
        if raw is None:
            return None
        lecture = raw.get("lecture") or [{}]
        return LecturePlace(_course_info(raw), bool(raw.get("inCourse")), _duration(lecture[0]))

    def _course_joined(self, course_id, projection, collection, other_id, name, fields):
        """The course's `projection`, with the document `other_id` of `collection` (only its
        `fields`) as a list of at most one under `name`; None without the course. One aggregate."""
        found = list(self._read("courses").aggregate([
            {"$match": {"_id": course_id}},
            {"$project": {**projection, "probe": {"$literal": other_id}}},
            {"$lookup": {"from": self.collections[collection], "localField": "probe", "foreignField": "_id",
                         "as": name}},
            {"$project": {**dict.fromkeys(projection, 1), **{f"{name}.{key}": 1 for key in fields}}},
        ]))
        return found[0] if found else None

    def courses(self, course_ids, user_id=None):
        """Many courses at once, by id (the dashboard), with enrollment when `user_id` is given."""
        projection = COURSE_FIELDS if user_id is None else enrollment_projection(user_id)
        cursor = self._read("courses").find({"_id": {"$in": list(course_ids)}}, projection)
        return {raw["_id"]: _course_info(raw) for raw in cursor}

    def count_courses(self, course_ids, readable_by=None):
        """How many of these courses exist; with `readable_by`, only those that user may use
        (enrolled, its instructor, or a course without a list). One count in the database."""
        if not self.counts_courses:
            return _count_through_courses(self, course_ids, readable_by)
        counted = True
        if readable_by is not None:
            listed = {"$isArray": "$enrolledStudents"}
            counted = {"$or": [{"$not": listed}, {"$eq": ["$instructor", readable_by]},
                               {"$in": [readable_by, {"$cond": [listed, "$enrolledStudents", []]}]}]}
        # An expression rather than a query $or: the embedded test server scans the whole
        # collection for a top-level $or; MongoDB serves both from the _id index.
        found = list(self._read("courses").aggregate([
            {"$match": {"_id": {"$in": list(course_ids)}}},
            {"$group": {"_id": None, "n": {"$sum": {"$cond": [counted, 1, 0]}}}},
        ]))
        return found[0]["n"] if found else 0

    def user(self, user_id):
        """The user's public fields, or None."""
        raw = self._read("users").find_one({"_id": user_id}, USER_FIELDS)
        return None if raw is None else _user_info(raw)

    def users(self, user_ids):
        """Public fields of many users at once, by id (the instructor's student list)."""
        cursor = self._read("users").find({"_id": {"$in": list(user_ids)}}, USER_FIELDS)
        return {raw["_id"]: _user_info(raw) for raw in cursor}

    def lecture_titles(self, lecture_ids):
        """Titles of the given lectures, by id (missing ones are left out)."""
        cursor = self._read("lectures").find({"_id": {"$in": list(lecture_ids)}}, {"title": 1})
        return {raw["_id"]: stored.read(raw, "title", stored.text, "lectures") for raw in cursor}

    def lecture_durations(self, lecture_ids):
        """Durations in seconds of the given lectures, by id (missing, unset or not a finite
        positive number, such as a live stream's Infinity: left out)."""
        ids = list(lecture_ids)
        query = {"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": ids}}
        cursor = self._read("lectures").find(query, {"duration": 1})
        found = ((raw["_id"], _duration(raw)) for raw in cursor)
        return {lecture: seconds for lecture, seconds in found if seconds is not None}


class HostCatalog:
    """A host's catalog, asked the same questions as MongoCatalog.

    The host implements `course(course_id)`, `user(user_id)` and `lecture_titles(ids)`, and
    may add `courses(ids)`, `users(ids)` (batches), `is_enrolled(course_id, user_id)` (then it
    decides enrollment), `lecture_durations(ids)` (then watching completes lectures) and
    `parse_id(text)` (its ids from text; else 24 hex digits as an ObjectId).
    """

    def __init__(self, host):
        """Check the host's object once, at mount time."""
        missing = [name for name in HOST_REQUIRED if not callable(getattr(host, name, None))]
        if missing:
            raise MountError(f"a progress catalog needs the method(s) {', '.join(missing)} (docs/mounting.md)")
        self.host = host
        self.parse_id = id_parser(getattr(host, "parse_id", None))
        self._is_enrolled = getattr(host, "is_enrolled", None)
        self._courses = getattr(host, "courses", None)
        self._users = getattr(host, "users", None)
        self._durations = getattr(host, "lecture_durations", None)

    @property
    def answers_enrollment(self):
        """Whether the host decides who is enrolled (else its courses keep no list: open)."""
        return self._is_enrolled is not None

    def _with_enrollment(self, course, user_id):
        """The course with the host's answer for `user_id`, when it gives one."""
        if course is None or user_id is None or self._is_enrolled is None:
            return course
        return replace(course, enrolled=bool(self._is_enrolled(course.id, user_id)))

    def course(self, course_id, user_id=None):
        """The host's course, with its enrollment answer."""
        return self._with_enrollment(self.host.course(course_id), user_id)

    def course_and_caller(self, course_id, user_id):
        """(the host's course, None): a host's user comes from its own method, read when needed."""
        return self.course(course_id, user_id), None

    def courses(self, course_ids, user_id=None):
        """The host's courses by id (its batch method, or one by one)."""
        if self._courses is not None:
            found = self._courses(course_ids)
        else:
            found = {cid: self.host.course(cid) for cid in course_ids}
        return {cid: self._with_enrollment(info, user_id) for cid, info in found.items() if info is not None}

    def count_courses(self, course_ids, readable_by=None):
        """From the host's courses (a host has no cheaper way to count)."""
        return _count_through_courses(self, course_ids, readable_by)

    def user(self, user_id):
        """The host's user."""
        return self.host.user(user_id)

    def users(self, user_ids):
        """The host's users by id (its batch method, or one by one)."""
        if self._users is not None:
            return self._users(user_ids)
        found = {uid: self.host.user(uid) for uid in user_ids}
        return {uid: info for uid, info in found.items() if info is not None}

    def lecture_titles(self, lecture_ids):
        """The host's lecture titles."""
        return self.host.lecture_titles(lecture_ids)

    def lecture_durations(self, lecture_ids):
        """The host's lecture durations, or none (lectures then complete only explicitly)."""
        return self._durations(lecture_ids) if self._durations is not None else {}

    def lecture_place(self, course_id, user_id, lecture_id):
        """From the host's course and durations (a host has no cheaper way to ask)."""
        return _place_from(self, course_id, user_id, lecture_id)


def _replaces(cls, *names):
    """Whether the MongoCatalog subclass `cls` defines any of these methods anew."""
    return any(getattr(cls, name) is not getattr(MongoCatalog, name) for name in names)


def _count_through_courses(catalog, course_ids, readable_by):
    """count_courses through a catalog's courses()."""
    found = catalog.courses(course_ids, readable_by).values()
    return sum(1 for info in found if readable_by is None or info.enrolled is not False or info.instructor == readable_by)


def _place_from(catalog, course_id, user_id, lecture_id):
    """A LecturePlace from a catalog's course() and lecture_durations() (two questions)."""
    course = catalog.course(course_id, user_id)
    if course is None:
        return None
    in_course = lecture_id in course.current
    duration = catalog.lecture_durations([lecture_id]).get(lecture_id) if in_course else None
    return LecturePlace(course, in_course, duration)


def bind_catalog(catalog, database):
    """The mount's catalog: ours on its database, or the host's behind HostCatalog."""
    if catalog is None:
        return MongoCatalog(database)
    if isinstance(catalog, MongoCatalog):
        return catalog if catalog.database is not None else catalog.bound_to(database)
    return HostCatalog(catalog)
