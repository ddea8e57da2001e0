"""The LMS's documents: accounts, courses, lectures, and its view of the progress records.

Declared as flask-mongoengine apps usually are, on `db.Document` (its querysets add
`first_or_404` and `paginate`), with plain MongoEngine field classes: flask-mongoengine-3's
own fields take WTForms arguments (`validators` there means form validators), which this LMS
has no use for. References name their class ("User", "Course", "Lecture"), so the classes
may be declared in any order; MongoEngine resolves the names in its global registry, which
is why the progress extension declares no class under these names. No `db_alias`: the
connection is flask-mongoengine's, under MongoEngine's default alias.
"""
from mongoengine import (
    BooleanField,
    DateTimeField,
    EmailField,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    FloatField,
    IntField,
    ListField,
    ReferenceField,
    StringField,
)

from .extensions import db

ROLES = ("student", "instructor", "admin")


class User(db.Document):
    """An account: a student, an instructor or an admin; the password is stored hashed."""

    meta = {"collection": "accounts"}
    name = StringField(required=True)
    email = EmailField(required=True, unique=True)
    password_hash = StringField(required=True)
    role = StringField(choices=ROLES, default="student")
    avatar = StringField()


class Course(db.Document):
    """A course: its lectures in teaching order and the students enrolled in it."""

    meta = {"collection": "catalog_courses", "indexes": ["students"]}
    title = StringField(required=True)
    thumbnail = StringField()
    instructor = ReferenceField("User")
    lectures = ListField(ReferenceField("Lecture"))
    students = ListField(ReferenceField("User"))


class Lecture(db.Document):
    """A lecture of one course; `duration` in seconds lets watching it complete it."""

    meta = {"collection": "catalog_lectures"}
    course = ReferenceField("Course")
    title = StringField(required=True)
    duration = IntField(min_value=0)
    video_url = StringField()


class LectureProgress(EmbeddedDocument):
    """One lecture's entry in a progress record (entries carry more fields: kept, not read)."""

    meta = {"strict": False}
    lecture = ReferenceField("Lecture")
    is_completed = BooleanField(db_field="isCompleted", default=False)
    watch_time = FloatField(db_field="watchTime", default=0)
    last_watched = DateTimeField(db_field="lastWatched")


class CourseProgress(db.Document):
    """A student's progress in a course, for the admin page: the progress feature writes these.

    Read-only here: the progress feature owns the collection, its rule and its indexes, so
    this class declares no index and the LMS never saves one.
    """

    meta = {"collection": "courseprogresses", "strict": False, "auto_create_index": False}
    user = ReferenceField("User")
    course = ReferenceField("Course")
    is_completed = BooleanField(db_field="isCompleted", default=False)
    completion_percentage = IntField(db_field="completionPercentage", default=0)
    lecture_progress = EmbeddedDocumentListField(LectureProgress, db_field="lectureProgress")
    last_accessed = DateTimeField(db_field="lastAccessed")
