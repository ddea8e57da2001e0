"""marshmallow schemas: strict input (path ids, bodies, paging) and the `<progress>` output."""
import base64
import binascii
import math
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone

import bson
from bson.codec_options import CodecOptions
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from .ids import parse_object_id
from .present import iso_time, oid
from .tally import STATUSES

MAX_BATCH = 200
MAX_PLAYED = 50  # intervals per lecture in one report (contract section 14)
# How far ahead of the server's clock a player's `at` may be: clocks drift, but a position
# from next week would outrank every real one until then.
MAX_CLOCK_AHEAD = timedelta(days=1)
MAX_PAGE_SIZE = 100
# Far past any real list, and (page - 1) * limit stays a 64-bit skip: a larger page was a 500.
MAX_PAGE = 1_000_000


# --- fields -----------------------------------------------------------------------------

# The parse_id of the mount serving the request (routes.authenticated sets it): ids are the host's.
PARSE_ID = ContextVar("progress_parse_id", default=parse_object_id)


@contextmanager
def ids_parsed_by(parse_id):
    """Ids loaded inside the block are parsed by `parse_id` (a catalog's, see ids.py)."""
    token = PARSE_ID.set(parse_id)
    try:
        yield
    finally:
        PARSE_ID.reset(token)


class HostId(fields.Field):
    """One of the host's ids: a string in, parsed by the mount's parse_id; a string out."""

    default_error_messages = {"invalid": "Not a valid id."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return PARSE_ID.get()(value)
        except ValueError as exc:
            raise self.make_error("invalid") from exc

    def _serialize(self, value, attr, obj, **kwargs):
        return oid(value)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: marshmallow's Boolean would take "true", 1 and "yes"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Seconds(fields.Float):
    """A JSON number of seconds, finite and >= 0, as a double; never a string or a boolean."""

    default_error_messages = {"invalid": "Not a valid number.", "negative": "Must be greater than or equal to 0.",
                              "too_large": "Number too large."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        try:
            # Stored as a BSON double (BSON has no integer beyond 2^63); an integer too
            # large for a double is refused here rather than failing later.
            seconds = float(value)
        except OverflowError as exc:
            raise self.make_error("too_large") from exc
        if not math.isfinite(seconds):
            raise self.make_error("special")
        if seconds < 0:
            raise self.make_error("negative")
        return seconds + 0.0  # -0.0 is stored as 0

    def _serialize(self, value, attr, obj, **kwargs):
        # JSON as JavaScript writes numbers: 30, not 30.0.
        if value is None:
            return 0
        return int(value) if float(value).is_integer() else float(value)


class Interval(fields.Field):
    """A played interval `[start, end]`: two numbers of seconds (as Seconds), start < end."""

    default_error_messages = {"invalid": "Not a [start, end] pair of seconds.",
                              "empty": "start must be less than end."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list) or len(value) != 2:
            raise self.make_error("invalid")
        start, end = (Seconds().deserialize(x) for x in value)
        if not start < end:
            raise self.make_error("empty")
        return start, end


class ClientTime(fields.Field):
    """When the player saw a position: an ISO 8601 time with its offset, or epoch
    milliseconds; an aware UTC datetime cut to the millisecond, from 1970 to a day ahead."""

    default_error_messages = {"invalid": "Not an ISO 8601 time with an offset, nor epoch milliseconds.",
                              "future": "More than a day ahead of the server's clock."}
    EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
    YEAR_10000_MS = 253_402_300_800_000

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) <= 40:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError as exc:
                raise self.make_error("invalid") from exc
            if moment.tzinfo is None:
                raise self.make_error("invalid")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < self.YEAR_10000_MS:
            moment = self.EPOCH + timedelta(milliseconds=value)
        else:
            raise self.make_error("invalid")
        moment = moment.astimezone(timezone.utc)
        if moment < self.EPOCH:
            raise self.make_error("invalid")
        if moment > datetime.now(timezone.utc) + MAX_CLOCK_AHEAD:
            raise self.make_error("future")
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class IsoTime(fields.Field):
    """A UTC time exactly as JavaScript's Date.toISOString() writes it."""

    def _serialize(self, value, attr, obj, **kwargs):
        return iso_time(value)


class StrictSchema(Schema):
    """Unknown fields are refused, by name."""

    class Meta:
        unknown = RAISE


# --- input ------------------------------------------------------------------------------

class CoursePathSchema(StrictSchema):
    """Path of the course endpoints."""

    course_id = HostId(required=True, data_key="courseId")


class LecturePathSchema(CoursePathSchema):
    """Path of the single-lecture PATCH."""

    lecture_id = HostId(required=True, data_key="lectureId")


NOTHING_TO_DO = "Send isCompleted, watchTime or both."


class LectureUpdateSchema(StrictSchema):
    """Body of PATCH /:courseId/lectures/:lectureId: the flag, the position, or both; the
    intervals played since the last report and when the position was seen (section 14)."""

    is_completed = StrictBoolean(data_key="isCompleted")
    watch_time = Seconds(data_key="watchTime")
    played = fields.List(Interval(), validate=validate.Length(max=MAX_PLAYED))
    at = ClientTime()

    @validates_schema
    def flag_or_position(self, data, **kwargs):
        """At least one of the two (contract section 8: only watchTime records the position)."""
        if "is_completed" not in data and "watch_time" not in data:
            raise ValidationError({"isCompleted": [NOTHING_TO_DO], "watchTime": [NOTHING_TO_DO]})


class BatchItemSchema(LectureUpdateSchema):
    """One item of the batch PATCH."""

    lecture = HostId(required=True)


class BatchUpdateSchema(StrictSchema):
    """Body of PATCH /:courseId/lectures: 1 to 200 items, each lecture once."""

    lectures = fields.List(
        fields.Nested(BatchItemSchema), required=True, validate=validate.Length(min=1, max=MAX_BATCH)
    )

    @validates_schema
    def each_lecture_once(self, data, **kwargs):
        """A lecture named twice would make 'all in one save' ambiguous."""
        seen, errors = set(), {}
        for index, item in enumerate(data.get("lectures", [])):
            if item["lecture"] in seen:
                errors[index] = {"lecture": ["Lecture appears more than once."]}
            seen.add(item["lecture"])
        if errors:
            raise ValidationError({"lectures": errors})


class PageQuerySchema(Schema):
    """?page=&limit= of the list endpoints (other query parameters are ignored)."""

    class Meta:
        # marshmallow's default would refuse `?page=2&utm_source=x` with a 400.
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, strict=False, validate=validate.Range(min=1, max=MAX_PAGE))
    limit = fields.Integer(load_default=20, strict=False, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


SORTS = ("createdAt", "lastAccessed", "percentage")
ORDERS = ("asc", "desc")
CURSOR_KEYS = {"sort", "order", "status", "value", "id"}
MAX_CURSOR = 300
CURSOR_CODEC = CodecOptions(tz_aware=True)


def encode_cursor(position):
    """A list position ({sort, order, status, value, id}) as the opaque text of `next`."""
    return base64.urlsafe_b64encode(bson.encode(position)).decode().rstrip("=")


def decode_cursor(text):
    """The position a `next` text stands for; ValueError when it is not one."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_CURSOR:
        raise ValueError(text)
    try:
        position = bson.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), CURSOR_CODEC)
    except (binascii.Error, bson.errors.BSONError, ValueError, TypeError, OverflowError) as exc:
        raise ValueError(text) from exc
    value = position.get("value")
    if set(position) != CURSOR_KEYS or not isinstance(value, (int, datetime)) or isinstance(value, bool) \
            or position["sort"] not in SORTS or position["order"] not in ORDERS \
            or position["status"] not in (None, *STATUSES) or isinstance(position["id"], (dict, list)):
        raise ValueError(text)
    return position


class ListCursor(fields.Field):
    """The `after` of a list: the `next` of its previous page, decoded."""

    default_error_messages = {"invalid": "Not the `next` of a page of this list."}

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return decode_cursor(value)
        except ValueError as exc:
            raise self.make_error("invalid") from exc


class StudentsQuerySchema(PageQuerySchema):
    """?page=&limit=&after=&sort=&order=&status= of the instructor's student list."""

    page = fields.Integer(load_default=None, strict=False, validate=validate.Range(min=1, max=MAX_PAGE))
    after = ListCursor(load_default=None)
    sort = fields.String(load_default="createdAt", validate=validate.OneOf(SORTS))
    order = fields.String(load_default="asc", validate=validate.OneOf(ORDERS))
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))

    @validates_schema
    def one_way_to_page(self, data, **kwargs):
        """`after` continues the list it came from: not with `page`, nor another sort or filter."""
        after = data.get("after")
        if after is None:
            return
        if data.get("page") is not None:
            raise ValidationError({"after": ["Send page or after, not both."]})
        asked = (data.get("sort"), data.get("order"), data.get("status"))
        if (after["sort"], after["order"], after["status"]) != asked:
            raise ValidationError({"after": ["This cursor is of another sort, order or status: "
                                             "send the same ones as for the page it came from."]})


