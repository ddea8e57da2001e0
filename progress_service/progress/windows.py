"""Reading many documents a window of an indexed time at a time, and in batches.

No one query reads a whole large course: MongoDB would stream it, but the embedded test
server materializes a query's whole answer before its first batch, which for 100,000 records
outlasts the driver's 6 s budget.
"""
from datetime import timedelta

import pymongo
from pymongo.errors import PyMongoError

WINDOW = 1000           # documents a window of time is sized to hold
WINDOW_SECONDS = 15     # in a request, a window that takes longer is read again smaller (under
                        # gunicorn's 30 s with a request's other work)
FIRST_SPAN = timedelta(hours=1)
MIN_SPAN, MAX_SPAN = timedelta(milliseconds=1), timedelta(days=3650)
BATCH = 500


class WindowTooLarge(Exception):
    """A window took longer than WINDOW_SECONDS to read: go on from `edge` with `span`."""

    def __init__(self, edge, span):
        super().__init__(edge, span)
        self.edge, self.span = edge, span


def windows(find, start, stop, span, seconds=None):
    """(documents, boundary reached, next span) for consecutive windows of time from `start`
    towards `stop` (backwards when stop < start): `find(low, high)` reads [low, high).

    Each window is sized from the last to hold about WINDOW documents (at most twice as long
    as the last: a gap in time is crossed in a few steps without leaping over much of what
    follows it). With `seconds` (a request), one that takes longer raises WindowTooLarge,
    with a quarter of its span, rather than be retried at once (the embedded server goes on
    with an abandoned query, holding its storage); without, a window takes the time it takes
    (the operator's rebuild). A window reads by a range on an indexed time.
    """
    forward = stop > start
    edge = start
    while (edge < stop) if forward else (edge > stop):
        low, high = (edge, min(edge + span, stop)) if forward else (max(edge - span, stop), edge)
        try:
            with pymongo.timeout(seconds):
                found = list(find(low, high))
        except PyMongoError as exc:
            if not exc.timeout:
                raise
            raise WindowTooLarge(edge, max(span / 4, MIN_SPAN)) from exc
        edge = high if forward else low
        span = max(min(span * WINDOW / max(len(found), 1), span * 2, MAX_SPAN), span / 8, MIN_SPAN)
        yield found, edge, span


def every_window(find, start, stop, span):
    """windows() bounded in time, each one too large read again smaller (for a response that
    streams, whose bytes cannot be taken back)."""
    while True:
        try:
            yield from windows(find, start, stop, span, WINDOW_SECONDS)
            return
        except WindowTooLarge as smaller:
            start, span = smaller.edge, smaller.span


def batches(iterable, size=BATCH):
    """Lists of up to `size` items."""
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
