"""Completion by watching (contract sections 8 and 14): a lecture watched far enough is completed.

When PROGRESS_COMPLETE_AT is a fraction f (0.9 by default) and the lecture has a positive
`duration`, watching f x duration of it completes it, compared in whole milliseconds with
both sides rounded, computed exactly: 108 s of a 120 s lecture is 90 %. What counts as
watched is PROGRESS_COMPLETE_BY's: `position`, the reported playhead (`watchTime`), or
`watched`, the seconds actually played (the union of the reported intervals, played.py), so
that seeking to the end completes nothing.
"""
from dataclasses import replace
from fractions import Fraction

from .stored import seconds

POSITION, WATCHED = "position", "watched"


def exact(number):
    """A JSON or stored number as the exact decimal it was written as.

    A float holds 107.9995 as 107.99949999...; its shortest repr is the decimal the client
    (or the LMS) wrote, so the comparison sees 107999.5 ms, as the contract rounds it.
    """
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


def whole_ms(seconds):
    """Seconds (exact) as whole milliseconds, half up."""
    return int(seconds * 1000 + Fraction(1, 2))


def needed_ms(complete_at, duration):
    """The watched milliseconds that complete a lecture of `duration` seconds, or None when
    watching cannot complete it (off, or no finite positive duration: a host's Infinity, as
    browsers report a live stream, or NaN, completes nothing)."""
    duration = seconds(duration)
    if complete_at is None or not duration:
        return None
    return whole_ms(complete_at * exact(duration))


def watched_enough(complete_at, duration, watch_time):
    """Whether watching `watch_time` of a lecture of `duration` seconds completes it."""
    needed = needed_ms(complete_at, duration)
    return needed is not None and watch_time is not None and whole_ms(exact(watch_time)) >= needed


def by_position(settings, duration, change):
    """`position` mode: whether this change's playhead completes its lecture (no flag sent)."""
    return (settings.complete_by == POSITION and change.is_completed is None
            and watched_enough(settings.complete_at, duration, change.watch_time))


def threshold(settings, duration, change):
    """`watched` mode: the played milliseconds that complete the lecture when this change adds
    played intervals and sends no flag, else None (the write compares after merging)."""
    if settings.complete_by != WATCHED or change.is_completed is not None or not change.played:
        return None
    return needed_ms(settings.complete_at, duration)


def resolve_flags(mount, changes):
    """The changes as watching decides them: by position, completed when watched far enough;
    by watched seconds, with the threshold the write compares the merged union with.

    An explicit flag always wins; watching never un-completes (a change without a flag keeps
    it as it is). Durations are read only for changes that may complete by watching.
    """
    settings = mount.settings
    candidates = [c.lecture for c in changes if c.is_completed is None and (
        c.played if settings.complete_by == WATCHED else c.watch_time is not None)]
    if settings.complete_at is None or not candidates:
        return changes
    durations = mount.catalog.lecture_durations(candidates)
    return [resolve(settings, durations.get(c.lecture), c) for c in changes]


def resolve(settings, duration, change):
    """One change as watching decides it, knowing its lecture's duration."""
    if by_position(settings, duration, change):
        return replace(change, is_completed=True)
    needed = threshold(settings, duration, change)
    return change if needed is None else replace(change, complete_after_ms=needed)
