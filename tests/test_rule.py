"""The completion rule (contract section 2) as a unit: formula, current lectures, empty course."""
import random
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from bson import ObjectId

from progress_service.progress.catalog import CourseInfo
from progress_service.progress.lectures import LectureList
from progress_service.progress.models import ProgressServiceRecord
from progress_service.progress.rule import completion_percentage, completion_state
from progress_service.progress.present import present
from progress_service.progress.store import apply_rule, conditional_update


def entry(lecture, done=False, **fields):
    """A stored lecture entry as Mongoose writes it."""
    return {"_id": ObjectId(), "lecture": lecture, "isCompleted": done, **fields}


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
    entries = [entry(ObjectId(), True)]
    assert completion_state(entries, ()) == (0, False)


def test_only_current_lectures_count():
    """Entries of removed lectures are ignored; lectures without an entry count as not done."""
    a, b, removed, new = (ObjectId() for _ in range(4))
    entries = [entry(a, True),
               entry(removed, True),
               entry(b, True)]
    assert completion_state(entries, (a, b)) == (100, True)
    assert completion_state(entries, (a, b, new)) == (67, False)


def test_first_entry_of_a_lecture_wins():
    """As Mongoose's array find: a duplicated entry does not count twice or override."""
    a, b = ObjectId(), ObjectId()
    entries = [entry(a, False), entry(a, True)]
    assert completion_state(entries, (a, b)) == (0, False)


def test_duplicate_lecture_in_course_counts_once():
    """A course listing a lecture twice has one lecture there, not two."""
    a, b = ObjectId(), ObjectId()
    entries = [entry(a, True)]
    assert completion_state(entries, (a, a, b)) == (50, False)


def test_unreadable_and_flagless_entries_count_as_not_completed():
    """A null left in the list by a migration is skipped; a missing or null flag is false."""
    a, b = ObjectId(), ObjectId()
    sons = [None, {"lecture": a}, {"lecture": b, "isCompleted": None}]
    assert completion_state(sons, (a, b)) == (0, False)


def test_the_answer_applies_the_same_rule_as_the_save():
    """present() and completion_state agree on random records, courses and edits of both."""
    rng = random.Random(7)
    for _ in range(300):
        lectures = [ObjectId() for _ in range(rng.randint(0, 12))]
        pool = lectures + [ObjectId() for _ in range(3)]  # some entries are of removed lectures
        sons = [entry(rng.choice(pool), rng.random() < 0.5) for _ in range(rng.randint(0, 15))] if pool else []
        current = rng.sample(lectures, rng.randint(0, len(lectures)))
        shown = present({"_id": ObjectId(), "lectureProgress": sons}, CourseInfo(ObjectId(), lecture_ids=tuple(current)),
                        None, ObjectId())
        assert (shown["completionPercentage"], shown["isCompleted"]) == completion_state(sons, current)
        assert [row["lecture"] for row in shown["lectureProgress"]] == [str(x) for x in dict.fromkeys(current)]


# --- the record, its lecture list and the pre_save rule --------------------------------------

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def stored(lectures, done=(), **fields):
    """A raw stored record with one entry per lecture."""
    return {"_id": ObjectId(), "user": ObjectId(), "course": ObjectId(), "isCompleted": False,
            "completionPercentage": 0, "__v": 3, "updatedAt": NOW - timedelta(minutes=5),
            "lectureProgress": [entry(lecture, lecture in done, extra="kept") for lecture in lectures], **fields}


def test_the_rule_runs_as_the_pre_save_signal_and_needs_the_catalogs_lectures():
    """Sending pre_save recomputes; without the course's lectures it refuses to guess."""
    a, b = ObjectId(), ObjectId()
    record = ProgressServiceRecord.from_stored(stored([a, b], done=[a]))
    with pytest.raises(ValueError, match="for_course"):
        apply_rule(record)
    record.for_course((a, b))
    record.updated_at = NOW
    apply_rule(record)
    assert (record.completion_percentage, record.is_completed, record.completed_at) == (50, False, None)
    record.lecture_progress[1].is_completed = True
    apply_rule(record)
    assert (record.completion_percentage, record.is_completed, record.completed_at) == (100, True, NOW)


def test_a_write_sends_only_what_changed_and_appends_at_the_next_index():
    """Changed keys by path, a new lecture's entry at index n, $inc __v, the read __v and updatedAt as condition."""
    a, b, new = ObjectId(), ObjectId(), ObjectId()
    raw = stored([a, b])
    record = ProgressServiceRecord.from_stored(raw).for_course((a, b, new))
    indexes = record.lecture_progress.reconcile((a, b, new))
    record.lecture_progress.set(indexes[b], "isCompleted", True)
    record.lecture_progress.set(indexes[a], "isCompleted", False)  # unchanged: not sent
    record.last_accessed = record.updated_at = NOW
    apply_rule(record)
    condition, update = conditional_update(record)
    assert condition == {"_id": raw["_id"], "user": raw["user"], "course": raw["course"], "__v": 3,
                         "updatedAt": raw["updatedAt"]}
    assert update["$inc"] == {"__v": 1} and record.version == 4
    sets = update["$set"]
    assert sets["lectureProgress.1.isCompleted"] is True
    assert sets["lectureProgress.2"]["lecture"] == new and sets["lectureProgress.2"]["isCompleted"] is False
    assert "lectureProgress" not in sets and not any(key.startswith("lectureProgress.0") for key in sets)
    assert (sets["completionPercentage"], sets["isCompleted"], sets["updatedAt"]) == (33, False, NOW)
    assert raw["lectureProgress"][0]["extra"] == "kept"


