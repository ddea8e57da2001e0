"""The arithmetic of the figures kept per course (contract section 15), as plain functions.

A record's *contribution* to its course's figures is the set of the course's current lectures
whose first stored entry is completed (the rule of contract section 2), kept as bits: bit i
is the i-th lecture of the list the figures were computed over. The course's figures are
the sums of its records' contributions:

- `students`: how many records;
- `hist[n]`: how many records have exactly n of the t lectures completed (0 <= n <= t);
- `per[i]`: how many records have lecture i completed.

From these the summary is exact without any record: `completed` is hist[t] (t > 0), and the
average percentage is the sum over n of hist[n] * percentage(n, t), divided by students.
Every change is a set of `$inc` paths (`students`, `hist.<n>`, `per.<i>`), so the database
applies it atomically to the one figures document.
"""
import hashlib
from collections import Counter

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

from .rule import completion_percentage, entry_done, first_entries, unique

NOT_STARTED, IN_PROGRESS, COMPLETED = "not_started", "in_progress", "completed"
# Lecture ids may be a host's UUIDs, which BSON encodes only with a representation named.
HASHED = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
STATUSES = (NOT_STARTED, IN_PROGRESS, COMPLETED)


def lecture_list(lecture_ids):
    """The course's current lectures once each, in course order, as a tuple."""
    return tuple(unique(lecture_ids))


def list_hash(lectures):
    """A digest of a lecture list (order included): what the figures were computed over."""
    return hashlib.sha1(bson.encode({"l": list(lectures)}, codec_options=HASHED)).hexdigest()


def bits_of(entries, lectures):
    """The contribution of a record: bit i set when lecture i's first entry is completed.

    `entries`: each lecture's first entry ({lecture: entry}), as rule.first_entries gives.
    """
    bits = 0
    for position, lecture in enumerate(lectures):
        son = entries.get(lecture)
        if son is not None and entry_done(son):
            bits |= 1 << position
    return bits


def bits_of_stored(raw, lectures):
    """The contribution of a raw stored record (its lectureProgress as the database holds it)."""
    stored = raw.get("lectureProgress")
    return bits_of(first_entries(stored if isinstance(stored, list) else ()), lectures)


def encode(bits):
    """Bits as stored: little-endian bytes, no trailing zero byte (so equal bits compare equal)."""
    return bits.to_bytes((bits.bit_length() + 7) // 8, "little")


def decode(stored):
    """Stored bytes back to bits."""
    return int.from_bytes(bytes(stored or b""), "little")


def positions(bits):
    """The set bit positions, lowest first."""
    found = []
    while bits:
        low = bits & -bits
        found.append(low.bit_length() - 1)
        bits ^= low
    return found


def status(count, total):
    """not_started (nothing completed), completed (every lecture of a course that has some), or in_progress."""
    if count == 0:
        return NOT_STARTED
    return COMPLETED if count == total else IN_PROGRESS


def count_range(wanted, total):
    """(lowest, highest) completed count of the records in status `wanted` (None: any)."""
    if wanted is None:
        return 0, total
    if wanted == NOT_STARTED:
        return 0, 0
    if wanted == COMPLETED:
        return (total, total) if total > 0 else (1, 0)  # no lectures: nobody has completed
    return 1, total - 1


# --- changes as $inc paths ------------------------------------------------------------------

def record_paths(bits, sign=1):
    """The paths that add (sign 1) or remove (-1) one record with these bits."""
    paths = Counter({"students": sign, f"hist.{bin(bits).count('1')}": sign})
    for position in positions(bits):
        paths[f"per.{position}"] += sign
    return paths


def change_paths(before, after):
    """The paths that turn one counted record's bits from `before` into `after`."""
    paths = Counter()
    paths[f"hist.{bin(before).count('1')}"] -= 1
    paths[f"hist.{bin(after).count('1')}"] += 1
    for position in positions(before & ~after):
        paths[f"per.{position}"] -= 1
    for position in positions(after & ~before):
        paths[f"per.{position}"] += 1
    return nonzero(paths)


def nonzero(paths):
    """The paths without those whose changes cancel out (an empty $inc is refused)."""
    return {path: change for path, change in paths.items() if change}


# --- the figures document -------------------------------------------------------------------

def empty_figures(lectures):
    """The counts of a course with no record yet, over `lectures`."""
    return {"students": 0, "hist": [0] * (len(lectures) + 1), "per": [0] * len(lectures)}


def problem(figures):
    """Why a figures document cannot be trusted (a sentence), or None when it is sound.

    Besides the shapes, two sums must agree: the records counted by hist are `students`,
    and the completions counted by lecture equal those counted by record (sum of n*hist[n]).
    A lost or half-written document, or one edited by hand, fails one of these.
    """
    lectures, hist, per = figures.get("lectures"), figures.get("hist"), figures.get("per")
    students = figures.get("students")
    if not isinstance(lectures, list) or not isinstance(hist, list) or not isinstance(per, list):
        return "lectures, hist or per is missing"
    if list_hash(lectures) != figures.get("h"):
        return "the lecture list does not match its digest"
    if len(hist) != len(lectures) + 1 or len(per) != len(lectures):
        return "hist or per does not fit the lecture list"
    counts = [students, *hist, *per]
    if not all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in counts):
        return "a count is not a non-negative integer"
    if sum(hist) != students or max(per, default=0) > students:
        return "the records counted do not add up"
    if sum(n * count for n, count in enumerate(hist)) != sum(per):
        return "the completions counted by record and by lecture differ"
    return None


def completed_count(figures):
    """Records with every lecture completed (none when the course has no lectures)."""
    total = len(figures["per"])
    return figures["hist"][total] if total else 0


def percentage_sum(figures):
    """The sum of every record's percentage under the rule, exactly."""
    total = len(figures["per"])
    return sum(count * completion_percentage(n, total) for n, count in enumerate(figures["hist"]))


def count_with_status(figures, wanted):
    """How many records are in status `wanted` (None: all)."""
    lowest, highest = count_range(wanted, len(figures["per"]))
    return sum(figures["hist"][lowest:highest + 1])
