"""Thin views of the progress blueprint: authenticate -> validate -> call the service -> dump."""
import json
from functools import wraps

from flask import Blueprint, current_app, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from .. import auth
from ..db import ensure_indexes
from ..errors import failure, register_error_handlers, success
from ..exceptions import InvalidInput
from . import insights, service
from .schemas import (BatchUpdateSchema, CoursePathSchema, LecturePathSchema, LectureUpdateSchema,
                      PageQuerySchema, dashboard_out, progress_out, students_out, summary_out)

bp = Blueprint("progress", __name__)
register_error_handlers(bp)

course_path = CoursePathSchema()
lecture_path = LecturePathSchema()
lecture_update = LectureUpdateSchema()
batch_update = BatchUpdateSchema()
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
FALLBACK = "fallback"


def state():
    """This app's progress settings (set by Progress.init_app)."""
    return current_app.extensions["progress"]


def authenticated(view):
    """401 (token) -> 403 (origin) before anything else; passes the caller's user id."""

    @wraps(view)
    def wrapper(**kwargs):
        settings = state()
        user_id = auth.current_user_id(settings.identity_claim)
        g.progress_user_id = user_id  # for the standalone app's request log
        auth.check_origin(settings.origins)
        ensure_indexes(settings.db_alias)
        return view(user_id, **kwargs)

    return wrapper


def load(schema, data):
    """Validate with a schema or answer 400 naming the fields as the client sent them."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput("Invalid request", errors=exc.messages) from exc


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


def json_body():
    """The body parsed as a JSON object whatever its Content-Type (curl -d sends a form type)."""
    limit = state().max_body
    raw = read_body(limit)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidInput("Request body must be valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidInput("Request body must be a JSON object")
    return data


def show(result):
    """The success envelope around a `<progress>`."""
    return success(progress_out.dump(result.progress), result.message)


@bp.before_request
def limit_body():
    """413 before any work for a declared body over the limit (mounted apps included)."""
    length = request.content_length
    if length is not None and length > state().max_body:
        raise RequestEntityTooLarge()


@bp.after_request
def our_headers(response):
    """No caching or sniffing of progress responses; CORS for the allowed origins."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.method == "OPTIONS" and "Allow" in response.headers:
        # Flask's automatic OPTIONS answer would list the fallback rule's methods too.
        response.headers["Allow"] = ", ".join(sorted(allowed_methods()))
    return auth.add_cors_headers(response, state().origins)


@bp.get("/<course_id>")
@authenticated
def get_progress(user_id, course_id):
    """The caller's record for a course."""
    ids = load(course_path, {"courseId": course_id})
    return show(service.get_progress(state().catalog, user_id, ids["course_id"]))


@bp.patch("/<course_id>/lectures/<lecture_id>")
@authenticated
def mark_lecture(user_id, course_id, lecture_id):
    """Set one lecture's flag (and watchTime); creates the record on first use."""
    ids = load(lecture_path, {"courseId": course_id, "lectureId": lecture_id})
    body = load(lecture_update, json_body())
    settings = state()
    return show(service.mark_lecture(
        settings.catalog, user_id, ids["course_id"], ids["lecture_id"], body["is_completed"],
        body.get("watch_time"), legacy_first=settings.legacy_first_patch,
    ))


@bp.patch("/<course_id>/lectures")
@authenticated
def mark_lectures(user_id, course_id):
    """Set many lectures in one save, all or none (offline sync)."""
    ids = load(course_path, {"courseId": course_id})
    body = load(batch_update, json_body())
    return show(service.mark_lectures(state().catalog, user_id, ids["course_id"], body["lectures"]))


@bp.post("/<course_id>/complete")
@authenticated
def complete_course(user_id, course_id):
    """Every lecture completed."""
    ids = load(course_path, {"courseId": course_id})
    return show(service.complete_course(state().catalog, user_id, ids["course_id"]))


@bp.post("/<course_id>/reset")
@authenticated
def reset_course(user_id, course_id):
    """Every lecture back to not completed."""
    ids = load(course_path, {"courseId": course_id})
    return show(service.reset_course(state().catalog, user_id, ids["course_id"]))


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

page_query = PageQuerySchema()


def paging():
    """?page=&limit= validated (400 naming the parameter); other parameters are ignored."""
    return load(page_query, request.args.to_dict())


# Both spellings: the fallback rules on "" and "/" take only the other methods.
@bp.get("", endpoint="dashboard")
@bp.get("/", endpoint="dashboard")
@authenticated
def dashboard(user_id):
    """The caller's records across courses, newest first."""
    query = paging()
    page = insights.dashboard(state().catalog, user_id, query["page"], query["limit"])
    return success(dashboard_out.dump(page))


@bp.get("/<course_id>/summary")
@authenticated
def course_summary(user_id, course_id):
    """The course's figures, for its instructor or an admin."""
    ids = load(course_path, {"courseId": course_id})
    return success(summary_out.dump(insights.summary(state().catalog, user_id, ids["course_id"])))


@bp.get("/<course_id>/students")
@authenticated
def course_students(user_id, course_id):
    """The course's students with their progress, oldest record first."""
    ids = load(course_path, {"courseId": course_id})
    query = paging()
    page = insights.students(state().catalog, user_id, ids["course_id"], query["page"], query["limit"])
    return success(students_out.dump(page))
