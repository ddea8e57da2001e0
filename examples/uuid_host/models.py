"""The LMS's documents: UUID ids, MongoEngine's collection names, and its view of progress records.

The collections are those MongoEngine would name after classes User, Course and Lecture; the
classes have names of their own because MongoEngine's document registry is global and keyed by
class name, and the other examples (loaded in the same test process) have a User and a Course.
"""
import uuid

from mongoengine import (
    BooleanField,
    Document,
    EmailField,
    IntField,
    ListField,
    ReferenceField,
    StringField,
    UUIDField,
)
from werkzeug.security import check_password_hash, generate_password_hash


class Person(Document):
    """A student, an instructor or an admin."""

    meta = {"collection": "user"}
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    name = StringField(required=True)
    email = EmailField(required=True, unique=True)
    password = StringField(required=True)
    role = StringField(choices=("student", "instructor", "admin"), default="student")

    @classmethod
    def register(cls, name, email, password, role="student"):
        """A new person, stored, with the password hashed."""
        return cls(name=name, email=email, password=generate_password_hash(password), role=role).save()

    def check_password(self, password):
        """Whether `password` is this person's."""
        return check_password_hash(self.password, password)


class Chapter(Document):
    """A lecture; `duration` in seconds."""

    meta = {"collection": "lecture"}
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    title = StringField(required=True)
    duration = IntField(min_value=0)


class Subject(Document):
    """A course: its chapters in order, its instructor, who is enrolled."""

    meta = {"collection": "course"}
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    title = StringField(required=True)
    instructor = ReferenceField(Person)
    lectures = ListField(ReferenceField(Chapter))
    enrolled_students = ListField(ReferenceField(Person), db_field="enrolledStudents")


class ProgressRecord(Document):
    """Course progress's records, read-only here: the LMS lists a person's progress with them."""

    meta = {"collection": "courseprogresses", "strict": False, "auto_create_index": False}
    user = ReferenceField(Person)
    course = ReferenceField(Subject)
    completion_percentage = IntField(db_field="completionPercentage")
    is_completed = BooleanField(db_field="isCompleted")
