"""Unit rules of the kept figures: the arithmetic of tally.py and the windows of windows.py."""
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId
from pymongo.errors import ExecutionTimeout

from progress_service.progress import tally, windows


def counts_of(records, total):
    """The figures of a list of bits, computed one record at a time from nothing."""
    figures = tally.empty_figures([ObjectId() for _ in range(total)])
    for bits in records:
        for path, change in tally.record_paths(bits).items():
            name, _, index = path.partition(".")
            if index:
                figures[name][int(index)] += change
            else:
                figures[name] += change
    return figures


def apply(figures, paths):
    """$inc paths applied to a figures dict."""
    for path, change in paths.items():
        name, _, index = path.partition(".")
        if index:
            figures[name][int(index)] += change
        else:
            figures[name] += change


def test_changes_keep_the_counts_those_of_the_records():
    """Any sequence of changes, additions and removals leaves the counts equal to those of
    the records as they end, counted from nothing."""
    rng = random.Random(15)
    total = 9
    records = [rng.getrandbits(total) for _ in range(30)]
    figures = counts_of(records, total)
    for _ in range(500):
        roll = rng.random()
        if roll < 0.2:
            records.append(rng.getrandbits(total))
            apply(figures, tally.record_paths(records[-1]))
        elif roll < 0.3 and records:
            apply(figures, tally.record_paths(records.pop(rng.randrange(len(records))), -1))
        elif records:
            index = rng.randrange(len(records))
            after = records[index] ^ (1 << rng.randrange(total))
            apply(figures, tally.change_paths(records[index], after))
            records[index] = after
    assert figures == counts_of(records, total)


@pytest.mark.parametrize("total", [0, 1, 3, 8, 40, 200])
def test_the_summary_numbers_follow_the_rule(total):
    """completed, the percentage sum and the status counts, from the histogram alone."""
    rng = random.Random(total)
    records = [rng.getrandbits(total) if total else 0 for _ in range(50)] + [(1 << total) - 1]
    figures = counts_of(records, total)
    done = [bin(bits).count("1") for bits in records]
    assert tally.completed_count(figures) == (sum(1 for n in done if n == total) if total else 0)
    assert tally.percentage_sum(figures) == sum((200 * n + total) // (2 * total) if total else 0 for n in done)
    statuses = Counter(tally.status(n, total) for n in done)
    for wanted in tally.STATUSES:
        assert tally.count_with_status(figures, wanted) == statuses[wanted], wanted
    assert tally.count_with_status(figures, None) == len(records)


def test_contributions_are_stored_canonically():
    """Equal bits are equal bytes (no trailing zero byte), and read back the same."""
    for bits in (0, 1, 255, 256, (1 << 999) | 1):
        assert tally.decode(tally.encode(bits)) == bits
        assert not tally.encode(bits).endswith(b"\0")


def test_a_damaged_figures_document_is_told_apart():
    """Each kind of damage is named; sound figures have no problem."""
    lectures = [ObjectId() for _ in range(3)]
    sound = {"lectures": lectures, "h": tally.list_hash(lectures), **counts_of([0b011, 0b111, 0b001], 3)}
    assert tally.problem(sound) is None
    damaged = {
        "a lecture list edited by hand": {"lectures": lectures[:2]},
        "a per-lecture count off by one": {"per": [sound["per"][0] + 1, *sound["per"][1:]]},
        "a histogram moved": {"hist": [1, *sound["hist"][1:]]},
        "a negative count": {"per": [-1, *sound["per"][1:]]},
        "counts lost": {"hist": None},
        "a count that is not an integer": {"students": 3.0},
    }
    for label, change in damaged.items():
        assert tally.problem({**sound, **change}) is not None, label


TIMES = [datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=n * n) for n in range(300)]


@pytest.mark.parametrize("forward", [True, False])
def test_windows_read_everything_once_however_dense(forward):
    """Windows of time cover [start, stop) exactly once, growing over empty stretches and,
    read again from where they were, smaller when one is too slow to read (here: more than
    40 items, which the server refuses as over its time)."""
    asked = []

    def find(low, high):
        found = [moment for moment in TIMES if low <= moment < high]
        asked.append(len(found))
        if len(found) > 40:
            raise ExecutionTimeout("operation exceeded time limit", 50)
        return found

    start, stop = TIMES[0] - timedelta(days=3), TIMES[-1] + timedelta(days=3)
    if not forward:
        start, stop = stop, start
    seen = [moment for found, _edge, _span in windows.every_window(find, start, stop, timedelta(hours=1))
            for moment in found]
    assert sorted(seen) == TIMES and len(seen) == len(set(seen))
    assert max(asked) > 40 and len(asked) < 150
    whole = abs(stop - start)
    with pytest.raises(windows.WindowTooLarge) as raised:
        for _found, _edge, _span in windows.windows(find, start, stop, whole):
            pass
    assert (raised.value.edge, raised.value.span) == (start, whole / 4)
