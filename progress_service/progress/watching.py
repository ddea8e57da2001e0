"""Completion by watching (contract section 8): a lecture watched far enough is completed.

When PROGRESS_COMPLETE_AT is a fraction f (0.9 by default) and the lecture has a positive
`duration`, a position at or past f x duration completes it, compared in whole milliseconds
with both sides rounded, computed exactly: 108 s of a 120 s lecture is 90 %.
"""
from dataclasses import replace
from fractions import Fraction


def exact(number):
    """A JSON or stored number as the exact decimal it was written as.

    A float holds 107.9995 as 107.99949999...; its shortest repr is the decimal the client
    (or the LMS) wrote, so the comparison sees 107999.5 ms, as the contract rounds it.
    """
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


def _whole_ms(seconds):
    """Seconds (exact) as whole milliseconds, half up."""
    return int(seconds * 1000 + Fraction(1, 2))


def watched_enough(complete_at, duration, watch_time):
    """Whether watching `watch_time` of a lecture of `duration` seconds completes it."""
    if complete_at is None or watch_time is None or not isinstance(duration, (int, float)):
        return False
    if isinstance(duration, bool) or not duration > 0 or duration != duration:
        return False
    return _whole_ms(exact(watch_time)) >= _whole_ms(complete_at * exact(duration))


def resolve_flags(mount, changes):
    """The changes with the flag watching sets: a lecture watched far enough is completed.

    An explicit flag always wins; watching never un-completes (a position-only change keeps
    the flag as it is). Durations are read only for changes that may complete by watching.
    """
    complete_at = mount.settings.complete_at
    candidates = [c.lecture for c in changes if c.watch_time is not None and c.is_completed is None]
    if complete_at is None or not candidates:
        return changes
    durations = mount.catalog.lecture_durations(candidates)
    return [replace(c, is_completed=True, by_watching=True)
            if c.is_completed is None and watched_enough(complete_at, durations.get(c.lecture), c.watch_time)
            else c for c in changes]
