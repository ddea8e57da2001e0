"""The progress record, its lecture list and its save rule (a MongoEngine pre_save signal).

Field names in the database are the original Mongoose app's camelCase ones, so both apps
can run against one database. Only our own document is declared, under a name no host is
likely to give one of its classes (MongoEngine's document registry is global and keyed by
class name): the host's `User`, `Course`, `Lecture` and `CourseProgress` stay the host's.
The LMS's own collections are read through the catalog (catalog.py), never as Documents.
"""
from collections.abc import Sequence
from datetime import datetime, timezone

from bson import ObjectId
from mongoengine import BooleanField, DateTimeField, Document, IntField, ObjectIdField, signals
from mongoengine.base import BaseField


def now_ms():
    """The current UTC time, cut to the millisecond precision MongoDB stores."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value):
    """Naive datetimes from the driver are UTC (a host connection may not be tz_aware)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


# --- the rule (contract section 2) ---------------------------------------------------------

def completion_percentage(completed, total):
    """The exact integer percentage, half rounded up: (200*c + t) // (2*t); 0 for no lectures."""
    if total <= 0:
        return 0
    return (200 * completed + total) // (2 * total)


def is_entry(son):
    """A stored lecture entry we can read (a migration may have left nulls in the list)."""
    return isinstance(son, dict)


def entry_done(son):
    """The stored flag of an entry; missing or null is not completed."""
    return bool(son.get("isCompleted", False))


def first_entries(sons):
    """Each lecture's stored entry: the first one, as Mongoose's array `find` returns it."""
    found = {}
    for son in sons:
        if is_entry(son):
            found.setdefault(son.get("lecture"), son)
    return found


def unique(lecture_ids):
    """The lecture ids once each, in order (a dict: membership and order in one).

    A dict given is taken as already unique: a course's is computed once per request
    (CourseInfo.current), since hashing an ObjectId is a Python call and a 1,000-lecture
    course would otherwise pay for it again in every pass.
    """
    return lecture_ids if isinstance(lecture_ids, dict) else dict.fromkeys(lecture_ids)


def completion_state(sons, lecture_ids, known=None):
    """(percentage, isCompleted) of stored entries over the course's current lectures.

    Only the course's current lectures count; an entry of a removed lecture is ignored, a
    lecture without an entry counts as not completed, and the first entry of a lecture wins.
    `known`: the first entry of each lecture, when the caller has it already.
    """
    if known is None:
        known = first_entries(sons)
    current = unique(lecture_ids)
    completed = 0
    for lecture in current:
        son = known.get(lecture)
        if son is not None and entry_done(son):
            completed += 1
    percentage = completion_percentage(completed, len(current))
    return percentage, percentage == 100


def new_entry(lecture):
    """The entry of a lecture nobody has watched, as the original app stores it."""
    # Mongoose gives every array entry an _id; ours get one too.
    return {"_id": ObjectId(), "lecture": lecture, "isCompleted": False, "watchTime": 0.0, "lastWatched": None}


# --- the lecture list: stored entries, and what this write changed -------------------------

class LectureEntry:
    """One entry of a record's lecture list, by attribute (what signal receivers see)."""

    __slots__ = ("_list", "_index")

    def __init__(self, lectures, index):
        self._list, self._index = lectures, index

    @property
    def son(self):
        """The stored sub-document itself."""
        return self._list.sons[self._index]

    @property
    def lecture(self):
        """The lecture's id."""
        return self.son.get("lecture")

    @property
    def is_completed(self):
        """Whether the lecture is completed."""
        return entry_done(self.son)

    @is_completed.setter
    def is_completed(self, value):
        self._list.set(self._index, "isCompleted", bool(value))

    @property
    def watch_time(self):
        """Seconds watched (0 when never set)."""
        return self.son.get("watchTime") or 0

    @watch_time.setter
    def watch_time(self, value):
        self._list.set(self._index, "watchTime", float(value))

    @property
    def last_watched(self):
        """When it was last watched (UTC), or None."""
        return as_utc(self.son.get("lastWatched"))

    @last_watched.setter
    def last_watched(self, value):
        self._list.set(self._index, "lastWatched", value)


