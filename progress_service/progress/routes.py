"""Thin views of the progress blueprint: authenticate -> validate -> call the service -> answer."""
import json
from functools import wraps

from flask import Blueprint, current_app, g, request, stream_with_context
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from . import auth, insights, metrics, roster, service
from .envelope import failure, register_error_handlers, success
from .exceptions import InvalidInput
from .openapi import SUFFIX as OPENAPI_SUFFIX, bp as openapi_bp
from .schemas import (
    BatchUpdateSchema,
    CoursePathSchema,
    LecturePathSchema,
    LectureUpdateSchema,
    PageQuerySchema,
    StudentsQuerySchema,
    ids_parsed_by,
)

bp = Blueprint("progress", __name__)
register_error_handlers(bp)
metrics.instrument(bp)  # first: a request refused by a later hook (413) is counted too

course_path = CoursePathSchema()
lecture_path = LecturePathSchema()
lecture_update = LectureUpdateSchema()
batch_update = BatchUpdateSchema()
page_query = PageQuerySchema()
students_query = StudentsQuerySchema()
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
FALLBACK = "fallback"
MINIMAL = "return=minimal"


def mount():
    """The mount this request came in through (its blueprint name keys app.extensions; its
    OpenAPI blueprint's name is that name and a suffix, which init_app keeps unambiguous)."""
    mounts = current_app.extensions["progress"]
    name = request.blueprint
    return mounts[name] if name in mounts else mounts[name[: -len(OPENAPI_SUFFIX)]]


def authenticated(view):
    """401 (who is calling) -> 403 (origin) before anything else; passes the mount and the
    caller's id. Ids the view's schemas load are parsed by the mount's catalog."""

    @wraps(view)
    def wrapper(**kwargs):
        here = mount()
        caller = here.signin.caller(here.parse_id)
        g.progress_user_id = caller.user_id  # for the standalone app's request log
        auth.check_origin(here.settings.origins, caller.ambient)
        with ids_parsed_by(here.parse_id):
            return view(here, caller.user_id, **kwargs)

    return wrapper


def load(schema, data):
    """Validate with a schema or answer 400 naming the fields as the client sent them."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput("Invalid request", errors=client_names(exc.messages)) from exc


def client_names(messages):
    """marshmallow's errors keyed only by what the client sent.

    A value that is not an object at all (a batch item `5`) is reported by marshmallow under
    its internal key `_schema`; the client knows that item by its index, so the messages go
    there directly.
    """
    if not isinstance(messages, dict):
        return messages
    if set(messages) == {"_schema"}:
        return messages["_schema"]
    return {key: client_names(value) for key, value in messages.items()}


class RepeatedKey(ValueError):
    """A JSON object names one key twice: which value was meant is anyone's guess."""

    def __init__(self, key):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs):
    """A JSON object as a dict, refusing a repeated key."""
    found = {}
    for key, value in pairs:
        if key in found:
            raise RepeatedKey(key)
        found[key] = value
    return found


def _reject_constant(name):
    """NaN and Infinity are not JSON: Python's parser would take them."""
    raise ValueError(f"{name} is not valid JSON")


