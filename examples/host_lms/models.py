"""The host LMS's own documents: its schema, not the original Node app's.

Accounts live in `accounts`, courses in `catalog_courses` with their lectures embedded as
`course_lectures`; there is no `lectures` collection. The progress feature reaches them only
through `LmsCatalog` (catalog.py).
"""
from bson import ObjectId
from mongoengine import (
    Document,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    IntField,
    ObjectIdField,
    StringField,
)

ALIAS = "lms"


class User(Document):
    """A learner or a teacher; the password is stored hashed."""

    meta = {"collection": "accounts", "db_alias": ALIAS}
    full_name = StringField(required=True)
    email = StringField(required=True, unique=True)
    password_hash = StringField(required=True)
    role = StringField(default="student")
    photo = StringField()


class Lesson(EmbeddedDocument):
    """A lecture, embedded in its course (this host has no lectures collection)."""

    lesson_id = ObjectIdField(db_field="_id", default=ObjectId)
    title = StringField(required=True)
    minutes = IntField(default=0)


class Course(Document):
    """A course with its lectures in teaching order."""

    meta = {"collection": "catalog_courses", "db_alias": ALIAS}
    name = StringField(required=True)
    cover = StringField()
    teacher = ObjectIdField()
    course_lectures = EmbeddedDocumentListField(Lesson)
