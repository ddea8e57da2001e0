"""Our indexes on courseprogresses: which they are, the guard that keeps checking them, and what
their absence means (writes wait for the unique one; the lists go on unhinted).

Checked on a process's first request and again at least every CHECK_SECONDS (every
RECHECK_SECONDS while something is wrong, at once after an error that names an index), so an
index dropped while the service runs is noticed and made again. A build runs in a thread of its
own without the per-operation budget (timeoutMS): on a large collection it outlives any request,
and mongod aborts a build whose command is interrupted, so a build tried within a request's
budget would be retried, and aborted, forever. Clients get the service's own words (`reason`);
the database's text, which may quote other students' ids, goes to the log only (`detail`).
"""
import logging
import threading
import time
from dataclasses import dataclass

import pymongo
from pymongo.errors import OperationFailure, PyMongoError

from .exceptions import Unavailable

log = logging.getLogger("progress_service")


@dataclass(frozen=True)
class IndexSpec:
    """One index of courseprogresses: keys, name, and whether writes depend on it."""

    name: str
    keys: tuple
    unique: bool = False

    @property
    def key_tuple(self):
        """The keys as compared with list_indexes() output."""
        return tuple(self.keys)


# The unique one has Mongoose's name and keys, so the original LMS's index is ours too.
UNIQUE = IndexSpec("user_1_course_1", (("user", 1), ("course", 1)), unique=True)
DASHBOARD = IndexSpec("user_1_lastAccessed_-1__id_-1", (("user", 1), ("lastAccessed", -1), ("_id", -1)))
STUDENTS = IndexSpec("course_1_createdAt_1__id_1", (("course", 1), ("createdAt", 1), ("_id", 1)))
# The instructor's figures find the records written elsewhere by their updatedAt (upkeep.py).
UPDATED = IndexSpec("course_1_updatedAt_1", (("course", 1), ("updatedAt", 1)))
INDEXES = (UNIQUE, DASHBOARD, STUDENTS, UPDATED)
# IndexOptionsConflict, IndexKeySpecsConflict: an index of that name or keys already exists.
INDEX_CONFLICT_CODES = (85, 86)
UNAUTHORIZED = 13
DUPLICATE_KEY = 11000
BAD_VALUE = 2  # mongod's code for a hint that names no index


@dataclass(frozen=True)
class IndexProblem:
    """Why writes are refused: `reason` in the service's own words (answers, /readyz), `detail`
    for the operator's log (what to do, and the database's own text)."""

    reason: str
    detail: str


def names_an_index(exc):
    """Whether a database error is about an index (a hint naming none, say): the guard rechecks."""
    if not isinstance(exc, OperationFailure) or exc.code == DUPLICATE_KEY:
        return False
    message = ((exc.details or {}).get("errmsg") or str(exc)).lower()
    return "index" in message or (exc.code == BAD_VALUE and "hint" in message)


class IndexGuard:
    """Our indexes in one database, checked again and again; read by requests without I/O.

    `problem` (an IndexProblem or None) refuses writes; `present` names our indexes that exist,
    so the lists hint only at those. Writes need the unique (user, course) index: without it two
    first writes can create two records.
    """

    CHECK_SECONDS = 30      # look again this often (an index may have been dropped)
    RECHECK_SECONDS = 10    # this often while writes are refused
    BUILD_WAIT_SECONDS = 5  # a request waits this long for a build (an empty collection's takes ms)
    BUILD_SECONDS = 3600    # a build's own budget

    def __init__(self):
        """Nothing checked yet."""
        self._lock = threading.Lock()
        self._build = None
        self._warned = frozenset()
        self.checked_at = None
        self.problem = None
        self.present = frozenset()

    @property
    def unique_ready(self):
        """Whether the last check found the unique (user, course) index in place."""
        return self.checked_at is not None and UNIQUE.name in self.present

    def _due(self):
        """Whether it is time to look again."""
        if self.checked_at is None:
            return True
        every = self.CHECK_SECONDS if self.problem is None else self.RECHECK_SECONDS
        return time.monotonic() - self.checked_at >= every

    def invalidate(self):
        """Look again on the next use (an error named an index: it may be gone)."""
        self.checked_at = None

    def ensure(self, collection, wait=BUILD_WAIT_SECONDS):
        """Check when due, building what is missing; wait up to `wait` s for a build (None: to its end)."""
        if not self._due():
            return
        with self._lock:
            if not self._due():
                return
            existing = _existing(collection)
            missing = [spec for spec in INDEXES if spec.key_tuple not in existing]
            building = False
            if missing:
                if self._build is None or not self._build.is_alive():
                    self._build = IndexBuild(collection, missing, self.BUILD_SECONDS)
                    self._build.start()
                self._build.join(wait)
                building = self._build.is_alive()  # before listing: a build that ends meanwhile shows
                existing = _existing(collection)
            self._settle(*assess(existing, self._build, building))

    def _settle(self, problem, present):
        """Keep the outcome of a check, logging what changed (once, not at every check)."""
        if problem and (self.problem is None or problem.reason != self.problem.reason):
            # Once per kind of problem: the database's text differs at every try (a build's UUID).
            log.error("writes refused: %s", problem.detail)
        elif self.problem and not problem:
            log.warning("unique index on courseprogresses (user, course) is in place: writes resume")
        failed = self._build.failed_others() if self._build is not None else frozenset()
        for name, message in failed - self._warned:
            log.warning("index %s not created (queries still work, more slowly): %s", name, message)
        self._warned = failed
        self.problem, self.present, self.checked_at = problem, present, time.monotonic()

    def require_unique(self):
        """503 while the unique (user, course) index is not in place."""
        if self.problem:
            raise Unavailable(f"Writes are paused: {self.problem.reason}; retry later",
                              headers={"Retry-After": str(self.RECHECK_SECONDS)})


