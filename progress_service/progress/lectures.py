"""A record's lecture list: the stored entries as read, and what one write changes in them."""
from collections.abc import Sequence

from mongoengine.base import BaseField

from .rule import as_utc, completion_state, entry_done, is_entry, new_entry, unique


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
            if son.get("lecture") is None:
                self.error("every lecture entry needs a lecture id")
            watch_time = son.get("watchTime")
            if watch_time is not None and not (isinstance(watch_time, (int, float)) and watch_time >= 0):
                self.error("watchTime must be a number >= 0")
