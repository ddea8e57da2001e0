"""What progress_service.progress.compat relies on in other libraries' internals.

Each test fails when an upgrade changes what the one function reading internals expects,
so the suite, not a host in production, finds out.
"""
import uuid

import mongoengine
from flask_jwt_extended import JWTManager

from progress_service.progress import compat


def test_an_alias_is_registered_once_register_connection_or_connect_named_it():
    """register_connection (no client yet) and connect (a client) both count; disconnect forgets."""
    alias = f"compat-{uuid.uuid4().hex[:8]}"
    assert not compat.alias_registered(alias)
    mongoengine.register_connection(alias, host="mongodb://127.0.0.1:9/compat", connect=False)
    try:
        assert compat.alias_registered(alias)
    finally:
        mongoengine.disconnect(alias)
    assert not compat.alias_registered(alias)


def test_an_open_connection_counts_even_after_its_settings_are_gone(monkeypatch):
    """The open client is in the second dict MongoEngine keeps."""
    alias = f"compat-{uuid.uuid4().hex[:8]}"
    mongoengine.connect(alias=alias, host="mongodb://127.0.0.1:9/compat", connect=False,
                        serverSelectionTimeoutMS=100)
    try:
        mongoengine.get_connection(alias)
        monkeypatch.delitem(mongoengine.connection._connection_settings, alias)
        assert compat.alias_registered(alias)
    finally:
        monkeypatch.undo()
        mongoengine.disconnect(alias)


def test_the_dicts_read_are_the_ones_mongoengine_fills():
    """If MongoEngine renames or retypes them, this fails before a host does."""
    assert isinstance(mongoengine.connection._connection_settings, dict)
    assert isinstance(mongoengine.connection._connections, dict)


def test_a_host_decode_key_loader_is_told_from_the_default():
    """flask-jwt-extended's JWTManager: the default loader, then the host's own one."""
    manager = JWTManager()
    assert not compat.has_own_decode_key(manager)

    @manager.decode_key_loader
    def from_jwks(header, claims):
        return "a key found elsewhere"

    assert compat.has_own_decode_key(manager)
