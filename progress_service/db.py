"""Connection settings, lazy connection and indexes; the embedded and mongomock wiring.

Nothing here opens a socket until the first query: registering a MongoEngine connection
only stores settings, so gunicorn may fork (and --preload) after create_app().
"""
import threading
from urllib.parse import parse_qs, urlsplit

import mongoengine
from mongoengine.connection import _connection_settings, get_db
from pymongo import ReadPreference

from .progress.models import Course, CourseProgress, Lecture, User

DOCUMENTS = (CourseProgress, Course, Lecture, User)
# Below gunicorn's 30 s worker timeout and within the 10 s promised while the database is
# down: a request fails fast with 503 instead of hanging a worker.
CLIENT_TIMEOUTS = {"serverSelectionTimeoutMS": 3000, "connectTimeoutMS": 2000, "socketTimeoutMS": 5000}
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
    settings = {"host": uri, "tz_aware": True, "retryWrites": True, "uuidRepresentation": "standard",
                **CLIENT_TIMEOUTS}
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
        if document._meta.get("db_alias", mongoengine.DEFAULT_CONNECTION_NAME) != alias:
            document._meta["db_alias"] = alias
            document._collection = None


def ensure_indexes(alias):
    """Create our indexes once per process (on first use, never at import)."""
    if alias in _indexed:
        return
    with _index_lock:
        if alias not in _indexed:
            CourseProgress.ensure_indexes()
            _indexed.add(alias)


def ping(alias):
    """Raise unless the database answers."""
    get_db(alias).client.admin.command("ping")


def reset(alias):
    """Forget the connection and the index flag (tests, and reconnecting to another URI)."""
    mongoengine.disconnect(alias)
    _indexed.discard(alias)
