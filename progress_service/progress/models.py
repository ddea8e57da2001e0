"""The progress record with its save rule, and the LMS's own collections (read-only).

Field names in the database are the original Mongoose app's camelCase ones, so both
services can run against one database.
"""
from datetime import datetime, timezone
from typing import NamedTuple

from bson import ObjectId
from mongoengine import (
    BooleanField,
    DateTimeField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    FloatField,
    IntField,
    ListField,
    ObjectIdField,
    StringField,
    signals,
)


def now_ms():
    """The current UTC time, cut to the millisecond precision MongoDB stores."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def completion_percentage(completed, total):
    """The rule of contract section 2: exact integer percentage, half rounded up."""
    if total <= 0:
        return 0
    return (200 * completed + total) // (2 * total)


def first_entries(entries):
    """Each lecture's entry: the first one, as Mongoose's array `find` returns it."""
    found = {}
    for entry in entries:
        found.setdefault(entry.lecture, entry)
    return found


def completion_state(entries, lecture_ids):
    """(percentage, isCompleted) of stored entries over the course's current lectures.

    Only the course's current lectures count; an entry of a removed lecture is ignored,
    a lecture without an entry counts as not completed. The first entry of a lecture
    wins. `entries` may be LectureProgress documents or LectureState views.
    """
    known = first_entries(entries)
    current = dict.fromkeys(lecture_ids)
    completed = sum(1 for lecture in current if lecture in known and known[lecture].is_completed)
    percentage = completion_percentage(completed, len(current))
    return percentage, percentage == 100


class LectureState(NamedTuple):
    """A read-only lecture entry, for answers that store nothing (GET and the lists)."""

    lecture: ObjectId
    is_completed: bool = False
    watch_time: float = 0
    last_watched: datetime = None

    @classmethod
    def from_son(cls, son):
        """A stored entry's values, read the way MongoEngine's fields would read them.

        A missing or null flag or watchTime takes the field's default; times are UTC.
        """
        watch_time = son.get("watchTime")
        return cls(son.get("lecture"), bool(son.get("isCompleted", False)),
                   float(watch_time) if watch_time is not None else 0, _utc(son.get("lastWatched")))


def _utc(value):
    """Naive datetimes from the driver are UTC (a host connection may not be tz_aware)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class ProgressSnapshot(NamedTuple):
    """A stored record as read, without MongoEngine's per-entry documents.

    Reads build this straight from the raw document: a 200-lecture record costs two
    hundred tuples instead of two hundred tracked EmbeddedDocuments.
    """

    id: ObjectId
    user: ObjectId
    course: ObjectId
    lecture_progress: list
    last_accessed: datetime = None
    created_at: datetime = None
    updated_at: datetime = None
    completed_at: datetime = None

    @classmethod
    def from_son(cls, raw):
        """The snapshot of a raw `courseprogresses` document."""
        entries = [LectureState.from_son(entry) for entry in raw.get("lectureProgress") or ()]
        return cls(raw["_id"], raw.get("user"), raw.get("course"), entries, _utc(raw.get("lastAccessed")),
                   _utc(raw.get("createdAt")), _utc(raw.get("updatedAt")), _utc(raw.get("completedAt")))

    def entries_by_lecture(self):
        """Each lecture's (first) entry."""
        return first_entries(self.lecture_progress)


class UtcDateTimeField(DateTimeField):
    """A time read back as aware UTC, whether or not the connection was opened tz_aware.

    A host LMS may share a connection without tz_aware=True; its naive values could then
    not be compared with the aware ones this service writes.
    """

    def to_python(self, value):
        """Naive values from the driver are UTC: say so."""
        return _utc(super().to_python(value))


class ReadOnlyDocument(Document):
    """A collection the host LMS owns: this service reads it and never writes it."""

    meta = {"abstract": True, "strict": False, "auto_create_index": False}

    def save(self, *args, **kwargs):
        """Refuse: the LMS owns this collection."""
        raise TypeError(f"{type(self).__name__} is read-only in the progress service")

    def delete(self, *args, **kwargs):
        """Refuse: the LMS owns this collection."""
        raise TypeError(f"{type(self).__name__} is read-only in the progress service")


