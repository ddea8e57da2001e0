"""Configuration (contract section 5): production refuses to guess, development has a key."""
import os
import socket
import stat

import pytest

from progress_service import create_app
from progress_service.progress import mount_of
from progress_service.standalone.config import ConfigError, from_env, resolve_secret


def test_defaults_from_an_empty_environment():
    """The contract's defaults."""
    config = from_env({})
    assert config["PROGRESS_ENV"] == "production"
    assert config["MONGODB_URI"].startswith("mongodb://127.0.0.1:27018/lms")
    assert config["JWT_IDENTITY_CLAIM"] == "sub"
    assert config["JWT_TOKEN_LOCATION"] == ["cookies", "headers"]
    assert config["JWT_ACCESS_COOKIE_NAME"] == "token"
    assert config["JWT_COOKIE_CSRF_PROTECT"] is False
    assert config["CLIENT_URL"] == "http://localhost:5173"
    assert config["PROGRESS_LEGACY_FIRST_PATCH"] is False


def test_environment_is_read():
    """Flags and lists as operators write them."""
    config = from_env({"EMBEDDED_DB_PORT": "27555", "PROGRESS_LEGACY_FIRST_PATCH": "true",
                       "JWT_TOKEN_LOCATION": "cookies", "JWT_IDENTITY_CLAIM": "userId"})
    assert ":27555/" in config["MONGODB_URI"]
    assert config["PROGRESS_LEGACY_FIRST_PATCH"] is True
    assert config["JWT_TOKEN_LOCATION"] == ["cookies"]
    assert config["JWT_IDENTITY_CLAIM"] == "userId"


def test_production_without_a_secret_refuses_to_start(monkeypatch):
    """A bare create_app() in production with no JWT_SECRET_KEY stops, it does not guess."""
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    monkeypatch.delenv("PROGRESS_ENV", raising=False)
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY is required"):
        create_app()


def test_production_refuses_a_short_secret():
    """At least 32 bytes."""
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        resolve_secret({"PROGRESS_ENV": "production", "JWT_SECRET_KEY": "short"})


def test_unknown_environment_is_refused():
    """A typo in PROGRESS_ENV is not silently production or development."""
    with pytest.raises(ConfigError):
        resolve_secret({"PROGRESS_ENV": "prod", "JWT_SECRET_KEY": "x" * 40})


def test_development_generates_one_key_and_keeps_it(tmp_path):
    """var/dev-secret is created once (owner-only) and reused."""
    first = resolve_secret({"PROGRESS_ENV": "development", "PROGRESS_VAR_DIR": str(tmp_path)})
    second = resolve_secret({"PROGRESS_ENV": "development", "PROGRESS_VAR_DIR": str(tmp_path)})
    assert first["JWT_SECRET_KEY"] == second["JWT_SECRET_KEY"]
    assert len(first["JWT_SECRET_KEY"]) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "dev-secret").st_mode)
    assert mode == 0o600


def test_create_app_opens_no_connection(monkeypatch):
    """The driver connects lazily: create_app() registers settings and opens nothing."""
    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": "x" * 40,
                      "MONGODB_URI": "mongodb://127.0.0.1:9/never?directConnection=true"})
    assert "progress" in app.extensions
    mount_of(app).database.close()
