"""What a player reports beyond the position (contract section 14): played intervals and `at`.

Each lecture entry keeps `played`, the union of every interval of the video the player
reported as played (sorted, disjoint `[start, end]` pairs of seconds), and `positionAt`, the
player's own time (`at`) of the stored position. Two twins say the same rules: the Python
functions, for the write that reads the record first, and the update pipeline, for the cheap
position update that reads nothing (the database merges). tests/test_played.py checks that
they agree.

The stored union is bounded: at most MAX_STORED intervals. Each reported interval is merged
in turn; when that leaves one interval too many, the two intervals with the smallest gap
between them become one. That only ever adds the gap (over-counts by the smallest gaps,
never drops what was played), and a lecture watched in one sitting is a single interval.

A position whose `at` is older than the entry's `positionAt` does not move the stored
position (`watchTime`, `lastWatched`, `positionAt`); its flag and its intervals still count.
Without `at` (or with none stored) the last write wins, and a position without `at` keeps
the stored `positionAt`.
"""
import math
from datetime import datetime, timezone

from .watching import exact, whole_ms

MAX_STORED = 32
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --- the rules, in Python -------------------------------------------------------------------

def intervals_of(stored):
    """The stored intervals as (start, end) pairs; anything else in the list is ignored."""
    if not isinstance(stored, list):
        return []
    return [(item[0], item[1]) for item in stored
            if isinstance(item, (list, tuple)) and len(item) == 2 and all(_is_number(x) for x in item)
            and item[0] < item[1]]


def _is_number(value):
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def merge(stored, reported, bound=MAX_STORED):
    """The union of the stored intervals and the reported ones, in at most `bound` intervals.

    Each reported interval in turn: the stored ones it overlaps or touches become one with
    it; then, one interval over the bound, the smallest gap (the first of equal ones) closes.
    """
    union = [list(pair) for pair in intervals_of(stored)]
    for start, end in reported:
        before = [pair for pair in union if pair[1] < start]
        after = [pair for pair in union if pair[0] > end]
        touching = [pair for pair in union if pair[1] >= start and pair[0] <= end]
        joined = [min([start] + [pair[0] for pair in touching]), max([end] + [pair[1] for pair in touching])]
        union = before + [joined] + after
        if len(union) > bound:
            gaps = [union[k + 1][0] - union[k][1] for k in range(len(union) - 1)]
            k = gaps.index(min(gaps))
            union[k:k + 2] = [[union[k][0], union[k + 1][1]]]
    return union


def watched_ms(stored):
    """The union's total length in whole milliseconds (half up), as completion compares it."""
    if not stored:
        return 0
    total = math.fsum(end - start for start, end in intervals_of(stored))
    return whole_ms(exact(total))


def watched_seconds(stored):
    """`watchedSeconds` as answers show it: the total in seconds, to the millisecond."""
    return watched_ms(stored) / 1000


def completes(threshold_ms, son):
    """Whether the entry's played seconds reach `threshold_ms` (None: watching cannot complete)."""
    return threshold_ms is not None and watched_ms(son.get("played")) >= threshold_ms


def moves_position(son, at):
    """Whether a position observed at `at` (None: unknown) moves the entry's stored one."""
    stored = son.get("positionAt")
    if at is None or not isinstance(stored, datetime):
        return True
    if stored.tzinfo is None:
        stored = stored.replace(tzinfo=timezone.utc)
    return stored <= at


# --- the same rules, as the database evaluates them ------------------------------------------
# Operators used: $reduce, $filter, $map, $let, $concatArrays, $slice, $indexOfArray,
# $arrayElemAt, $range, $mergeObjects, $ifNull, $cond, $min, $max, $isArray, $isNumber
# (MongoDB 4.4+, and checked on the embedded SecantusDB). Values from clients are always
# wrapped in $literal, so a string id starting with "$" is never read as a field path.

def _start(pair):
    return {"$arrayElemAt": [pair, 0]}


def _end(pair):
    return {"$arrayElemAt": [pair, 1]}


def _at(array, index):
    return {"$arrayElemAt": [array, index]}


