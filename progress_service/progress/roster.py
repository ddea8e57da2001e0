"""The instructor's student list and its CSV export (contract sections 7 and 15). No Flask in here.

Both read the record documents of the course's kept figures (figures.py), which hold each
record's contribution over the course's current lectures, its count and status, and the
fields the list sorts by; each sort and filter has an index (upkeep.INDEXES), so a page costs
what the page holds, by offset (`page`) as before, or at any depth by cursor (`after`).
Like the summary, the list is exact for the service's writes and as of `asOf` for others'.
"""
import csv
import io
from itertools import chain
from dataclasses import dataclass
from datetime import timedelta

from pymongo import ASCENDING, DESCENDING

from . import tally, upkeep, windows
from .figures import NO_TIME, shown_time
from .insights import require_instructor
from .present import iso_time, oid
from .rule import as_utc, completion_percentage, now_ms
from .schemas import encode_cursor

SORT_FIELDS = {"createdAt": "createdAt", "lastAccessed": "lastAccessed", "percentage": "n"}
LISTED = {"user": 1, "n": 1, "completedAt": 1, "lastAccessed": 1, "createdAt": 1}
EXPORT_BATCH = 1000
# A cell starting with one of these is a formula to a spreadsheet (CSV injection): it is
# prefixed with an apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("user", "name", "email", "completionPercentage", "isCompleted", "completedAt", "lastAccessed")


@dataclass(frozen=True)
class ListQuery:
    """What the client asked of the list (validated by schemas.StudentsQuerySchema)."""

    limit: int
    page: int = None
    after: dict = None
    sort: str = "createdAt"
    order: str = "asc"
    status: str = None


@dataclass
class StudentsPage:
    """One page of a course's students."""

    items: list
    page: int
    limit: int
    total: int
    next: str
    as_of: object

    def as_dict(self):
        """The page as the client sees it."""
        return {"items": self.items, "page": self.page, "limit": self.limit, "total": self.total,
                "next": self.next, "asOf": iso_time(self.as_of)}


def _filter(key, query, total):
    """The records of the list: the course's (its key), of the status asked for.

    Sorted by percentage, the status is a range of the completed count (tally.count_range),
    so the count's index serves both; otherwise the status has its own index prefix.
    """
    found = {"k": key}
    if query.status is not None:
        if query.sort == "percentage":
            lowest, highest = tally.count_range(query.status, total)
            # $lt the next integer rather than $lte: the embedded test server's compound-index
            # range drops every key equal to an $lte bound (a silent wrong answer); for
            # integer counts both say the same to MongoDB.
            found["n"] = {"$gte": lowest, "$lt": highest + 1}
        else:
            found["st"] = query.status
    return found


def _sorted(collection, condition, field, direction, limit):
    """Documents matching `condition` in (field, _id) order."""
    return list(collection.find(condition, LISTED).sort([(field, direction), ("_id", direction)]).limit(limit))


def _documents(collection, base, query, wanted):
    """Up to `wanted` record documents of the page, in the list's order.

    After a cursor (value, id) it is two ranges on the sort's index: the rest of the equal
    values by _id, then the values beyond; neither depends on how deep the cursor is.
    """
    field = SORT_FIELDS[query.sort]
    direction = ASCENDING if query.order == "asc" else DESCENDING
    if query.after is None:
        cursor = collection.find(base, LISTED).sort([(field, direction), ("_id", direction)])
        return list(cursor.skip(((query.page or 1) - 1) * query.limit).limit(wanted))
    beyond = "$gt" if direction == ASCENDING else "$lt"
    value, last = query.after["value"], query.after["id"]
    bounds = base.get(field) if isinstance(base.get(field), dict) else {}
    found = []
    if not bounds or bounds["$gte"] <= value < bounds["$lt"]:
        found = _sorted(collection, {**base, field: value, "_id": {beyond: last}}, "_id", direction, wanted)
    if len(found) < wanted:
        past = {**bounds, beyond: min(value, bounds["$lt"]) if beyond == "$lt" and bounds else value}
        found += _sorted(collection, {**base, field: past}, field, direction, wanted - len(found))
    return found