def _existing(collection):
    """{keys: index info} of the collection's indexes."""
    return {tuple(index["key"].items()): index for index in collection.list_indexes()}


def _errmsg(exc):
    """The database's own text of a failure."""
    return (getattr(exc, "details", None) or {}).get("errmsg") or str(exc)


class IndexBuild(threading.Thread):
    """Creates the missing indexes with a budget of its own; `failures` says what did not work."""

    def __init__(self, collection, specs, seconds):
        super().__init__(name="progress-index-build", daemon=True)
        self.collection, self.specs, self.seconds = collection, specs, seconds
        self.failures = {}

    def run(self):
        """Create each index in turn; a failure is kept, never raised."""
        for spec in self.specs:
            try:
                with pymongo.timeout(self.seconds):
                    self.collection.create_index(list(spec.keys), name=spec.name, unique=spec.unique)
            except PyMongoError as exc:
                self.failures[spec.name] = exc

    def failed_others(self):
        """{(name, database text)} of the indexes other than the unique one that failed."""
        return frozenset((name, _errmsg(exc)) for name, exc in self.failures.items() if name != UNIQUE.name)


def assess(existing, build=None, building=False):
    """(IndexProblem or None, names of our indexes present) of the collection's indexes.

    An index with the same keys under any name is taken as ours, except that the (user, course)
    one must be unique. `build`: the last IndexBuild, whose failures say why one is missing;
    `building`: it was still running when the indexes were listed.
    """
    present = set()
    problem = None
    for spec in INDEXES:
        found = existing.get(spec.key_tuple)
        if found is not None and spec.unique and (not found.get("unique") or "partialFilterExpression" in found):
            problem = IndexProblem(
                "a non-unique index is where the unique (user, course) index must be",
                f"the index {found.get('name')!r} on courseprogresses (user, course) is not unique for every "
                f"record, so two first writes could create two records; drop it "
                f"(db.courseprogresses.dropIndex({found.get('name')!r})) and the service creates the unique one")
        elif found is not None:
            present.add(spec.name)
        elif spec.unique:
            problem = _missing(build, building)
    return problem, frozenset(present)


def _missing(build, building):
    """The IndexProblem of a unique index that is not there: being built, or why its build failed."""
    if building:
        return IndexProblem("the unique (user, course) index is being built",
                            f"building the unique index {UNIQUE.name} on courseprogresses (a large collection "
                            f"takes a while); writes resume when it is ready")
    exc = build.failures.get(UNIQUE.name) if build is not None else None
    message = _errmsg(exc) if exc is not None else "not found"
    code = getattr(exc, "code", None)
    if code == UNAUTHORIZED:
        return IndexProblem("the database user may not create the unique (user, course) index",
                            f"the database user may not create the index {UNIQUE.name} on courseprogresses: grant "
                            f"it createIndex, or create the index as an administrator "
                            f"(`flask --app wsgi progress ensure-indexes`) ({message})")
    if code == DUPLICATE_KEY:
        return IndexProblem("the unique (user, course) index cannot be built: some student has two records "
                            "of one course",
                            f"building the unique index {UNIQUE.name} failed because courseprogresses holds several "
                            f"records for one (user, course): merge or remove the duplicates, then the service "
                            f"builds it ({message})")
    if code in INDEX_CONFLICT_CODES:
        return IndexProblem("another index is in the way of the unique (user, course) index",
                            f"an index named {UNIQUE.name} exists with other keys or options: drop or rename it "
                            f"({message})")
    return IndexProblem("the unique (user, course) index is missing",
                        f"creating the index {UNIQUE.name} on courseprogresses failed: {message}")
