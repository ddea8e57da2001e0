"""The OpenAPI 3 document of the progress API, generated from the marshmallow schemas.

Paths and methods come from the app's URL map (so a host's prefix shows), summaries from
the views' docstrings, parameters and bodies from the schemas in schemas.py. What only
this module knows is which schemas and statuses each view has (OPERATIONS).
"""
import json
from dataclasses import dataclass

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Blueprint, current_app, request
from marshmallow import Schema, fields, validate

from . import schemas
from .ids import parse_object_id

bp = Blueprint("progress_openapi", __name__)
SUFFIX = "_openapi"  # this blueprint is registered as "<progress blueprint name>_openapi"
OPENAPI_VERSION = "3.0.3"  # what the bundled Swagger UI and Schemathesis read
OBJECT_ID_PATTERN = "^[0-9a-fA-F]{24}$"
ISO_TIME_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
ERRORS = {
    400: "Malformed id, invalid body or query (`errors` names the fields), or a lecture "
         "that is not in this course",
    401: "No token, or an invalid, expired or unusable one",
    403: "A cookie-authenticated write from an origin that is not allowed; the caller is not "
         "enrolled in the course (nor its instructor or an admin); or (instructor views) "
         "neither the course's instructor nor an admin",
    404: "Course not found, or no progress record for this user and course",
    409: "The record kept changing under concurrent writes; retry after `Retry-After`",
    413: "Request body too large (a declared length over the limit is refused first, on any method)",
    503: "The database is unavailable, or (writes) its unique index on (user, course) is not "
         "in place, or (instructor views) the course's figures are being counted; retry after "
         "`Retry-After`",
}
PREFER = {"in": "header", "name": "Prefer", "required": False,
          "description": "`return=minimal` (RFC 7240): answer 204 with no body once the change is stored",
          "schema": {"type": "string"}}
MINIMAL_ANSWER = {"description": "Stored; no body, as asked by `Prefer: return=minimal`",
                  "headers": {"Preference-Applied": {"description": "`return=minimal`",
                                                     "schema": {"type": "string", "enum": ["return=minimal"]}}}}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


@dataclass(frozen=True)
class Operation:
    """What a view takes and answers, beyond what its route and docstring say."""

    data: type
    errors: tuple
    path: type = None
    query: type = None
    body: type = None
    message: str = None
    tag: str = "progress"
    writes: bool = False
    csv: bool = False  # the answer is a CSV file, not the envelope (errors still are)


# Every view of the progress blueprint (by endpoint name) except the routing fallback;
# tests/test_openapi.py fails when a route has no entry here.
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 503)
OPERATIONS = {
    "dashboard": Operation(schemas.DashboardPageOutSchema, (400, 401, 413, 503),
                           query=schemas.PageQuerySchema),
    "get_progress": Operation(schemas.ProgressOutSchema, (400, 401, 403, 404, 413, 503),
                              path=schemas.CoursePathSchema),
    "mark_lecture": Operation(schemas.ProgressOutSchema, WRITE_ERRORS, writes=True,
                              path=schemas.LecturePathSchema, body=schemas.LectureUpdateSchema),
    "mark_lecture_by_post": Operation(schemas.ProgressOutSchema, WRITE_ERRORS, writes=True,
                                      path=schemas.LecturePathSchema, body=schemas.LectureUpdateSchema),
    "mark_lectures": Operation(schemas.ProgressOutSchema, WRITE_ERRORS, writes=True,
                               path=schemas.CoursePathSchema, body=schemas.BatchUpdateSchema),
    "complete_course": Operation(schemas.ProgressOutSchema, WRITE_ERRORS, writes=True,
                                 path=schemas.CoursePathSchema, message="Course marked as completed"),
    "reset_course": Operation(schemas.ProgressOutSchema, WRITE_ERRORS, writes=True,
                              path=schemas.CoursePathSchema, message="Course progress has been reset"),
    "course_summary": Operation(schemas.SummaryOutSchema, (400, 401, 403, 404, 413, 503),
                                path=schemas.CoursePathSchema, tag="instructor"),
    "course_students": Operation(schemas.StudentsPageOutSchema, (400, 401, 403, 404, 413, 503),
                                 path=schemas.CoursePathSchema, query=schemas.StudentsQuerySchema,
                                 tag="instructor"),
    "course_students_csv": Operation(None, (400, 401, 403, 404, 413, 503), path=schemas.CoursePathSchema,
                                     tag="instructor", csv=True),
}
CSV_ANSWER = {"description": "Every student: user, name, email, completionPercentage, isCompleted, "
                             "completedAt, lastAccessed, then one true/false column per current lecture "
                             "(headed by its title, or its id); streamed",
              "headers": {"Content-Disposition": {"description": "The file's name: students-<courseId>.csv",
                                                  "schema": {"type": "string",
                                                             "pattern": '^attachment; filename="students-[^"]+\\.csv"$'}}},
              "content": {"text/csv": {"schema": {"type": "string"}}}}