def students(mount, user_id, course_id, query):
    """A page of the course's students, for its instructor or an admin."""
    course = require_instructor(mount, user_id, course_id)
    kept = upkeep.current(mount, course, exact=True)
    counts, total = kept.figures, len(kept.lectures)
    collection = mount.figures.collection()
    base = _filter(kept.key, query, total)
    documents = _documents(collection, base, query, query.limit + 1)
    more, documents = len(documents) > query.limit, documents[:query.limit]
    users = _users(mount, documents)
    items = [_item(document, users.get(document["user"]), total) for document in documents]
    following = None
    if more:
        last = documents[-1]
        following = encode_cursor({"sort": query.sort, "order": query.order, "status": query.status,
                                   "value": last[SORT_FIELDS[query.sort]], "id": last["_id"]})
    page = None if query.after is not None else query.page or 1
    return StudentsPage(items, page, query.limit, tally.count_with_status(counts, query.status), following,
                        kept.as_of)


def _users(mount, documents):
    """The users of some record documents, by id (a record whose user is not an id has none)."""
    ids = {document["user"] for document in documents} - {None}
    return mount.catalog.users(ids) if ids else {}


def _item(document, user, total):
    """One student as the list shows them: the rule's figures over the current lectures."""
    percentage = completion_percentage(document["n"], total)
    return {"user": {"_id": oid(document["user"]), "name": getattr(user, "name", None),
                     "email": getattr(user, "email", None)},
            "completionPercentage": percentage, "isCompleted": percentage == 100,
            "completedAt": iso_time(document.get("completedAt")) if percentage == 100 else None,
            "lastAccessed": iso_time(shown_time(document.get("lastAccessed")))}


# --- the CSV export -------------------------------------------------------------------------

def safe_cell(value):
    """A cell as written: None is empty, a formula-like text is prefixed with an apostrophe."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _line(cells):
    """One CSV line (RFC 4180 quoting, CRLF)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([safe_cell(cell) for cell in cells])
    return buffer.getvalue()


def export(mount, user_id, course_id):
    """(file name, generator of CSV text): every student of the course, oldest record first.

    Everything that can fail for the caller (401, 403, 404, figures being counted) fails
    here, before the first byte; the generator then reads the record documents a window of
    createdAt at a time (windows.py) and their users batch by batch, so memory does not
    grow with the course.
    """
    course = require_instructor(mount, user_id, course_id)
    kept = upkeep.current(mount, course, exact=True)
    lectures = kept.lectures
    titles = mount.catalog.lecture_titles(lectures) if lectures else {}
    header = [*CSV_COLUMNS, *(titles.get(lecture) or oid(lecture) for lecture in lectures)]
    collection = mount.figures.collection()

    def window(low, high):
        """The record documents created in [low, high), in the list's order."""
        return (collection.find({"k": kept.key, "createdAt": {"$gte": low, "$lt": high}}, {**LISTED, "bits": 1})
                .sort([("createdAt", ASCENDING), ("_id", ASCENDING)]))

    def rows():
        """The header, then the students a window of time and a batch at a time: first
        those created before the oldest record the build saw (those without a createdAt, at
        NO_TIME), then windows from there on."""
        yield _line(header)
        oldest = as_utc(kept.figures.get("oldest")) or NO_TIME
        until = now_ms() + timedelta(days=1)  # a record whose writer's clock ran ahead
        early = [(list(window(NO_TIME, oldest)), oldest, None)] if oldest > NO_TIME else []
        for found, _edge, _span in chain(early, windows.every_window(window, oldest, until, windows.FIRST_SPAN)):
            for batch in windows.batches(found, EXPORT_BATCH):
                yield _lines(mount, batch, lectures)

    return f"students-{course.id}.csv", rows()


def _lines(mount, batch, lectures):
    """The CSV lines of a batch of record documents (their users read at once)."""
    users = _users(mount, batch)
    lines = []
    for document in batch:
        item = _item(document, users.get(document["user"]), len(lectures))
        done = tally.decode(document.get("bits"))
        flags = ["true" if done >> position & 1 else "false" for position in range(len(lectures))]
        lines.append(_line([item["user"]["_id"], item["user"]["name"], item["user"]["email"],
                            item["completionPercentage"], "true" if item["isCompleted"] else "false",
                            item["completedAt"], item["lastAccessed"], *flags]))
    return "".join(lines)
