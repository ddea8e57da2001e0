"""The completion rule (contract section 2) as a unit: formula, current lectures, empty course."""
from fractions import Fraction

import pytest
from bson import ObjectId

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