class FailureSchema(Schema):
    """The failure envelope (errors.failure builds it)."""

    status = fields.String(required=True, validate=validate.OneOf(["fail", "error"]))
    message = fields.String(required=True)
    # A field name as the client sent it -> messages; a batch nests them by item index.
    errors = fields.Dict(keys=fields.String())


def schema_name(schema):
    """Component names without the Python suffixes: ProgressOutSchema -> Progress."""
    return resolve_schema_cls(schema).__name__.removesuffix("Schema").removesuffix("Out")


def envelope(data_schema, with_message=False):
    """The success envelope around one output schema (errors.success builds it)."""
    name = schema_name(data_schema)
    body = {"status": fields.String(required=True, validate=validate.OneOf(["success"])),
            "data": fields.Nested(data_schema, required=True)}
    if with_message:
        body["message"] = fields.String(required=True)
        name += "Message"
    return Schema.from_dict(body, name=f"{name}Envelope")


def custom_fields_for(parse_id):
    """The apispec attribute function giving OpenAPI types to our own marshmallow fields
    (apispec knows only the built-in ones); ids have the 24-hex pattern only when the mount
    parses them as ObjectIds."""
    host_id = {"type": "string"}
    if parse_id is parse_object_id:
        host_id["pattern"] = OBJECT_ID_PATTERN

    def custom_fields(self, field, **kwargs):
        """Bound to its converter (`self`), merged over the rest."""
        if isinstance(field, schemas.HostId):
            return dict(host_id)
        if isinstance(field, schemas.IsoTime):
            return {"type": "string", "format": "date-time", "pattern": ISO_TIME_PATTERN}
        if isinstance(field, schemas.Seconds):
            return {"type": "number", "minimum": 0}
        if isinstance(field, schemas.Interval):
            return {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "maxItems": 2,
                    "description": "[start, end] seconds of the video played, start < end"}
        if isinstance(field, schemas.ClientTime):
            return {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number", "minimum": 0}],
                    "description": "when the player saw this position (its own clock): ISO 8601 with "
                                   "an offset, or epoch milliseconds"}
        if isinstance(field, schemas.ListCursor):
            return {"type": "string", "description": "The `next` of the previous page"}
        return {}

    return custom_fields


def security_schemes(places):
    """Where the mount takes the caller's credential (signin.Places), as security schemes."""
    found = {}
    if "cookies" in places.locations:
        found["cookieAuth"] = {"type": "apiKey", "in": "cookie", "name": places.cookie,
                               "description": places.cookie_description}
    if "headers" in places.locations:
        header, kind = places.header, places.header_type
        found["bearerAuth"] = (
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            if (header, kind) == ("Authorization", "Bearer")
            else {"type": "apiKey", "in": "header", "name": header, "description": f"{kind} <jwt>"}
        )
    return found


def routes(app, blueprint_name):
    """The documented rule of each view of the blueprint (the shortest spelling of a path)."""
    found = {}
    for rule in app.url_map.iter_rules():
        owner, _, view_name = rule.endpoint.rpartition(".")
        if owner == blueprint_name and view_name in OPERATIONS:
            if rule.endpoint not in found or len(rule.rule) < len(found[rule.endpoint].rule):
                found[rule.endpoint] = rule
    return found


def openapi_path(rule, path_schema):
    """/prefix/<course_id> -> /prefix/{courseId}: the names clients send, from the schema."""
    path = rule.rule
    for name, field in (path_schema().fields.items() if path_schema else ()):
        path = path.replace(f"<{name}>", "{%s}" % (field.data_key or name))
    if "<" in path:
        raise ValueError(f"{rule.rule}: a path variable has no field in its path schema")
    return path


