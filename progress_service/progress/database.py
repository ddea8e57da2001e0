"""One mount's database: the host's MongoEngine connection, or a client of its own; our indexes.

Nothing here is process-global. A mount reads through the connection the host registered
under PROGRESS_DB_ALIAS when there is one, else through a MongoClient of its own made from
MONGODB_URI. Either way nothing connects until the first query: a mount does no I/O, so
gunicorn may fork (and --preload) after create_app(). No MongoEngine Document is bound to a
database: the collections are looked up here, per mount, on every use.
"""
import logging
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from mongoengine.connection import get_db
from pymongo import MongoClient, ReadPreference
from pymongo.errors import OperationFailure

from . import compat
from .exceptions import MountError, Unavailable

log = logging.getLogger("progress_service")

RECORDS = "courseprogresses"
# Below gunicorn's 30 s worker timeout and within the 10 s promised while the database is
# down or hung: a request fails fast with 503 instead of hanging a worker. timeoutMS (the
# driver's per-operation budget) bounds retries too: with socketTimeoutMS alone, a read on a
# server that stopped answering waited out the socket timeout twice (retryable reads), 12 s.
CLIENT_TIMEOUTS = {"serverSelectionTimeoutMS": 3000, "connectTimeoutMS": 2000, "timeoutMS": 6000}
READ_PREFERENCES = {
    "primary": ReadPreference.PRIMARY,
    "primarypreferred": ReadPreference.PRIMARY_PREFERRED,
    "secondary": ReadPreference.SECONDARY,
    "secondarypreferred": ReadPreference.SECONDARY_PREFERRED,
    "nearest": ReadPreference.NEAREST,
}


def _uri_options(uri):
    """The query options of a MongoDB URI, keys lower-cased."""
    return {key.lower(): value for key, value in parse_qs(urlsplit(uri).query).items()}


def client_settings(settings):
    """MongoClient keyword arguments for MONGODB_URI: the URI's own options win."""
    uri = settings.mongodb_uri
    options = _uri_options(uri)
    # pymongo lets keyword arguments override the URI: only fill in what the URI leaves unset.
    timeouts = {key: value for key, value in CLIENT_TIMEOUTS.items() if key.lower() not in options}
    kwargs = {"host": uri, "tz_aware": True, "retryWrites": True, "connect": False, **timeouts}
    if "uuidrepresentation" not in options:
        # UUID ids as the Node driver stores them (subtype 4). A database a MongoEngine host
        # writes UUIDs into (its default: pythonLegacy, subtype 3) says so in the URI.
        kwargs["uuidRepresentation"] = "standard"
    concern = settings.write_concern
    if "w" not in options and concern:
        kwargs["w"] = int(concern) if str(concern).isdigit() else concern
    preference = (settings.read_preference or "").lower()
    if "readpreference" not in options and preference:
        if preference not in READ_PREFERENCES:
            raise MountError(f"MONGODB_READ_PREFERENCE must be one of {', '.join(READ_PREFERENCES)}")
        kwargs["read_preference"] = READ_PREFERENCES[preference]
    return kwargs


def _database_name(uri):
    """The database a MONGODB_URI names (its path), or None."""
    return urlsplit(uri).path.lstrip("/") or None


class Database:
    """The mount's database, connected on first use (per process: a forked worker reconnects)."""

    def __init__(self, settings):
        """Decide where the mount's data lives; refuse now rather than on the first request."""
        self.alias = settings.db_alias
        self.uses_host_connection = compat.alias_registered(self.alias)
        self._client_kwargs = None
        if not self.uses_host_connection:
            uri = settings.mongodb_uri
            if not uri:
                raise MountError(
                    f"progress has no database: no MongoEngine connection is registered under the "
                    f"alias {self.alias!r} (PROGRESS_DB_ALIAS) and MONGODB_URI is not set. Connect "
                    f"your database before mounting, or set MONGODB_URI.")
            if not _database_name(uri):
                raise MountError("MONGODB_URI must name the database, e.g. mongodb://host:27017/lms")
            self._client_kwargs = client_settings(settings)
        self._lock = threading.Lock()
        self._client = None
        self._client_db = None
        self._client_pid = None
        self._views = None
        self.indexes = IndexGuard()

    def _own_client(self):
        """This process's MongoClient (a forked worker makes its own: sockets don't survive a fork)."""
        pid = os.getpid()
        if self._client is None or self._client_pid != pid:
            with self._lock:
                if self._client is None or self._client_pid != pid:
                    self._client = MongoClient(**self._client_kwargs)
                    # One Database object for the client's life: get_default_database() makes
                    # a new one on every call.
                    self._client_db = self._client.get_default_database()
                    self._client_pid = pid
                    self._views = None
        return self._client

    def db(self):
        """The pymongo Database of this mount."""
        if self.uses_host_connection:
            # The host's connection, as MongoEngine hands it out (it caches the Database).
            return get_db(self.alias)
        self._own_client()
        return self._client_db

    def _collections(self):
        """(db, records, records read from the primary), cached while the Database object lasts."""
        db = self.db()
        views = self._views
        if views is None or views[0] is not db:
            if views is not None:
                # The host pointed its alias at another database: check the indexes there too.
                self.indexes = IndexGuard()
            records = db[RECORDS]
            # A write reads what it will change from the primary, whatever the read preference:
            # a secondary's stale copy would fail the write's condition (spurious 409s) or
            # answer with a state the next GET contradicts.
            views = (db, records, records.with_options(read_preference=ReadPreference.PRIMARY))
            self._views = views
        return views

    def records(self):
        """The courseprogresses collection, for reads that store nothing."""
        return self._collections()[1]

    def records_for_write(self):
        """The courseprogresses collection, read from the primary."""
        return self._collections()[2]

    def ensure_indexes(self):
        """Check our indexes in the database in use now (creating what is missing); the guard."""
        records = self.records_for_write()  # first: a different database gets a guard of its own
        self.indexes.ensure(records)
        return self.indexes

    def ping(self):
        """Raise unless the database answers."""
        self.db().client.admin.command("ping")

    def close(self):
        """Close our own client (tests, shutdown); a host's connection is the host's to close."""
        with self._lock:
            if self._client is not None and self._client_pid == os.getpid():
                self._client.close()
            self._client = None
            self._views = None
        self.indexes = IndexGuard()


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


