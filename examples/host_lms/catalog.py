"""The host's catalog hook: how the progress feature finds this LMS's courses and users."""
from progress_service.progress import CourseInfo, UserInfo

from .models import Course, User


def course_info(course):
    """What the progress feature needs of one of our courses."""
    return CourseInfo(
        id=course.id,
        title=course.name,
        thumbnail=course.cover,
        instructor=course.teacher,
        lecture_ids=tuple(lesson.lesson_id for lesson in course.course_lectures),
    )


def user_info(user):
    """What the progress feature may show of one of our users (never the password hash)."""
    return UserInfo(id=user.id, name=user.full_name, email=user.email, avatar=user.photo,
                    role=user.role)


class LmsCatalog:
    """Courses from `catalog_courses`, users from `accounts`, lecture titles from the courses."""

    def course(self, course_id):
        """One course, or None."""
        course = Course.objects(id=course_id).first()
        return None if course is None else course_info(course)

    def courses(self, course_ids):
        """Many courses at once (the dashboard), by id."""
        return {course.id: course_info(course) for course in Course.objects(id__in=list(course_ids))}

    def user(self, user_id):
        """One user's public fields, or None."""
        user = User.objects(id=user_id).exclude("password_hash").first()
        return None if user is None else user_info(user)

    def lecture_titles(self, lecture_ids):
        """Titles of lectures by id, read from the courses that embed them."""
        wanted = set(lecture_ids)
        titles = {}
        for course in Course.objects(course_lectures__lesson_id__in=list(wanted)).only("course_lectures"):
            titles.update({lesson.lesson_id: lesson.title for lesson in course.course_lectures
                           if lesson.lesson_id in wanted})
        return titles
