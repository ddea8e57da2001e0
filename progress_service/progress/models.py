"""The progress record, its lecture list and its save rule (a MongoEngine pre_save signal).

Field names in the database are the original Mongoose app's camelCase ones, so both apps
can run against one database. Only our own document is declared, under a name no host is
likely to give one of its classes (MongoEngine's document registry is global and keyed by
class name): the host's `User`, `Course`, `Lecture` and `CourseProgress` stay the host's.
The LMS's own collections are read through the catalog (catalog.py), never as Documents.
"""
from bson import ObjectId
from mongoengine import BooleanField, DateTimeField, Document, IntField, signals
from mongoengine.base import BaseField

from . import stored
from .lectures import LectureList, LectureListField
from .rule import as_utc, now_ms, unique


class UtcDateTimeField(DateTimeField):
    """A time read back as aware UTC, whether or not the connection was opened tz_aware."""

    def to_python(self, value):
        """Naive values from the driver are UTC: say so."""
        return as_utc(super().to_python(value))


# The stored fields and their MongoEngine names (the record's own fields only).
STORED_NAMES = {
    "_id": "id", "user": "user", "course": "course", "isCompleted": "is_completed",
    "completionPercentage": "completion_percentage", "lectureProgress": "lecture_progress",
    "completedAt": "completed_at", "lastAccessed": "last_accessed", "createdAt": "created_at",
    "updatedAt": "updated_at", "__v": "version",
}


TIMES = ("completedAt", "lastAccessed", "createdAt", "updatedAt")
COMPUTED = ("isCompleted", "completionPercentage")
COLLECTION = "courseprogresses"


class ProgressServiceRecord(Document):
    """One student's progress in one course (collection `courseprogresses`), with its save rule.

    The pre_save signal below is the one place where completion is computed when a record is
    saved. store.py sends it and then writes only what changed, conditionally on what was
    read; the indexes are declared and created in database.py (INDEXES).
    """

    meta = {
        "collection": COLLECTION,
        # Documents written by Mongoose carry fields we do not declare.
        "strict": False,
        # Never bound to a connection: each mount reads and writes through its own database.
        "auto_create_index": False,
    }
    # The host's ids as its catalog parsed them (ObjectId, int, UUID, ...): stored as the host
    # stores them, so its own queries by id find our records (contract section 11).
    user = BaseField(required=True)
    course = BaseField(required=True)
    is_completed = BooleanField(db_field="isCompleted", default=False)
    completion_percentage = IntField(db_field="completionPercentage", default=0, min_value=0, max_value=100)
    lecture_progress = LectureListField(db_field="lectureProgress")
    completed_at = UtcDateTimeField(db_field="completedAt", null=True)
    last_accessed = UtcDateTimeField(db_field="lastAccessed")
    created_at = UtcDateTimeField(db_field="createdAt")
    updated_at = UtcDateTimeField(db_field="updatedAt")
    # As stored: a migrated record may have no __v, or null (its first write gives it one).
    version = BaseField(db_field="__v")

    @classmethod
    def from_stored(cls, raw):
        """The record of a raw `courseprogresses` document (a time that is not one: absent).

        The stored percentage and flag are not read: the save rule computes them anew (and
        an Infinity there would not even load into an IntField).
        """
        values = {name: raw[key] for key, name in STORED_NAMES.items() if key in raw and key not in COMPUTED}
        for key in TIMES:
            values[STORED_NAMES[key]] = stored.read(raw, key, stored.moment, COLLECTION)
        values["lecture_progress"] = LectureList.from_stored(raw.get("lectureProgress"))
        record = cls(**values)
        record.read_state = (raw.get("__v"), raw.get("updatedAt"))
        return record

    @classmethod
    def new(cls, user_id, course_id, now):
        """A record not stored yet: no lecture completed."""
        # The record's own _id is ours: an ObjectId, as Mongoose gives one.
        record = cls(id=ObjectId(), user=user_id, course=course_id, created_at=now, version=0,
                     lecture_progress=LectureList(stored_length=None))
        record.read_state = None
        return record

    @property
    def is_new(self):
        """True until the record is stored."""
        return self.read_state is None

    def for_course(self, lecture_ids):
        """Tell the save rule which lectures the course has now (from the mount's catalog)."""
        self.course_lectures = unique(lecture_ids)
        return self

    def to_stored(self):
        """The whole document, for the first insert."""
        return {
            "_id": self.id, "user": self.user, "course": self.course, "isCompleted": self.is_completed,
            "completionPercentage": self.completion_percentage, "lectureProgress": list(self.lecture_progress.sons),
            "completedAt": self.completed_at, "lastAccessed": self.last_accessed,
            "createdAt": self.created_at, "updatedAt": self.updated_at, "__v": self.version,
        }

    @classmethod
    def apply_save_rule(cls, sender, document, **kwargs):
        """pre_save: reconcile with the course's lectures, recompute completion, keep completedAt honest."""
        lecture_ids = getattr(document, "course_lectures", None)
        if lecture_ids is None:
            # The rule reads the course's lectures from the mount's catalog (a host's, maybe),
            # never from a collection of its own choosing: the caller must say them.
            raise ValueError("call record.for_course(lecture_ids) before saving a progress record")
        lectures = document.lecture_progress
        lectures.reconcile(lecture_ids)
        percentage, done = lectures.completion(lecture_ids)
        document.completion_percentage = percentage
        document.is_completed = done
        if not done:
            document.completed_at = None
        elif document.completed_at is None:
            document.completed_at = document.updated_at or now_ms()


signals.pre_save.connect(ProgressServiceRecord.apply_save_rule, sender=ProgressServiceRecord)
