"""Values read from the LMS's collections, checked: a field of the wrong type is treated as absent.

The service reads documents other programs wrote (the original LMS, migrations, mongoimport,
an operator's shell): a course's `lectures` may be a string, a lecture's `duration` Infinity
(a live stream, as browsers report it), a user's `name` an object. Each such field gets the
answer a missing one gets, never a 500 (contract section 12), and is logged once per process
and document, so an operator can mend it without the log being flooded.

A kind (`text`, `array`, `key`, `seconds`, `moment`) gives the usable value or None.
"""
import logging
import math
import threading
from datetime import datetime

log = logging.getLogger("progress_service")

# Fields named in the log at most, per process (then one line saying so, and silence).
LOGGED_AT_MOST = 1000
_logged = set()
_lock = threading.Lock()


def odd(collection, field, document_id, value):
    """Log once that `collection`.`field` of a document holds something unusable."""
    key = (collection, field, str(document_id))
    with _lock:
        if key in _logged or len(_logged) > LOGGED_AT_MOST:
            return
        _logged.add(key)
        full = len(_logged) > LOGGED_AT_MOST
    log.warning("%s.%s of %s is %s, which the service cannot use: treated as absent", collection, field,
                document_id, _described(value))
    if full:
        log.warning("more stored fields of the wrong type are not logged until the service restarts")


def _described(value):
    """What an unusable value is, without quoting it (it may be anything, of anyone)."""
    if isinstance(value, float):
        return repr(value)  # inf, nan: the value is the problem
    return f"of type {type(value).__name__}"


def read(document, field, kind, collection, owner=None, label=None):
    """document[field] as `kind` (missing or null: None; unusable: None, logged once).

    `owner`: the stored document it is part of (an entry's record), whose `_id` the log names;
    `label`: the field's name in the log.
    """
    value = document.get(field)
    if value is None:
        return None
    found = kind(value)
    if found is None:
        odd(collection, label or field, (document if owner is None else owner).get("_id"), value)
    return found


def text(value):
    """A string, else None."""
    return value if isinstance(value, str) else None


def array(value):
    """An array, else None."""
    return value if isinstance(value, list) else None


def is_key(value):
    """Whether a stored id can name something here (null, a dict or a list cannot)."""
    return value is not None and not isinstance(value, (dict, list))


def key(value):
    """An id that can name something, else None."""
    return value if is_key(value) else None


def array_expression(path):
    """The same rule in an aggregation expression: the field at `path` ("$lectures") when it is
    an array, else [] (`$in` and `$filter` need an array; `$ifNull` would let a string through)."""
    return {"$cond": [{"$isArray": path}, path, []]}


def ids(document, field, collection):
    """The ids of an array field, in order; entries that cannot be ids are left out (logged)."""
    values = read(document, field, array, collection) or ()
    usable = [value for value in values if is_key(value)]
    if len(usable) != len(values):
        odd(collection, f"{field} entry", document.get("_id"), next(v for v in values if not is_key(v)))
    return usable


def seconds(value):
    """A finite number of seconds, not negative (a bool, NaN, Infinity, text: None)."""
    if isinstance(value, float):
        return value if 0 <= value < math.inf else None  # NaN compares false
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    return None


def moment(value):
    """A stored time (a datetime), else None."""
    return value if isinstance(value, datetime) else None