def _inserted(union, new):
    """`union` with the interval `new` merged in (the loop body of `merge`)."""
    start, end = _start(new), _end(new)

    def keep(condition):
        return {"$filter": {"input": union, "as": "i", "cond": condition}}

    touching = keep({"$and": [{"$gte": [_end("$$i"), start]}, {"$lte": [_start("$$i"), end]}]})
    joined = [{"$min": {"$concatArrays": [[start], {"$map": {"input": touching, "as": "i", "in": _start("$$i")}}]}},
              {"$max": {"$concatArrays": [[end], {"$map": {"input": touching, "as": "i", "in": _end("$$i")}}]}}]
    return {"$concatArrays": [keep({"$lt": [_end("$$i"), start]}), [joined], keep({"$gt": [_start("$$i"), end]})]}


def _bounded(union, bound):
    """`union`, its smallest gap closed when it holds one interval over `bound`."""
    gaps = {"$map": {"input": {"$range": [0, {"$subtract": [{"$size": "$$u"}, 1]}]}, "as": "k",
                     "in": {"$subtract": [_start(_at("$$u", {"$add": ["$$k", 1]})), _end(_at("$$u", "$$k"))]}}}
    closed = {"$let": {"vars": {"gaps": gaps}, "in": {"$let": {
        "vars": {"k": {"$indexOfArray": ["$$gaps", {"$min": "$$gaps"}]}},
        "in": {"$concatArrays": [
            {"$slice": ["$$u", "$$k"]},
            [[_start(_at("$$u", "$$k")), _end(_at("$$u", {"$add": ["$$k", 1]}))]],
            {"$slice": ["$$u", {"$add": ["$$k", 2]}, bound + 1]},
        ]}}}}}
    return {"$let": {"vars": {"u": union}, "in": {"$cond": [{"$gt": [{"$size": "$$u"}, bound]}, closed, "$$u"]}}}


def _finite(number):
    """Expression: `number` is a finite number (not a bool; NaN sorts below every number)."""
    return {"$and": [{"$isNumber": number}, {"$gt": [number, float("-inf")]}, {"$lt": [number, float("inf")]}]}


def intervals_expression(stored):
    """An expression of `intervals_of(stored)`: a stored value that is not a list is no intervals,
    and an item that is not a [start, end] pair of finite numbers with start < end is ignored
    (`$ifNull` would hand `$filter` a string: a 500 on hostile stored data, contract section 12).
    `$and` stops at the first false, so `$size` only sees arrays."""
    return {"$filter": {"input": {"$cond": [{"$isArray": stored}, stored, []]}, "as": "i", "cond": {"$and": [
        {"$isArray": "$$i"}, {"$eq": [{"$size": "$$i"}, 2]}, _finite(_start("$$i")), _finite(_end("$$i")),
        {"$lt": [_start("$$i"), _end("$$i")]}]}}}


def merge_expression(stored, reported, bound=MAX_STORED):
    """An expression of `merge(stored, reported)`: `stored` an expression, `reported` values."""
    return {"$reduce": {"input": {"$literal": [list(pair) for pair in reported]},
                        "initialValue": intervals_expression(stored),
                        "in": _bounded(_inserted("$$value", "$$this"), bound)}}


def position_pipeline(change, now):
    """The cheap position update as one pipeline: the lecture's first entry gets the reported
    intervals merged and, unless its `at` is older than the stored one, the position; the
    record gets its times and one more __v. The caller's filter guarantees the entry exists.
    """
    moved = {"lastWatched": now, "watchTime": change.watch_time}
    moves = True
    if change.at is not None:
        moved["positionAt"] = change.at
        moves = {"$lte": [{"$ifNull": ["$$entry.positionAt", EPOCH]}, {"$literal": change.at}]}
    parts = ["$$entry"]
    if change.played:
        parts.append({"played": merge_expression("$$entry.played", change.played)})
    parts.append({"$cond": [moves, {"$literal": moved}, {}]})
    lectures = "$lectureProgress"
    index = {"$indexOfArray": [{"$map": {"input": lectures, "as": "e", "in": "$$e.lecture"}},
                               {"$literal": change.lecture}]}
    entry = {"$let": {"vars": {"entry": _at(lectures, "$$i")}, "in": {"$mergeObjects": parts}}}
    return [{"$set": {
        "lectureProgress": {"$let": {"vars": {"i": index}, "in": {"$concatArrays": [
            {"$slice": [lectures, "$$i"]}, [entry],
            {"$slice": [lectures, {"$add": ["$$i", 1]}, {"$size": lectures}]},
        ]}}},
        "lastAccessed": {"$literal": now}, "updatedAt": {"$literal": now},
        "__v": {"$add": ["$__v", 1]},
    }}]
