"""The standalone app's settings from the environment (contract section 5).

The extension reads the same keys from `app.config` (progress/settings.py); here they come
from environment variables, typed, with the standalone app's own defaults.
"""
import os
import secrets
from pathlib import Path

from ..progress.settings import DEFAULTS, flag, split_list
from ..progress.signin import ALGORITHM, OWN_DEFAULTS

DEFAULT_MONGODB_URI = "mongodb://127.0.0.1:{port}/lms?directConnection=true"
MIN_SECRET_BYTES = 32
# Passed through as they are when set (the extension and flask-jwt-extended read them).
OPTIONAL = ("JWT_DECODE_AUDIENCE", "JWT_DECODE_ISSUER", "PROGRESS_DB_ALIAS", "MONGODB_READ_PREFERENCE",
            "PROGRESS_XAPI_ENDPOINT", "PROGRESS_XAPI_USERNAME", "PROGRESS_XAPI_PASSWORD",
            "PROGRESS_XAPI_HOMEPAGE")


class ConfigError(RuntimeError):
    """The configuration cannot be used; start-up stops instead of guessing."""


def from_env(environ=None):
    """Build the config mapping from environment variables."""
    env = os.environ if environ is None else environ
    port = env.get("EMBEDDED_DB_PORT", "27018")
    config = {
        "PROGRESS_ENV": env.get("PROGRESS_ENV", "production"),
        "MONGODB_URI": env.get("MONGODB_URI") or DEFAULT_MONGODB_URI.format(port=port),
        "MONGODB_URI_IS_DEFAULT": not env.get("MONGODB_URI"),
        "JWT_SECRET_KEY": env.get("JWT_SECRET_KEY"),
        "JWT_IDENTITY_CLAIM": env.get("JWT_IDENTITY_CLAIM", OWN_DEFAULTS["JWT_IDENTITY_CLAIM"]),
        "JWT_TOKEN_LOCATION": split_list(env.get("JWT_TOKEN_LOCATION", "cookies,headers")),
        "JWT_ACCESS_COOKIE_NAME": env.get("JWT_ACCESS_COOKIE_NAME", "token"),
        "JWT_COOKIE_CSRF_PROTECT": flag(env.get("JWT_COOKIE_CSRF_PROTECT", "false")),
        "CLIENT_URL": env.get("CLIENT_URL", DEFAULTS["CLIENT_URL"]),
        "PROGRESS_LEGACY_FIRST_PATCH": flag(env.get("PROGRESS_LEGACY_FIRST_PATCH", "false")),
        "PROGRESS_MAX_BODY_BYTES": int(env.get("PROGRESS_MAX_BODY_BYTES", DEFAULTS["PROGRESS_MAX_BODY_BYTES"])),
        "PROGRESS_ENROLLMENT": env.get("PROGRESS_ENROLLMENT", DEFAULTS["PROGRESS_ENROLLMENT"]),
        "PROGRESS_COMPLETE_AT": env.get("PROGRESS_COMPLETE_AT", DEFAULTS["PROGRESS_COMPLETE_AT"]),
        "PROGRESS_COMPLETE_BY": env.get("PROGRESS_COMPLETE_BY", DEFAULTS["PROGRESS_COMPLETE_BY"]),
        "PROGRESS_VAR_DIR": env.get("PROGRESS_VAR_DIR", "var"),
        "MONGODB_WRITE_CONCERN": env.get("MONGODB_WRITE_CONCERN", "majority"),
        "PROGRESS_METRICS": flag(env.get("PROGRESS_METRICS", "on")),
    }
    config.update({key: env[key] for key in OPTIONAL if env.get(key)})
    return config


def pin_algorithm(config):
    """HS256 only, whatever the overrides ask (contract section 4): this app signs its CLI's
    tokens with it, and the mount's own check takes nothing else. Our own app's config, so
    written here; a host's JWT settings are never written (contract section 11)."""
    config["JWT_ALGORITHM"] = ALGORITHM
    config["JWT_DECODE_ALGORITHMS"] = [ALGORITHM]
    return config


def dev_secret(var_dir):
    """Return the development key in var/dev-secret, generating it once."""
    path = Path(var_dir) / "dev-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with 0600 so the key is readable by its owner only; O_EXCL so two
        # workers starting together agree on one key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = None
        if fd is not None:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def resolve_secret(config):
    """Fill JWT_SECRET_KEY or refuse: production never falls back to a default."""
    secret = config.get("JWT_SECRET_KEY")
    env = config.get("PROGRESS_ENV", "production")
    if env not in ("production", "development", "testing"):
        raise ConfigError(f"PROGRESS_ENV must be production, development or testing, not {env!r}")
    if not secret:
        if env == "production":
            raise ConfigError("JWT_SECRET_KEY is required when PROGRESS_ENV=production")
        config["JWT_SECRET_KEY"] = secret = dev_secret(config.get("PROGRESS_VAR_DIR", "var"))
        config["PROGRESS_DEV_SECRET_USED"] = True
    if env == "production" and len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes")
    return config