def read_body(limit):
    """Up to limit + 1 bytes of the body.

    One read() may return less than asked: Werkzeug's stream for a chunked body stops at
    MAX_CONTENT_LENGTH and raises 413 only on the next read, and a server's stream may
    return what has arrived so far. With a single read, a chunked body over the limit was
    parsed truncated (400 instead of 413).
    """
    chunks, size = [], 0
    while size <= limit:
        chunk = request.stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def parse_json_object(raw):
    """The body as a JSON object: UTF-8 only, no repeated key, no NaN, bounded nesting.

    Python's json.loads(bytes) would guess UTF-16 or UTF-32 from the first bytes; the
    contract takes UTF-8 only, so the bytes are decoded strictly first.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("Request body must be JSON in UTF-8") from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RepeatedKey as exc:
        raise InvalidInput("Request body repeats a key", errors={exc.key: ["Repeated key."]}) from exc
    except RecursionError as exc:
        raise InvalidInput("Request body nests too deeply") from exc
    except ValueError as exc:
        raise InvalidInput("Request body must be valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidInput("Request body must be a JSON object")
    return data


def json_body():
    """The body parsed as a JSON object whatever its Content-Type (curl -d sends a form type)."""
    limit = mount().settings.max_body
    raw = read_body(limit)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return parse_json_object(raw)


def prefers_minimal():
    """Whether the client sent `Prefer: return=minimal` (RFC 7240; among other preferences)."""
    for header in request.headers.getlist("Prefer"):
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
                return True
    return False


def answer(outcome):
    """The success envelope around a `<progress>`, or 204 for a minimal answer."""
    if outcome.data is None:
        response = current_app.response_class(status=204)
        response.headers.pop("Content-Type", None)
        response.headers["Preference-Applied"] = MINIMAL
        return response
    return success(outcome.data, outcome.message)


@bp.before_request
def limit_body():
    """413 before any work for a declared body over the limit (mounted apps included)."""
    here = mount()
    length = request.content_length
    if length is not None and length > here.settings.max_body:
        raise RequestEntityTooLarge()
    if here.relay is not None:
        # Deployments that don't call start_background() still deliver, from the first request.
        here.relay.ensure_started()


@bp.after_request
@openapi_bp.after_request
def our_headers(response):
    """No caching or sniffing of any answer under the prefix (the OpenAPI document's too); CORS
    for the allowed origins."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.method == "OPTIONS" and "Allow" in response.headers:
        # Flask's automatic OPTIONS answer would list the fallback rule's methods too, and is
        # an empty text/html page: under our prefix every answer is JSON.
        methods = sorted(allowed_methods())
        response.headers["Allow"] = ", ".join(methods)
        if not response.get_data():
            response.set_data(json.dumps({"status": "success", "data": {"methods": methods}}, separators=(",", ":")))
            response.mimetype = "application/json"
    here = mount()
    return auth.add_cors_headers(response, here.settings.origins, here.signin.csrf_header)


def lecture_change(lecture_id, body):
    """A validated body (and its lecture) as the service's LectureChange."""
    return service.LectureChange(lecture_id, body.get("is_completed"), body.get("watch_time"),
                                 tuple(body.get("played", ())), body.get("at"))


@bp.get("/<course_id>")
@authenticated
def get_progress(here, user_id, course_id):
    """The caller's record for a course."""
    ids = load(course_path, {"courseId": course_id})
    return answer(service.get_progress(here, user_id, ids["course_id"]))


@bp.patch("/<course_id>/lectures/<lecture_id>")
@authenticated
def mark_lecture(here, user_id, course_id, lecture_id):
    """Set one lecture's flag, its position (watchTime), or both; creates the record on first use."""
    return _mark_lecture(here, user_id, course_id, lecture_id)


@bp.post("/<course_id>/lectures/<lecture_id>")
@authenticated
def mark_lecture_by_post(here, user_id, course_id, lecture_id):
    """The same as the PATCH, for navigator.sendBeacon, which can only POST (a closing page)."""
    return _mark_lecture(here, user_id, course_id, lecture_id)


def _mark_lecture(here, user_id, course_id, lecture_id):
    """The single-lecture write, by PATCH or POST alike (contract section 14)."""
    ids = load(lecture_path, {"courseId": course_id, "lectureId": lecture_id})
    change = lecture_change(ids["lecture_id"], load(lecture_update, json_body()))
    return answer(service.mark_lecture(here, user_id, ids["course_id"], change, prefers_minimal()))


@bp.patch("/<course_id>/lectures")
@authenticated
def mark_lectures(here, user_id, course_id):
    """Set many lectures in one save, all or none (offline sync)."""
    ids = load(course_path, {"courseId": course_id})
    body = load(batch_update, json_body())
    changes = [lecture_change(item["lecture"], item) for item in body["lectures"]]
    return answer(service.mark_lectures(here, user_id, ids["course_id"], changes, prefers_minimal()))


@bp.post("/<course_id>/complete")
@authenticated
def complete_course(here, user_id, course_id):
    """Every lecture completed."""
    ids = load(course_path, {"courseId": course_id})
    return answer(service.complete_course(here, user_id, ids["course_id"], prefers_minimal()))


@bp.post("/<course_id>/reset")
@authenticated
def reset_course(here, user_id, course_id):
    """Every lecture back to not completed."""
    ids = load(course_path, {"courseId": course_id})
    return answer(service.reset_course(here, user_id, ids["course_id"], prefers_minimal()))


@bp.route("/<path:rest>", endpoint=FALLBACK, methods=ALL_METHODS)
@bp.route("", endpoint=FALLBACK, methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route("/", endpoint=FALLBACK, methods=["POST", "PUT", "PATCH", "DELETE"])
def fallback(rest=None):
    """Routing errors under our prefix, in our envelope: Flask never shows them to a blueprint.

    Any path no other rule takes ends here; a path that another rule has for other methods
    is a 405 with its Allow header, else a 404.
    """
    allowed = allowed_methods()
    if allowed and request.method not in allowed:
        raise MethodNotAllowed(valid_methods=sorted(allowed))
    return failure(404, "Not found")


def allowed_methods():
    """The methods that a rule other than the fallback takes for this request's path."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in ALL_METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint.rsplit(".", 1)[-1] != FALLBACK:
            allowed.add(method)
    # Flask answers OPTIONS on every path it routes (on "" the fallback's rule matches it).
    return allowed | {"OPTIONS"} if allowed else allowed


# --- views beyond the original (contract section 7) --------------------------------------

def paging():
    """?page=&limit= validated (400 naming the parameter); other parameters are ignored."""
    return load(page_query, request.args.to_dict())


# Both spellings: the fallback rules on "" and "/" take only the other methods.
@bp.get("", endpoint="dashboard")
@bp.get("/", endpoint="dashboard")
@authenticated
def dashboard(here, user_id):
    """The caller's records across courses, newest first."""
    query = paging()
    return success(insights.dashboard(here, user_id, query["page"], query["limit"]).as_dict())


@bp.get("/<course_id>/summary")
@authenticated
def course_summary(here, user_id, course_id):
    """The course's figures, for its instructor or an admin."""
    ids = load(course_path, {"courseId": course_id})
    return success(insights.summary(here, user_id, ids["course_id"]).as_dict())


@bp.get("/<course_id>/students")
@authenticated
def course_students(here, user_id, course_id):
    """The course's students with their progress, oldest record first unless sorted otherwise."""
    ids = load(course_path, {"courseId": course_id})
    query = roster.ListQuery(**load(students_query, request.args.to_dict()))
    return success(roster.students(here, user_id, ids["course_id"], query).as_dict())


@bp.get("/<course_id>/students.csv")
@authenticated
def course_students_csv(here, user_id, course_id):
    """Every student of the course as CSV, one column per current lecture (streamed)."""
    ids = load(course_path, {"courseId": course_id})
    name, rows = roster.export(here, user_id, ids["course_id"])
    response = current_app.response_class(stream_with_context(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
