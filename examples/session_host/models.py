"""The LMS's documents (plain MongoEngine) in the original LMS's collections and field names, so
course progress reads them with its default catalog; members sign in through Flask-Login.

The class names are this example's own: MongoEngine's document registry is global and keyed by
class name, and the other examples (loaded in the same test process) have theirs.
"""
from flask_login import UserMixin
from mongoengine import Document, EmailField, IntField, ListField, ReferenceField, StringField
from werkzeug.security import check_password_hash, generate_password_hash


class Member(UserMixin, Document):
    """A student, an instructor or an admin. UserMixin gives Flask-Login `get_id()`: str(id)."""

    meta = {"collection": "users"}
    name = StringField(required=True)
    email = EmailField(required=True, unique=True)
    password = StringField(required=True)
    role = StringField(choices=("student", "instructor", "admin"), default="student")

    @classmethod
    def register(cls, name, email, password, role="student"):
        """A new member, stored, with the password hashed."""
        return cls(name=name, email=email, password=generate_password_hash(password), role=role).save()

    def check_password(self, password):
        """Whether `password` is this member's."""
        return check_password_hash(self.password, password)


class Unit(Document):
    """A lecture of a program; `duration` in seconds."""

    meta = {"collection": "lectures"}
    title = StringField(required=True)
    duration = IntField(min_value=0)


class Program(Document):
    """A course: its units in order, its instructor, who is enrolled."""

    meta = {"collection": "courses"}
    title = StringField(required=True)
    instructor = ReferenceField(Member)
    lectures = ListField(ReferenceField(Unit))
    enrolled_students = ListField(ReferenceField(Member), db_field="enrolledStudents")