# --- output -----------------------------------------------------------------------------

# allow_none marks what may be null (contract section 3: keys are always present, null when
# unknown); the OpenAPI document says `nullable` from it.

class UserOutSchema(Schema):
    """The record's user: never a password."""

    id = HostId(data_key="_id")
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    avatar = fields.String(allow_none=True)


class CourseOutSchema(Schema):
    """The record's course."""

    id = HostId(data_key="_id")
    title = fields.String(allow_none=True)
    thumbnail = fields.String(allow_none=True)


class LectureProgressOutSchema(Schema):
    """One current lecture's state."""

    lecture = HostId()
    is_completed = fields.Boolean(data_key="isCompleted")
    watch_time = Seconds(data_key="watchTime")
    last_watched = IsoTime(data_key="lastWatched", allow_none=True)
    watched_seconds = Seconds(data_key="watchedSeconds")


class ResumeOutSchema(Schema):
    """Where the student should pick up."""

    lecture = HostId()
    watch_time = Seconds(data_key="watchTime", attribute="watchTime")


class ProgressOutSchema(Schema):
    """`<progress>`: the same shape from every endpoint."""

    id = HostId(data_key="_id")
    user = fields.Nested(UserOutSchema)
    course = fields.Nested(CourseOutSchema)
    is_completed = fields.Boolean(data_key="isCompleted")
    completion_percentage = fields.Integer(data_key="completionPercentage")
    lecture_progress = fields.List(fields.Nested(LectureProgressOutSchema), data_key="lectureProgress")
    last_accessed = IsoTime(data_key="lastAccessed", allow_none=True)
    created_at = IsoTime(data_key="createdAt", allow_none=True)
    updated_at = IsoTime(data_key="updatedAt", allow_none=True)
    completed_at = IsoTime(data_key="completedAt", allow_none=True)
    resume = fields.Nested(ResumeOutSchema, allow_none=True)




