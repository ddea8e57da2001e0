"""Settings from the environment (contract section 5), with a testing variant."""
import os
import secrets
from pathlib import Path

DEFAULT_MONGODB_URI = "mongodb://127.0.0.1:{port}/lms?directConnection=true"
MIN_SECRET_BYTES = 32


class ConfigError(RuntimeError):
    """The configuration cannot be used; start-up stops instead of guessing."""


def _flag(value):
    """Read an environment flag the way operators write them."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _list(value):
    """Split a comma-separated setting, dropping blanks."""
    return [part.strip() for part in str(value).split(",") if part.strip()]


def from_env(environ=None):
    """Build the config mapping from environment variables."""
    env = os.environ if environ is None else environ
    port = env.get("EMBEDDED_DB_PORT", "27018")
    return {
        "PROGRESS_ENV": env.get("PROGRESS_ENV", "production"),
        "MONGODB_URI": env.get("MONGODB_URI") or DEFAULT_MONGODB_URI.format(port=port),
        "MONGODB_URI_IS_DEFAULT": not env.get("MONGODB_URI"),
        "JWT_SECRET_KEY": env.get("JWT_SECRET_KEY"),
        "JWT_IDENTITY_CLAIM": env.get("JWT_IDENTITY_CLAIM", "sub"),
        "JWT_TOKEN_LOCATION": _list(env.get("JWT_TOKEN_LOCATION", "cookies,headers")),
        "JWT_ACCESS_COOKIE_NAME": env.get("JWT_ACCESS_COOKIE_NAME", "token"),
        "JWT_COOKIE_CSRF_PROTECT": _flag(env.get("JWT_COOKIE_CSRF_PROTECT", "false")),
        "CLIENT_URL": env.get("CLIENT_URL", "http://localhost:5173"),
        "PROGRESS_LEGACY_FIRST_PATCH": _flag(env.get("PROGRESS_LEGACY_FIRST_PATCH", "false")),
        "PROGRESS_VAR_DIR": env.get("PROGRESS_VAR_DIR", "var"),
        "MONGODB_WRITE_CONCERN": env.get("MONGODB_WRITE_CONCERN", "majority"),
        "MONGODB_READ_PREFERENCE": env.get("MONGODB_READ_PREFERENCE"),
    }


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
