"""Request logs of the standalone app: one JSON line per request on stdout, with a request id.

A mounted host keeps its own logging: only create_app() calls register_request_logging().
"""
import json
import logging
import re
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone

from flask import g, request

log = logging.getLogger("progress_service")
request_log = logging.getLogger("progress_service.request")

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is kept only if it is short and plain: it lands in every log line and is
# echoed to the client, so nothing that could forge a line or a header goes through.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Attributes every LogRecord has; anything else was passed in `extra=` and is logged.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _utc_time(timestamp):
    """'2026-11-26T19:30:00.123Z', as the API writes times."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the `extra` fields."""

    def format(self, record):
        """The record as a single JSON line (a traceback stays inside its string)."""
        line = {
            "time": _utc_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        line.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            line["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, default=str, ensure_ascii=False)


class StdoutHandler(logging.StreamHandler):
    """A handler on whatever sys.stdout is at emit time (gunicorn's, or a test's capture)."""

    def __init__(self):
        super().__init__(sys.stdout)
        self.setFormatter(JsonFormatter())

    def emit(self, record):
        """Write to the current sys.stdout."""
        self.stream = sys.stdout
        super().emit(record)


def _has_json_handler(logger):
    """True when a JSON handler is already attached (gunicorn.conf.py, or an earlier app)."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers)


def register_request_logging(app):
    """Log every request of `app` as one JSON line on stdout, and echo its X-Request-ID."""
    if not _has_json_handler(log):
        log.addHandler(StdoutHandler())
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    app.before_request(start_request)
    app.after_request(finish_request)


def request_id():
    """The incoming X-Request-ID if it is plain enough to trust, else a new one."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def start_request():
    """Stamp the request with its id and start time (runs before every other hook)."""
    g.request_id = request_id()
    g.request_started = time.perf_counter()
    # g lives as long as the app context, which a test (or a CLI command) may keep across
    # requests: the previous request's user must not be logged for this one.
    g.pop("progress_user_id", None)


def finish_request(response):
    """Echo the request id and write the request's log line.

    Only method, path (no query string), status, duration and the user id are logged:
    never a header, so no token or cookie can reach the logs.
    """
    rid = g.get("request_id") or request_id()
    started = g.get("request_started")
    response.headers[REQUEST_ID_HEADER] = rid
    user = g.get("progress_user_id")
    request_log.info("request", extra={
        "requestId": rid,
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "durationMs": round((time.perf_counter() - started) * 1000, 1) if started else None,
        "userId": str(user) if user is not None else None,
    })
    return response
