"""The LMS's catalog for the progress feature: its courses, lectures, accounts, enrollment.

The feature asks these on every request (docs/mounting.md, "The catalog hook"). Each answer
is one query on our own collections, read raw (`as_pymongo`) with only the fields it needs:
dereferencing `Course.lectures` to learn the lecture ids would load every lecture, and
loading `Course.students` to check one student would load the whole class list.
"""
from progress_service.progress import CourseInfo, UserInfo

from .models import Course, Lecture, User

COURSE_FIELDS = ("title", "thumbnail", "instructor", "lectures")
# What the feature may show of an account; the password hash is never even read.
USER_FIELDS = ("name", "email", "avatar", "role")


def course_info(raw):
    """A course as the progress feature needs it: its lectures' ids in teaching order."""
    return CourseInfo(id=raw["_id"], title=raw.get("title"), thumbnail=raw.get("thumbnail"),
                      instructor=raw.get("instructor"), lecture_ids=tuple(raw.get("lectures") or ()))


def user_info(raw):
    """An account's public fields."""
    return UserInfo(id=raw["_id"], name=raw.get("name"), email=raw.get("email"),
                    avatar=raw.get("avatar"), role=raw.get("role"))


class LmsCatalog:
    """Courses from `catalog_courses`, lectures from `catalog_lectures`, users from `accounts`."""

    def course(self, course_id):
        """One course, or None (the feature answers 404)."""
        raw = Course.objects(id=course_id).only(*COURSE_FIELDS).as_pymongo().first()
        return None if raw is None else course_info(raw)

    def courses(self, course_ids):
        """Many courses in one query (the student's dashboard)."""
        found = Course.objects(id__in=list(course_ids)).only(*COURSE_FIELDS).as_pymongo()
        return {raw["_id"]: course_info(raw) for raw in found}

    def is_enrolled(self, course_id, user_id):
        """Whether the account is one of the course's students (instructors and admins need not be)."""
        return Course.objects(id=course_id, students=user_id).only("id").first() is not None

    def user(self, user_id):
        """One account's public fields, or None."""
        raw = User.objects(id=user_id).only(*USER_FIELDS).as_pymongo().first()
        return None if raw is None else user_info(raw)

    def users(self, user_ids):
        """Many accounts in one query (the instructor's student list)."""
        found = User.objects(id__in=list(user_ids)).only(*USER_FIELDS).as_pymongo()
        return {raw["_id"]: user_info(raw) for raw in found}

    def lecture_titles(self, lecture_ids):
        """Titles of the given lectures (the instructor's summary)."""
        found = Lecture.objects(id__in=list(lecture_ids)).only("title").as_pymongo()
        return {raw["_id"]: raw.get("title") for raw in found}

    def lecture_durations(self, lecture_ids):
        """Durations in seconds, for the lectures that have one: watching 90% completes them."""
        found = Lecture.objects(id__in=list(lecture_ids)).only("duration").as_pymongo()
        return {raw["_id"]: raw["duration"] for raw in found if raw.get("duration")}