class User(ReadOnlyDocument):
    """An LMS user. `password` exists in the collection and is never loaded here."""

    meta = {"collection": "users"}
    name = StringField()
    email = StringField()
    role = StringField()
    avatar = StringField()


class Lecture(ReadOnlyDocument):
    """An LMS lecture."""

    meta = {"collection": "lectures"}
    title = StringField()
    duration = FloatField()
    order = IntField()
    is_preview = BooleanField(db_field="isPreview")
    video_url = StringField(db_field="videoUrl")


class Course(ReadOnlyDocument):
    """An LMS course: its `lectures` list is the order progress is shown in."""

    meta = {"collection": "courses"}
    title = StringField()
    subtitle = StringField()
    description = StringField()
    thumbnail = StringField()
    instructor = ObjectIdField()
    lectures = ListField(ObjectIdField())
    enrolled_students = ListField(ObjectIdField(), db_field="enrolledStudents")


class LectureProgress(EmbeddedDocument):
    """One lecture's state inside a progress record."""

    # strict=False: entries written by Mongoose carry fields we do not declare.
    meta = {"strict": False}
    # Mongoose gives every array entry an _id; new entries get one too.
    entry_id = ObjectIdField(db_field="_id", default=ObjectId)
    lecture = ObjectIdField(required=True)
    is_completed = BooleanField(db_field="isCompleted", default=False)
    watch_time = FloatField(db_field="watchTime", default=0, min_value=0)
    last_watched = UtcDateTimeField(db_field="lastWatched", null=True)

    @classmethod
    def _from_son(cls, son, _auto_dereference=True, created=False):
        """An entry from stored BSON, without MongoEngine's per-field constructor.

        A write loads every entry of the record; MongoEngine's generic path (field lookups,
        default assignment, change tracking of each setattr) was a quarter of a PATCH on a
        200-lecture course. This sets the same state directly (MongoEngine is pinned, and
        the tests load and save entries written by the original app through it).
        """
        entry = cls.__new__(cls)
        data = {key: value for key, value in son.items() if key not in cls._reverse_db_field_map}
        data["entry_id"] = son["_id"] if "_id" in son else ObjectId()
        data.update(LectureState.from_son(son)._asdict())
        for name, value in (("_data", data), ("_dynamic_fields", {}), ("_cls", cls._class_name),
                            ("_changed_fields", []), ("_instance", None), ("_initialised", True),
                            ("_created", created)):
            object.__setattr__(entry, name, value)
        return entry

    def to_mongo(self, *args, **kwargs):
        """Declared fields plus the ones Mongoose wrote that we don't declare.

        MongoEngine keeps undeclared fields of a non-strict document but leaves them out of
        to_mongo(); when the whole list is rewritten (an entry appended) they would be lost.
        """
        son = super().to_mongo(*args, **kwargs)
        for key, value in self._data.items():
            if key not in self._fields and key not in son:
                son[key] = value
        return son


# Times that are cleared to null, never removed from the stored document.
NULL_NOT_UNSET = frozenset({"lastWatched", "completedAt"})


