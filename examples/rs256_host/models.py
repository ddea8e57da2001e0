"""The LMS's documents (plain MongoEngine), kept in the original LMS's collections and field names,
so course progress reads them with its default catalog: `users`, `courses`, `lectures`.

The class names are this example's own: MongoEngine's document registry is global and keyed by
class name, and examples/host_lms (loaded in the same test process) has User, Course, Lecture.
"""
from mongoengine import Document, EmailField, IntField, ListField, ReferenceField, StringField
from werkzeug.security import check_password_hash, generate_password_hash


class Account(Document):
    """A student, an instructor or an admin."""

    meta = {"collection": "users"}
    name = StringField(required=True)
    email = EmailField(required=True, unique=True)
    password = StringField(required=True)
    role = StringField(choices=("student", "instructor", "admin"), default="student")

    def set_password(self, password):
        """Keep a hash, never the password."""
        self.password = generate_password_hash(password)

    def check_password(self, password):
        """Whether `password` is this account's."""
        return check_password_hash(self.password, password)


class Lesson(Document):
    """A lecture; `duration` in seconds lets watching complete it."""

    meta = {"collection": "lectures"}
    title = StringField(required=True)
    duration = IntField(min_value=0)


class Training(Document):
    """A course: its lessons in order, its instructor, who is enrolled."""

    meta = {"collection": "courses"}
    title = StringField(required=True)
    instructor = ReferenceField(Account)
    lectures = ListField(ReferenceField(Lesson))
    enrolled_students = ListField(ReferenceField(Account), db_field="enrolledStudents")