def operation(spec_op, view, security, envelopes):
    """One operation object: parameters, body, the success envelope and every failure."""
    if spec_op.csv:
        success = CSV_ANSWER
    else:
        key = (spec_op.data, bool(spec_op.message))
        if key not in envelopes:
            envelopes[key] = envelope(*key)
        success = {"description": spec_op.message or "The success envelope",
                   "content": {"application/json": {"schema": envelopes[key]}}}
    doc = {
        "operationId": view.__name__,
        "summary": (view.__doc__ or "").strip().splitlines()[0].rstrip("."),
        "tags": [spec_op.tag],
        "security": security,
        "parameters": [],
        "responses": {"200": success},
    }
    for location, schema in (("path", spec_op.path), ("query", spec_op.query)):
        if schema is not None:
            doc["parameters"].append({"in": location, "schema": schema})
    if spec_op.writes:
        doc["parameters"].append(PREFER)
        doc["responses"]["204"] = MINIMAL_ANSWER
    if spec_op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "description": "JSON, whatever the Content-Type",
            "content": {"application/json": {"schema": spec_op.body}},
        }
    for status in spec_op.errors:
        doc["responses"][str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": "Failure"}},
            **({"headers": RETRY_AFTER} if status in (409, 503) else {}),
        }
    return doc


def build_spec(app, blueprint_name):
    """The document for the progress blueprint registered as `blueprint_name` on `app`."""
    from .. import __version__

    mount = app.extensions["progress"][blueprint_name]

    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(
        title="Course progress API", version=__version__, openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": "Students' progress through an LMS's courses. Every response is "
                             "the JSON envelope; ids are the LMS's ids, as strings; times are UTC "
                             "ISO 8601 with milliseconds."},
        servers=[{"url": request.script_root or "/"}],
    )
    plugin.converter.add_attribute_function(custom_fields_for(mount.parse_id))
    spec.components.schema("Failure", schema=FailureSchema)
    schemes = security_schemes(mount.signin.places(app))
    for name, scheme in schemes.items():
        spec.components.security_scheme(name, scheme)
    security = [{name: []} for name in schemes]

    paths, envelopes = {}, {}
    for endpoint, rule in routes(app, blueprint_name).items():
        spec_op = OPERATIONS[endpoint.rpartition(".")[2]]
        path = openapi_path(rule, spec_op.path)
        view = app.view_functions[endpoint]
        for method in sorted(rule.methods - IGNORED_METHODS):
            paths.setdefault(path, {})[method.lower()] = operation(spec_op, view, security, envelopes)
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path])
    document = spec.to_dict()
    require_all_output_keys(document)
    require_flag_or_position(document)
    return document


def require_flag_or_position(document):
    """A lecture update names isCompleted, watchTime or both (schemas.LectureUpdateSchema).

    marshmallow says it in a schema validator, which apispec cannot see.
    """
    components = document["components"]["schemas"]
    for name in ("LectureUpdate", "BatchItem"):
        if name in components:
            components[name]["anyOf"] = [{"required": ["isCompleted"]}, {"required": ["watchTime"]}]


def require_all_output_keys(document):
    """Contract section 3: output keys are always present (null when unknown).

    marshmallow's `required` only concerns loading, so the output schemas do not say it;
    every schema reached from a success envelope's `data` gets all its keys required.
    """
    components = document["components"]["schemas"]
    pending = [name for name in components if name.endswith("Envelope")]
    seen = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        schema = components[name]
        if not name.endswith("Envelope"):
            schema["required"] = sorted(schema.get("properties", {}))
        pending.extend(ref.rsplit("/", 1)[-1] for ref in _refs(schema.get("properties", {})))


def _refs(node):
    """Every $ref under a JSON node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document of the progress API as this app mounts it (no token needed)."""
    blueprint_name = request.blueprint[: -len(SUFFIX)]
    cache = current_app.extensions["progress"][blueprint_name].openapi_cache
    key = request.script_root
    if key not in cache:
        cache[key] = json.dumps(build_spec(current_app, blueprint_name), separators=(",", ":"))
    return current_app.response_class(cache[key], mimetype="application/json")