class CourseProgress(Document):
    """One student's progress in one course; unique on (user, course)."""

    meta = {
        "collection": "courseprogresses",
        "strict": False,
        # Indexes are created on first use or by `flask progress ensure-indexes`, never at
        # import: importing the package must open no socket.
        "auto_create_index": False,
        # save() then filters by user and course too, so a sharded cluster with this shard
        # key routes every write of one record to one shard.
        "shard_key": ("user", "course"),
        "indexes": [
            # Same name and keys as Mongoose's index, so creating it again is a no-op.
            {"fields": ["user", "course"], "unique": True, "name": "user_1_course_1"},
            # The dashboard: one user's records, newest lastAccessed first, ties newest _id.
            {"fields": ["user", "-last_accessed", "-id"], "name": "user_1_lastAccessed_-1__id_-1"},
            # Instructor views: one course's records, oldest first.
            {"fields": ["course", "created_at", "id"], "name": "course_1_createdAt_1__id_1"},
        ],
    }
    user = ObjectIdField(required=True)
    course = ObjectIdField(required=True)
    is_completed = BooleanField(db_field="isCompleted", default=False)
    completion_percentage = IntField(db_field="completionPercentage", default=0, min_value=0, max_value=100)
    lecture_progress = EmbeddedDocumentListField(LectureProgress, db_field="lectureProgress")
    completed_at = UtcDateTimeField(db_field="completedAt", null=True)
    last_accessed = UtcDateTimeField(db_field="lastAccessed")
    created_at = UtcDateTimeField(db_field="createdAt")
    updated_at = UtcDateTimeField(db_field="updatedAt")
    version = IntField(db_field="__v", default=0)

    def save(self, *args, **kwargs):
        """MongoEngine's save, serialising the document once instead of twice.

        save() calls to_mongo() for the document and again inside _delta(), with nothing
        changing in between; on a 200-lecture record each call builds 200 entries.
        """
        self._son_memo = {}
        try:
            return super().save(*args, **kwargs)
        finally:
            self._son_memo = None

    def to_mongo(self, *args, **kwargs):
        """to_mongo(), memoised for the full document while save() runs."""
        memo = getattr(self, "_son_memo", None)
        if args or kwargs or memo is None:
            return super().to_mongo(*args, **kwargs)
        if "son" not in memo:
            memo["son"] = super().to_mongo()
        return memo["son"]

    def _get_update_doc(self):
        """MongoEngine's update, with cleared times stored as null rather than removed.

        MongoEngine turns a field set to its default None into `$unset`; the original LMS
        stores null (reset: "lastWatched is cleared to null"), so we keep the key.
        """
        update = super()._get_update_doc()
        removals = update.get("$unset", {})
        for path in [p for p in removals if p.rsplit(".", 1)[-1] in NULL_NOT_UNSET]:
            update.setdefault("$set", {})[path] = None
            del removals[path]
        if "$unset" in update and not removals:
            del update["$unset"]
        return update

    def _clear_changed_fields(self):
        """After a save: forget what changed, in one pass over the entries.

        MongoEngine's own walks the whole lectureProgress list once per changed path, so a
        write touching every entry of a 1,000-lecture record (complete, reset) spent ~15 s
        here; the record's only nested documents are its entries, so this is equivalent.
        """
        for entry in self.lecture_progress:
            entry._changed_fields = []
        self._changed_fields = []

    def for_course(self, lecture_ids):
        """Tell the save rule which lectures the course has now; returns self."""
        self._course_lectures = tuple(lecture_ids)
        return self

    def entries_by_lecture(self):
        """The stored entry of each lecture (the first one, as Mongoose finds it)."""
        return first_entries(self.lecture_progress)

    def reconcile(self, lecture_ids):
        """Append an entry for each current lecture that has none; never reorder or drop.

        Returns each lecture's entry, so callers need not walk the list again.
        """
        known = self.entries_by_lecture()
        for lecture in dict.fromkeys(lecture_ids):
            if lecture not in known:
                known[lecture] = LectureProgress(lecture=lecture)
                self.lecture_progress.append(known[lecture])
        return known

    @classmethod
    def apply_save_rule(cls, sender, document, **kwargs):
        """pre_save: reconcile, recompute completion and keep completedAt honest."""
        lecture_ids = getattr(document, "_course_lectures", None)
        if lecture_ids is None:
            course = Course.objects(id=document.course).only("lectures").first()
            lecture_ids = tuple(course.lectures) if course else ()
        document.reconcile(lecture_ids)
        percentage, done = completion_state(document.lecture_progress, lecture_ids)
        document.completion_percentage = percentage
        document.is_completed = done
        if not done:
            document.completed_at = None
        elif document.completed_at is None:
            document.completed_at = document.updated_at or now_ms()


signals.pre_save.connect(CourseProgress.apply_save_rule, sender=CourseProgress)
