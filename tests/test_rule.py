"""The completion rule (contract section 2) as a unit: formula, current lectures, empty course."""
from datetime import datetime, timezone
from fractions import Fraction

import pytest
from bson import ObjectId
from mongoengine import EmbeddedDocument

from progress_service.progress.models import LectureProgress, completion_percentage, completion_state


@pytest.mark.parametrize("completed,total,expected", [
    (1, 8, 13), (2, 3, 67), (23, 40, 58), (1, 3, 33), (0, 5, 0), (5, 5, 100), (199, 200, 100),
    (1, 200, 1), (1, 400, 0),
])
def test_percentage_is_exact_half_up(completed, total, expected):
    """The contract's worked examples, including the ones Math.round gets wrong."""
    assert completion_percentage(completed, total) == expected


def test_percentage_matches_exact_arithmetic_up_to_200_lectures():
    """Exhaustively: floor(100*c/t + 1/2) computed with fractions, no floating point."""
    for total in range(1, 201):
        for completed in range(total + 1):
            exact = Fraction(100 * completed, total) + Fraction(1, 2)
            assert completion_percentage(completed, total) == exact.numerator // exact.denominator


def test_empty_course_is_zero_and_never_complete():
    """No lectures: 0 and not completed, whatever the stored entries say."""
    entries = [LectureProgress(lecture=ObjectId(), is_completed=True)]
    assert completion_state(entries, ()) == (0, False)


def test_only_current_lectures_count():
    """Entries of removed lectures are ignored; lectures without an entry count as not done."""
    a, b, removed, new = (ObjectId() for _ in range(4))
    entries = [LectureProgress(lecture=a, is_completed=True),
               LectureProgress(lecture=removed, is_completed=True),
               LectureProgress(lecture=b, is_completed=True)]
    assert completion_state(entries, (a, b)) == (100, True)
    assert completion_state(entries, (a, b, new)) == (67, False)


def test_first_entry_of_a_lecture_wins():
    """As Mongoose's array find: a duplicated entry does not count twice or override."""
    a, b = ObjectId(), ObjectId()
    entries = [LectureProgress(lecture=a, is_completed=False), LectureProgress(lecture=a, is_completed=True)]
    assert completion_state(entries, (a, b)) == (0, False)


def test_duplicate_lecture_in_course_counts_once():
    """A course listing a lecture twice has one lecture there, not two."""
    a, b = ObjectId(), ObjectId()
    entries = [LectureProgress(lecture=a, is_completed=True)]
    assert completion_state(entries, (a, a, b)) == (50, False)


@pytest.mark.parametrize("son", [
    {"_id": ObjectId(), "lecture": ObjectId(), "isCompleted": True, "watchTime": 12.5,
     "lastWatched": datetime(2026, 11, 26, 19, 30, tzinfo=timezone.utc)},
    {"_id": ObjectId(), "lecture": ObjectId(), "isCompleted": False, "watchTime": 3,
     "lastWatched": datetime(2026, 11, 26, 19, 30), "note": "written by Mongoose"},
    {"_id": ObjectId(), "lecture": ObjectId()},
    {"_id": ObjectId(), "lecture": ObjectId(), "watchTime": None, "lastWatched": None},
])
def test_fast_entry_loading_matches_mongoengine(son):
    """LectureProgress._from_son builds the same entry as MongoEngine's generic loader."""
    generic = EmbeddedDocument._from_son.__func__(LectureProgress, dict(son))
    fast = LectureProgress._from_son(dict(son))
    assert fast.to_mongo() == generic.to_mongo()
    assert fast.last_watched == (generic.last_watched and generic.last_watched.replace(tzinfo=timezone.utc))
    assert fast._changed_fields == [] and fast._initialised and fast._instance is None
    fast.is_completed = not fast.is_completed
    assert fast._changed_fields == ["isCompleted"], "change tracking still works"


def test_fast_entry_loading_gives_an_id_to_entries_without_one():
    """As MongoEngine's default does: an entry stored without _id gets one."""
    entry = LectureProgress._from_son({"lecture": ObjectId(), "isCompleted": True})
    assert isinstance(entry.entry_id, ObjectId) and entry.is_completed is True
