"""Where courses, lectures and users come from: the LMS's collections, or a host's hook.

A host whose data model differs (another collection, other field names, no `lectures`
collection) passes its own object with the same methods to `Progress(catalog=...)`;
`courses` and `users` (batch look-ups) are optional there.
"""
from dataclasses import dataclass, field

from .models import Course, Lecture, User

COURSE_FIELDS = {"title": 1, "thumbnail": 1, "instructor": 1, "lectures": 1}
# The projection names what may leave the service, so `password` is never even loaded.
USER_FIELDS = {"name": 1, "email": 1, "avatar": 1, "role": 1}


@dataclass(frozen=True)
class CourseInfo:
    """What the service needs of a course."""

    id: object
    title: str = None
    thumbnail: str = None
    instructor: object = None
    lecture_ids: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class UserInfo:
    """What the service shows of a user: never a password."""

    id: object
    name: str = None
    email: str = None
    avatar: str = None
    role: str = None


def _course_info(raw):
    """A CourseInfo from a raw `courses` document."""
    return CourseInfo(
        id=raw["_id"],
        title=raw.get("title"),
        thumbnail=raw.get("thumbnail"),
        instructor=raw.get("instructor"),
        lecture_ids=tuple(raw.get("lectures") or ()),
    )


def _user_info(raw):
    """A UserInfo from a raw `users` document."""
    return UserInfo(raw["_id"], raw.get("name"), raw.get("email"), raw.get("avatar"), raw.get("role"))


class MongoCatalog:
    """The default catalog: the original LMS's `courses`, `lectures` and `users`."""

    def course(self, course_id):
        """The course with its ordered lecture ids, or None."""
        raw = Course._get_collection().find_one({"_id": course_id}, COURSE_FIELDS)
        return None if raw is None else _course_info(raw)

    def courses(self, course_ids):
        """Many courses at once, by id (the dashboard)."""
        cursor = Course._get_collection().find({"_id": {"$in": list(course_ids)}}, COURSE_FIELDS)
        return {raw["_id"]: _course_info(raw) for raw in cursor}

    def user(self, user_id):
        """The user's public fields, or None."""
        raw = User._get_collection().find_one({"_id": user_id}, USER_FIELDS)
        return None if raw is None else _user_info(raw)

    def users(self, user_ids):
        """Public fields of many users at once, by id (the instructor's student list)."""
        cursor = User._get_collection().find({"_id": {"$in": list(user_ids)}}, USER_FIELDS)
        return {raw["_id"]: _user_info(raw) for raw in cursor}

    def lecture_titles(self, lecture_ids):
        """Titles of the given lectures, by id (missing ones are left out)."""
        cursor = Lecture._get_collection().find({"_id": {"$in": list(lecture_ids)}}, {"title": 1})
        return {raw["_id"]: raw.get("title") for raw in cursor}


def courses_of(catalog, course_ids):
    """Batch course look-up, falling back to one by one for a host catalog without it."""
    if hasattr(catalog, "courses"):
        return catalog.courses(course_ids)
    found = {cid: catalog.course(cid) for cid in course_ids}
    return {cid: info for cid, info in found.items() if info is not None}


def users_of(catalog, user_ids):
    """Batch user look-up, falling back to one by one for a host catalog without it."""
    if hasattr(catalog, "users"):
        return catalog.users(user_ids)
    found = {uid: catalog.user(uid) for uid in user_ids}
    return {uid: info for uid, info in found.items() if info is not None}