class IndexGuard:
    """Our indexes, checked once per process and again while something is wrong.

    Writes need the unique (user, course) index: without it two first writes can create two
    records. When it is missing and cannot be made, writes answer 503 naming the problem,
    /readyz says why, reads go on, and the log says what the operator should do.
    """

    RECHECK_SECONDS = 10

    def __init__(self):
        """Nothing checked yet."""
        self._lock = threading.Lock()
        self.checked_at = None
        self.problem = None
        self.present = frozenset()

    def ensure(self, collection):
        """Check (and create what is missing) on first use, then every few seconds while broken."""
        if self.checked_at is not None and (
                self.problem is None or time.monotonic() - self.checked_at < self.RECHECK_SECONDS):
            return
        with self._lock:
            if self.checked_at is not None and (
                    self.problem is None or time.monotonic() - self.checked_at < self.RECHECK_SECONDS):
                return
            problem, present = check_indexes(collection)
            if problem and problem != self.problem:
                log.error("writes refused: %s", problem)
            elif self.problem and not problem:
                log.warning("unique index on courseprogresses (user, course) is in place: writes resume")
            self.problem, self.present, self.checked_at = problem, present, time.monotonic()

    def require_unique(self):
        """503 while the unique (user, course) index is not in place."""
        if self.problem:
            raise Unavailable(self.problem, headers={"Retry-After": str(self.RECHECK_SECONDS)})


def _existing(collection):
    """{keys: index info} of the collection's indexes."""
    return {tuple(index["key"].items()): index for index in collection.list_indexes()}


def check_indexes(collection):
    """(problem or None, names of our indexes present), creating those that are missing.

    Not MongoEngine's ensure_indexes(): it passes `background`, which SecantusDB compares
    with the options of an existing index and refuses (code 86) when the original LMS already
    created `user_1_course_1`. An index with the same keys under any name is taken as ours,
    except that the (user, course) one must be unique.
    """
    existing = _existing(collection)
    problem, present = None, set()
    for spec in INDEXES:
        found = existing.get(spec.key_tuple)
        if found is not None:
            if spec.unique and (not found.get("unique") or "partialFilterExpression" in found):
                problem = (f"the index {found.get('name')!r} on courseprogresses (user, course) is not "
                           f"unique for every record, so two first writes could create two records; drop it "
                           f"(db.courseprogresses.dropIndex({found.get('name')!r})) and the service "
                           f"creates the unique one")
            else:
                present.add(spec.name)
            continue
        failure = _create(collection, spec)
        if failure is None:
            present.add(spec.name)
        elif spec.unique:
            problem = failure
        else:
            log.warning("index %s not created (queries still work, more slowly): %s", spec.name, failure)
    return problem, frozenset(present)


def _create(collection, spec):
    """Create one index; None when it worked, else what went wrong, worded for the operator."""
    try:
        collection.create_index(list(spec.keys), name=spec.name, unique=spec.unique)
    except OperationFailure as exc:
        message = (exc.details or {}).get("errmsg") or str(exc)
        if exc.code == UNAUTHORIZED:
            return (f"the database user may not create the index {spec.name} on courseprogresses: "
                    f"grant it createIndex, or create the index as an administrator "
                    f"(`flask --app wsgi progress ensure-indexes`) ({message})")
        if exc.code == DUPLICATE_KEY:
            return (f"building the unique index {spec.name} failed because courseprogresses holds "
                    f"several records for one (user, course): merge or remove the duplicates, then "
                    f"the service builds it ({message})")
        if exc.code in INDEX_CONFLICT_CODES:
            return f"an index named {spec.name} exists with other keys or options: drop or rename it ({message})"
        return f"creating the index {spec.name} failed: {message}"
    return None
