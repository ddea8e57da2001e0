"""One mount's settings, read from the app's config with their defaults (contract section 5).

Reading never writes: a host's `app.config` is left exactly as it was (contract section 9).
Values may be what the environment gives (strings) or what a host sets in Python. The `JWT_*`
keys are signin.py's, read only by a mount that uses a JWT.
"""
from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import urlsplit

DEFAULT_PREFIX = "/api/v1/progress"
DEFAULTS = {
    "CLIENT_URL": "http://localhost:5173",
    "PROGRESS_LEGACY_FIRST_PATCH": False,
    "PROGRESS_DB_ALIAS": "default",
    "PROGRESS_MAX_BODY_BYTES": 64 * 1024,
    "PROGRESS_ENROLLMENT": "required",
    "PROGRESS_COMPLETE_AT": "0.9",
    "PROGRESS_COMPLETE_BY": "position",
    # Writes made elsewhere (the original app) reach the instructor's figures within this.
    "PROGRESS_SUMMARY_REFRESH_SECONDS": "30",
}
ENROLLMENT_MODES = ("required", "off")
COMPLETE_BY = ("position", "watched")


def flag(value):
    """A boolean setting as operators write it ("true", "1", "on") or as Python gives it."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def split_list(value):
    """A comma-separated setting (or a list) as a list, blanks dropped."""
    parts = value if isinstance(value, (list, tuple, set, frozenset)) else str(value or "").split(",")
    return [str(part).strip() for part in parts if str(part).strip()]


def origins(value):
    """CLIENT_URL as a set of origins: comma-separated, a trailing / ignored."""
    return frozenset(part.rstrip("/") for part in split_list(value))


def complete_at(value):
    """PROGRESS_COMPLETE_AT as an exact fraction in (0, 1], or None for `off`."""
    if value is None or str(value).strip().lower() == "off":
        return None
    try:
        # From the decimal text, so 0.9 is exactly nine tenths (contract section 8).
        fraction = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        fraction = None
    if fraction is None or not 0 < fraction <= 1:
        raise ValueError(f"PROGRESS_COMPLETE_AT must be a number in (0, 1] or off, not {value!r}")
    return fraction


def complete_by(value):
    """PROGRESS_COMPLETE_BY: `position` (the playhead, contract section 8) or `watched` (the
    seconds actually played, section 14)."""
    mode = str(value).strip().lower()
    if mode not in COMPLETE_BY:
        raise ValueError(f"PROGRESS_COMPLETE_BY must be position or watched, not {value!r}")
    return mode


def positive_seconds(name, value):
    """A number of seconds > 0 (a fraction is fine)."""
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
    return seconds


def enrollment(value):
    """PROGRESS_ENROLLMENT: `required` or `off`."""
    mode = str(value).strip().lower()
    if mode not in ENROLLMENT_MODES:
        raise ValueError(f"PROGRESS_ENROLLMENT must be required or off, not {value!r}")
    return mode


@dataclass(frozen=True)
class XapiSettings:
    """Where statements go (contract section 10); absent when the endpoint is unset."""

    endpoint: str
    username: str
    password: str
    homepage: str

    def __repr__(self):
        """Never show the password (mounts are logged and printed in tracebacks)."""
        return f"XapiSettings(endpoint={self.endpoint!r}, homepage={self.homepage!r})"


@dataclass(frozen=True)
class Settings:
    """What one mount reads from its app's config, once, at mount time."""

    origins: frozenset
    legacy_first_patch: bool
    db_alias: str
    mongodb_uri: str
    max_body: int
    enrollment_required: bool
    complete_at: Fraction
    complete_by: str
    write_concern: str
    read_preference: str
    xapi: XapiSettings
    summary_refresh: float = 30.0


def xapi_settings(get):
    """The LRS settings, or None when no endpoint is set (then no statements, no thread)."""
    endpoint = (get("PROGRESS_XAPI_ENDPOINT") or "").strip()
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"PROGRESS_XAPI_ENDPOINT must be an http:// or https:// URL, not {endpoint!r}")
    homepage = (get("PROGRESS_XAPI_HOMEPAGE") or "").strip().rstrip("/")
    if not homepage:
        raise ValueError("PROGRESS_XAPI_HOMEPAGE is required with PROGRESS_XAPI_ENDPOINT: "
                         "it names the LMS in every statement's actor and activity ids")
    return XapiSettings(endpoint, get("PROGRESS_XAPI_USERNAME") or "", get("PROGRESS_XAPI_PASSWORD") or "",
                        homepage)


def read(config):
    """The mount's Settings from `config` (an app.config), defaults where unset; writes nothing."""

    def get(key):
        """config[key], or its default."""
        return config.get(key, DEFAULTS.get(key))

    return Settings(
        origins=origins(get("CLIENT_URL")),
        legacy_first_patch=flag(get("PROGRESS_LEGACY_FIRST_PATCH")),
        db_alias=get("PROGRESS_DB_ALIAS") or DEFAULTS["PROGRESS_DB_ALIAS"],
        mongodb_uri=get("MONGODB_URI"),
        max_body=int(get("PROGRESS_MAX_BODY_BYTES")),
        enrollment_required=enrollment(get("PROGRESS_ENROLLMENT")) == "required",
        complete_at=complete_at(get("PROGRESS_COMPLETE_AT")),
        complete_by=complete_by(get("PROGRESS_COMPLETE_BY")),
        write_concern=get("MONGODB_WRITE_CONCERN"),
        read_preference=get("MONGODB_READ_PREFERENCE"),
        xapi=xapi_settings(get),
        summary_refresh=positive_seconds("PROGRESS_SUMMARY_REFRESH_SECONDS", get("PROGRESS_SUMMARY_REFRESH_SECONDS")),
    )