def test_a_write_that_changes_most_entries_sends_the_list_as_read_with_its_changes():
    """3 of 4 stored entries changed (as complete does): one `lectureProgress` path holding every
    stored entry (its _id, unknown keys and a removed lecture's entry kept) and the appended
    one, under the same condition; no element path."""
    a, b, c, removed, new = (ObjectId() for _ in range(5))
    raw = stored([a, removed, b, c], done=[a])
    entry_ids = [e["_id"] for e in raw["lectureProgress"]]
    record = ProgressServiceRecord.from_stored(raw).for_course((a, b, c, new))
    indexes = record.lecture_progress.reconcile((a, b, c, new))
    for lecture in (a, b, c, new):
        record.lecture_progress.set(indexes[lecture], "isCompleted", True)
    record.lecture_progress.set(indexes[removed], "watchTime", 3)
    record.last_accessed = record.updated_at = NOW
    apply_rule(record)
    condition, update = conditional_update(record)
    assert condition == {"_id": raw["_id"], "user": raw["user"], "course": raw["course"], "__v": 3,
                         "updatedAt": raw["updatedAt"]}
    sets = update["$set"]
    assert not any(key.startswith("lectureProgress.") for key in sets)
    written = sets["lectureProgress"]
    assert [e["lecture"] for e in written] == [a, removed, b, c, new]
    assert [e["_id"] for e in written[:4]] == entry_ids
    assert all(e["extra"] == "kept" for e in written[:4])
    assert [e["isCompleted"] for e in written] == [True, False, True, True, True]
    assert written[1]["watchTime"] == 3
    assert (sets["completionPercentage"], sets["isCompleted"], update["$inc"]) == (100, True, {"__v": 1})


def test_a_write_that_changes_half_of_the_entries_or_fewer_sends_their_paths():
    """2 of 4 stored entries changed: their paths only, never the list."""
    lectures = [ObjectId() for _ in range(4)]
    raw = stored(lectures)
    record = ProgressServiceRecord.from_stored(raw).for_course(lectures)
    indexes = record.lecture_progress.reconcile(lectures)
    record.lecture_progress.set(indexes[lectures[0]], "isCompleted", True)
    record.lecture_progress.set(indexes[lectures[3]], "isCompleted", True)
    record.updated_at = NOW
    apply_rule(record)
    _, update = conditional_update(record)
    sets = update["$set"]
    assert "lectureProgress" not in sets
    assert sets["lectureProgress.0.isCompleted"] is True and sets["lectureProgress.3.isCompleted"] is True
    assert sorted(key for key in sets if key.startswith("lectureProgress.")) == \
        ["lectureProgress.0.isCompleted", "lectureProgress.3.isCompleted"]


@pytest.mark.parametrize("shape", [{"__v": None}, {"__v": "7"}, {}])
def test_a_record_without_a_numeric_version_gets_one(shape):
    """No __v, null or a string: the condition matches it as stored and the write sets __v 1."""
    a = ObjectId()
    raw = stored([a])
    raw.pop("__v")
    raw.update(shape)
    record = ProgressServiceRecord.from_stored(raw).for_course((a,))
    record.lecture_progress.reconcile((a,))
    record.updated_at = NOW
    apply_rule(record)
    condition, update = conditional_update(record)
    assert condition["__v"] == shape.get("__v") and "$inc" not in update
    assert update["$set"]["__v"] == 1


@pytest.mark.parametrize("value", [None, "missing", {"not": "a list"}])
def test_a_record_without_a_lecture_list_gets_a_whole_one(value):
    """Nothing stored to preserve: the list is set whole (never an object of indexes)."""
    a, b = ObjectId(), ObjectId()
    raw = stored([])
    if value == "missing":
        raw.pop("lectureProgress")
    else:
        raw["lectureProgress"] = value
    record = ProgressServiceRecord.from_stored(raw).for_course((a, b))
    indexes = record.lecture_progress.reconcile((a, b))
    record.lecture_progress.set(indexes[a], "isCompleted", True)
    record.updated_at = NOW
    apply_rule(record)
    _, update = conditional_update(record)
    assert [(e["lecture"], e["isCompleted"]) for e in update["$set"]["lectureProgress"]] == [(a, True), (b, False)]
    assert not any(key.startswith("lectureProgress.") for key in update["$set"])


def test_setting_an_equal_value_is_not_a_change_but_a_flag_of_another_type_is():
    """0 and 0.0 are one watchTime; a stored 1 is rewritten as true."""
    lectures = LectureList([{"lecture": ObjectId(), "watchTime": 0, "isCompleted": 1}], 1)
    lectures.set(0, "watchTime", 0.0)
    assert lectures.changed == {}
    lectures.set(0, "isCompleted", True)
    assert lectures.changed == {0: {"isCompleted"}}