class LectureList(Sequence):
    """A record's `lectureProgress`: the stored sub-documents as read, plus this write's changes.

    It remembers how many entries were stored and which keys of which entry this write set,
    so the write sends only those (`lectureProgress.<i>.<key>`) and appends new entries at
    the next index: it never rewrites an entry another writer may have just changed.
    """

    def __init__(self, sons=None, stored_length=None):
        """`sons` as read; `stored_length` None when the record had no list at all."""
        self.sons = sons if sons is not None else []
        self.stored_length = stored_length
        self.changed = {}
        # The flag each entry had before this write first set it (for the events).
        self.flags_before = {}
        self._first = None
        self._reconciled_for = None

    @classmethod
    def from_stored(cls, value):
        """The list of a stored record (missing, null or not a list: empty, with no stored list)."""
        if isinstance(value, list):
            return cls(value, len(value))
        return cls()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [LectureEntry(self, i) for i in range(len(self.sons))[index]]
        if index < 0:
            index += len(self.sons)
        if not 0 <= index < len(self.sons):
            raise IndexError(index)
        return LectureEntry(self, index)

    def __len__(self):
        return len(self.sons)

    def __eq__(self, other):
        return isinstance(other, LectureList) and self.sons == other.sons

    def set(self, index, key, value):
        """Set one key of one entry, remembering it for the write."""
        son = self.sons[index]
        if key in son:
            stored = son[key]
            # Equal and of the same kind: 0 and 0.0 are one watchTime, but 1 is not `true`.
            if stored == value and isinstance(stored, bool) == isinstance(value, bool):
                return
        if key == "isCompleted" and index not in self.flags_before:
            self.flags_before[index] = entry_done(son)
        son[key] = value
        self.changed.setdefault(index, set()).add(key)

    def _index(self):
        """({lecture: index of its first entry}, {lecture: that entry}), built once per write."""
        if self._first is None:
            indexes, entries = {}, {}
            for index, son in enumerate(self.sons):
                if is_entry(son) and entries.setdefault(son.get("lecture"), son) is son:
                    indexes[son.get("lecture")] = index
            self._first = (indexes, entries)
        return self._first

    def first_indexes(self):
        """{lecture: index of its first entry}."""
        return self._index()[0]

    def first_entries(self):
        """{lecture: its first entry} (the entries themselves: they see later changes)."""
        return self._index()[1]

    def reconcile(self, lecture_ids):
        """Append an entry for each current lecture that has none; never reorder or drop.

        Returns {lecture: index of its entry} for every lecture that has one.
        """
        indexes, entries = self._index()
        if self._reconciled_for is lecture_ids:  # the save rule after the service: done already
            return indexes
        for lecture in unique(lecture_ids):
            if lecture not in indexes:
                indexes[lecture] = len(self.sons)
                entries[lecture] = new_entry(lecture)
                self.sons.append(entries[lecture])
        self._reconciled_for = lecture_ids
        return indexes

    def completion(self, lecture_ids):
        """(percentage, isCompleted) of this list over the course's current lectures (the rule)."""
        return completion_state(self.sons, lecture_ids, self.first_entries())

    def newly_completed(self, lecture_ids):
        """Current lectures whose (first) entry this write took from not completed to completed,
        in course order."""
        fresh = {index for index, was in self.flags_before.items() if not was and entry_done(self.sons[index])}
        if not fresh:
            return []
        indexes = self.first_indexes()
        return [lecture for lecture in unique(lecture_ids) if indexes.get(lecture) in fresh]

    def appended(self):
        """(index, entry) of the entries this write appends."""
        start = self.stored_length or 0
        return [(index, self.sons[index]) for index in range(start, len(self.sons))]


class LectureListField(BaseField):
    """`lectureProgress` as a LectureList: stored sub-documents kept as they are.

    Entries written by Mongoose carry an `_id` and maybe fields we do not know; they are
    kept untouched, and the write sends only what changed (see LectureList).
    """

    def to_python(self, value):
        """A LectureList from what was stored (or one already built)."""
        return value if isinstance(value, LectureList) else LectureList.from_stored(value)

    def to_mongo(self, value):
        """The stored form: the list of sub-documents."""
        return list(value.sons) if isinstance(value, LectureList) else value

    def validate(self, value):
        """Every entry names a lecture; watchTime, when set, is a number >= 0."""
        for son in value.sons:
            if not is_entry(son):
                continue
            if not isinstance(son.get("lecture"), ObjectId):
                self.error("every lecture entry needs a lecture id")
            watch_time = son.get("watchTime")
            if watch_time is not None and not (isinstance(watch_time, (int, float)) and watch_time >= 0):
                self.error("watchTime must be a number >= 0")


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


class ProgressServiceRecord(Document):
    """One student's progress in one course (collection `courseprogresses`), with its save rule.

    The pre_save signal below is the one place where completion is computed when a record is
    saved. store.py sends it and then writes only what changed, conditionally on what was
    read; the indexes are declared and created in database.py (INDEXES).
    """

    meta = {
        "collection": "courseprogresses",
        # Documents written by Mongoose carry fields we do not declare.
        "strict": False,
        # Never bound to a connection: each mount reads and writes through its own database.
        "auto_create_index": False,
    }
    user = ObjectIdField(required=True)
    course = ObjectIdField(required=True)
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
        """The record of a raw `courseprogresses` document."""
        values = {name: raw[key] for key, name in STORED_NAMES.items() if key in raw}
        values["lecture_progress"] = LectureList.from_stored(raw.get("lectureProgress"))
        record = cls(**values)
        record.read_state = (raw.get("__v"), raw.get("updatedAt"))
        return record

    @classmethod
    def new(cls, user_id, course_id, now):
        """A record not stored yet: no lecture completed."""
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
