"""The one JSON envelope for success and failure, and the handlers that produce it."""
import json
import logging

from flask import current_app
from mongoengine.connection import ConnectionFailure as AliasUnavailable
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WaitQueueTimeoutError, WTimeoutError
from werkzeug.exceptions import HTTPException, default_exceptions

from .exceptions import ProgressError

log = logging.getLogger("progress_service")

# The database is down or too slow, or the host's MongoEngine alias is gone (MongoEngine's own
# ConnectionFailure, not pymongo's): tell clients to come back, never a 500.
UNAVAILABLE = (ConnectionFailure, ExecutionTimeout, WaitQueueTimeoutError, WTimeoutError, AliasUnavailable)
RETRY_AFTER_SECONDS = "5"
HTTP_MESSAGES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
}


def _json(body, status, headers=None, ascii_only=False):
    """A JSON response that does not depend on the host app's JSON provider.

    `ascii_only` escapes every non-ASCII character: a failure may echo a field name the
    client sent, and a lone surrogate in it cannot be encoded as UTF-8 (contract section 3).
    """
    response = current_app.response_class(
        json.dumps(body, separators=(",", ":"), ensure_ascii=ascii_only),
        status=status,
        mimetype="application/json",
    )
    response.headers.update(headers or {})
    return response


def success(data, message=None, status=200):
    """{"status": "success", "data": ..., "message"?: ...}"""
    body = {"status": "success", "data": data}
    if message:
        body["message"] = message
    return _json(body, status)


def failure(status, message, errors=None, headers=None):
    """{"status": "fail" (4xx) | "error" (5xx), "message": ..., "errors"?: ...}"""
    body = {"status": "error" if status >= 500 else "fail", "message": message}
    if errors:
        body["errors"] = errors
    return _json(body, status, headers, ascii_only=True)


def handle_progress_error(exc):
    """A domain failure, as its status."""
    return failure(exc.status, exc.message, exc.errors, exc.headers)


def handle_http_exception(exc):
    """Routing errors, 413 and aborts, in the envelope; a 405 keeps its Allow header."""
    headers = {key: value for key, value in exc.get_headers() if key.lower() == "allow"}
    message = HTTP_MESSAGES.get(exc.code, exc.name)
    return failure(exc.code or 500, message, headers=headers)


def handle_unexpected(exc):
    """Anything else: 503 while the database is unreachable, else a logged 500, no trace."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if isinstance(exc, UNAVAILABLE):
        log.warning("database unavailable: %s", type(exc).__name__)
        return failure(503, "The database is unavailable; retry later",
                       headers={"Retry-After": RETRY_AFTER_SECONDS})
    log.exception("unexpected error")
    return failure(500, "Internal server error")


def register_error_handlers(target):
    """Install the envelope handlers on a blueprint (mounted) or the app (standalone)."""
    target.register_error_handler(ProgressError, handle_progress_error)
    target.register_error_handler(HTTPException, handle_http_exception)
    # Flask prefers an app's handler for a status code over a blueprint's handler for a
    # class: without these, a host's @app.errorhandler(405) would answer under our prefix.
    for code in default_exceptions:
        target.register_error_handler(code, handle_http_exception)
    target.register_error_handler(Exception, handle_unexpected)