# --- output of the added views (contract section 7) ---------------------------------------

class RecordFiguresOutSchema(Schema):
    """What the list views show of a record: the rule's figures and the last access."""

    completion_percentage = fields.Integer(data_key="completionPercentage")
    is_completed = fields.Boolean(data_key="isCompleted")
    completed_at = IsoTime(data_key="completedAt", allow_none=True)
    last_accessed = IsoTime(data_key="lastAccessed", allow_none=True)


class DashboardItemOutSchema(RecordFiguresOutSchema):
    """One course on the student's dashboard."""

    course = fields.Nested(CourseOutSchema)
    resume = fields.Nested(ResumeOutSchema, allow_none=True)


class StudentUserOutSchema(Schema):
    """A student as the instructor sees them: no avatar, never a password."""

    id = HostId(data_key="_id")
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class StudentOutSchema(RecordFiguresOutSchema):
    """One student of a course, for its instructor."""

    user = fields.Nested(StudentUserOutSchema)


class DashboardPageOutSchema(Schema):
    """A page of the dashboard."""

    items = fields.List(fields.Nested(DashboardItemOutSchema))
    page = fields.Integer()
    limit = fields.Integer()
    total = fields.Integer()


class StudentsPageOutSchema(DashboardPageOutSchema):
    """A page of a course's students (`page` is null on a page asked for by cursor)."""

    items = fields.List(fields.Nested(StudentOutSchema))
    page = fields.Integer(allow_none=True)
    next = fields.String(allow_none=True)
    as_of = IsoTime(data_key="asOf")


class SummaryLectureOutSchema(Schema):
    """How many records have one current lecture completed."""

    lecture = HostId()
    title = fields.String(allow_none=True)
    completed = fields.Integer()


class SummaryOutSchema(Schema):
    """The instructor's figures for a course."""

    students = fields.Integer()
    completed = fields.Integer()
    average_percentage = fields.Float(data_key="averagePercentage")
    lectures = fields.List(fields.Nested(SummaryLectureOutSchema))
    as_of = IsoTime(data_key="asOf")


