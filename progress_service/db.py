"""Connection settings, lazy connection and indexes; the embedded and mongomock wiring.

Nothing here opens a socket until the first query: registering a MongoEngine connection
only stores settings, so gunicorn may fork (and --preload) after create_app().
"""
import logging
import threading
from urllib.parse import parse_qs, urlsplit

import mongoengine
from mongoengine.connection import _connection_settings, get_db
from pymongo import ReadPreference
from pymongo.errors import OperationFailure

from .progress.models import Course, CourseProgress, Lecture, User

log = logging.getLogger("progress_service")

DOCUMENTS = (CourseProgress, Course, Lecture, User)
# IndexOptionsConflict, IndexKeySpecsConflict: an index of that name or keys already exists.
INDEX_CONFLICT_CODES = (85, 86)
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

_indexed = set()
_index_lock = threading.Lock()


def _uri_options(uri):
    """The query options of a MongoDB URI, keys lower-cased."""
    return {key.lower(): value for key, value in parse_qs(urlsplit(uri).query).items()}


def connection_settings(config):
    """MongoClient settings: the URI's own options win over the config's defaults."""
    uri = config["MONGODB_URI"]
    options = _uri_options(uri)
    # pymongo lets keyword arguments override the URI: only fill in what the URI leaves unset.
    timeouts = {key: value for key, value in CLIENT_TIMEOUTS.items() if key.lower() not in options}
    settings = {"host": uri, "tz_aware": True, "retryWrites": True, "uuidRepresentation": "standard",
                **timeouts}
    if "w" not in options and config.get("MONGODB_WRITE_CONCERN"):
        concern = config["MONGODB_WRITE_CONCERN"]
        settings["w"] = int(concern) if str(concern).isdigit() else concern
    preference = (config.get("MONGODB_READ_PREFERENCE") or "").lower()
    if "readpreference" not in options and preference:
        settings["read_preference"] = READ_PREFERENCES[preference]
    if uri.startswith("mongomock://"):
        # The fast unit tests: an in-memory fake, imported only when asked for.
        import mongomock

        settings = {"host": "mongodb://" + uri[len("mongomock://"):], "tz_aware": True,
                    "uuidRepresentation": "standard", "mongo_client_class": mongomock.MongoClient}
    return settings


def init_db(config, alias):
    """Point our documents at `alias`; register it from MONGODB_URI unless the host has it."""
    if alias not in _connection_settings and config.get("MONGODB_URI"):
        mongoengine.register_connection(alias, **connection_settings(config))
    for document in DOCUMENTS:
        document._meta["db_alias"] = alias
    _forget_collections()


def _forget_collections():
    """Drop our documents' cached collections, so the next query uses the current connection.

    MongoEngine's disconnect() finds the documents to reset by class name, and a host's own
    `Course` or `User` document takes that name from ours: it would leave ours stale.
    """
    for document in DOCUMENTS:
        document._collection = None


def ensure_indexes(alias):
    """Create our indexes once per process (on first use, never at import)."""
    if alias in _indexed:
        return
    with _index_lock:
        if alias not in _indexed:
            _create_missing_indexes(CourseProgress._get_collection())
            _indexed.add(alias)


def _create_missing_indexes(collection):
    """Create the indexes CourseProgress declares whose keys the collection lacks.

    Not MongoEngine's ensure_indexes(): it passes `background`, which SecantusDB compares
    with the options of an existing index and refuses (code 86) when the original LMS
    already created `user_1_course_1`. An index with the same keys under any name or
    options is taken as ours; mongod ignores `background` since 4.2 either way.
    """
    existing = {tuple(index["key"].items()) for index in collection.list_indexes()}
    for spec in CourseProgress._meta["index_specs"]:
        keys = [(field, direction) for field, direction in spec["fields"]]
        if tuple(keys) in existing:
            continue
        options = {key: spec[key] for key in ("name", "unique", "sparse") if key in spec}
        try:
            collection.create_index(keys, **options)
        except OperationFailure as exc:
            if exc.code not in INDEX_CONFLICT_CODES:
                raise
            # Same name or keys with other options: the operator's index stays, we say so.
            log.warning("index %s not created: %s", options.get("name"), exc.details.get("errmsg"))


def ping(alias):
    """Raise unless the database answers."""
    get_db(alias).client.admin.command("ping")


def reset(alias):
    """Forget the connection and the index flag (tests, and reconnecting to another URI)."""
    mongoengine.disconnect(alias)
    _forget_collections()
    _indexed.discard(alias)
