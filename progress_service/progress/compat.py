"""The one place that reads a library's private internals; each use says what it relies on.

tests/test_compat.py fails if a library changes what is relied on here, so an upgrade that
breaks it is caught by the suite, not by a host in production.
"""
from mongoengine import connection as mongoengine_connection


def alias_registered(alias):
    """True when MongoEngine has a connection registered (or open) under `alias`.

    MongoEngine has no public "is this alias defined?" without connecting: get_db() and
    get_connection() open a client, and a mount must do no I/O (contract section 9). This
    reads the two module dicts `register_connection()`/`connect()` fill (MongoEngine 0.29:
    `_connection_settings` for registered settings, `_connections` for open clients).
    """
    return alias in mongoengine_connection._connection_settings or alias in mongoengine_connection._connections


def has_own_decode_key(manager):
    """True when a flask-jwt-extended JWTManager has a `decode_key_loader` of the host's.

    Such a host finds its verification key itself (a JWKS, say), so no JWT_PUBLIC_KEY is
    needed. flask-jwt-extended 4.7 keeps the loader in `_decode_key_callback`, the default
    being `default_callbacks.default_decode_key_callback`; it has no public accessor.
    """
    from flask_jwt_extended.default_callbacks import default_decode_key_callback

    return getattr(manager, "_decode_key_callback", default_decode_key_callback) is not default_decode_key_callback
