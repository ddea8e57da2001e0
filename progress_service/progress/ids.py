"""The host's ids (contract section 11): a catalog's `parse_id` turns text into them.

A path id or an identity is text; inside, ids keep the host's type (ObjectId by default, or
int, str, UUID, ...), so records store them as the host stores its own and the host's queries
find them. Answers turn them back into strings in one place (present.oid).
"""
from bson import ObjectId
from bson.errors import InvalidId

# BSON has no integer beyond a signed 64-bit one: a larger id could never be queried.
BSON_INT_LIMIT = 2 ** 63


def parse_object_id(text):
    """The default parse_id: 24 hex digits as an ObjectId (the original LMS's ids)."""
    if len(text) != 24:
        raise ValueError("must be 24 hex digits (an ObjectId)")
    try:
        return ObjectId(text)
    except InvalidId as exc:
        raise ValueError("must be 24 hex digits (an ObjectId)") from exc


def parse_int(text):
    """An integer id (a sequence), within what BSON stores."""
    value = int(text)
    if not -BSON_INT_LIMIT <= value < BSON_INT_LIMIT:
        raise ValueError("too large for a BSON integer")
    return value


def id_parser(spec):
    """The parse function for a catalog's `parse_id` argument: None (ObjectId), int, str, uuid.UUID
    or any function of one string that raises ValueError for text that is not an id."""
    if spec is None or spec is ObjectId:
        # bson's ObjectId raises InvalidId, not ValueError: use the default, which says why.
        return parse_object_id
    if spec is int:
        return parse_int
    if not callable(spec):
        raise TypeError(f"parse_id must be a function of one string (int, str, uuid.UUID, ...), not {spec!r}")
    return spec
