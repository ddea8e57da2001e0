"""One mount's database: the host's MongoEngine connection, or a client of its own; its IndexGuard.

Nothing here is process-global. A mount reads through the connection the host registered
under PROGRESS_DB_ALIAS when there is one, else through a MongoClient of its own made from
MONGODB_URI. Either way nothing connects until the first query: a mount does no I/O, so
gunicorn may fork (and --preload) after create_app(). No MongoEngine Document is bound to a
database: the collections are looked up here, per mount, on every use.
"""
import os
import threading
from urllib.parse import parse_qs, urlsplit

from mongoengine.connection import get_db
from pymongo import MongoClient, ReadPreference

from . import compat
from .exceptions import MountError
from .indexes import DASHBOARD, INDEXES, STUDENTS, UNIQUE, IndexGuard  # noqa: F401  (re-exported)

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

    def __init__(self, settings, event_listeners=()):
        """Decide where the mount's data lives; refuse now rather than on the first request.

        `event_listeners` (pymongo's, e.g. the metrics' command timer) go to our own client; a
        host's connection was made without them (pymongo takes listeners only at creation).
        """
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
            self._client_kwargs = {**client_settings(settings), "event_listeners": list(event_listeners)}
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

    def ensure_indexes(self, wait=IndexGuard.BUILD_WAIT_SECONDS):
        """Check our indexes in the database in use now when due (creating what is missing); the
        guard. `wait`: how long to wait for a build (None: until it ends)."""
        records = self.records_for_write()  # first: a different database gets a guard of its own
        self.indexes.ensure(records, wait)
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
