"""Failures of the progress operations, free of Flask; envelope.py turns them into HTTP."""


class MountError(RuntimeError):
    """The extension cannot be mounted as configured; raised by init_app, before any request."""


class ProgressError(Exception):
    """A failure the client is told about: an HTTP status, a message, optional field errors."""

    status = 400

    def __init__(self, message, errors=None, headers=None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}


class InvalidInput(ProgressError):
    """400: malformed ids, an invalid body, a lecture not in the course."""

    status = 400


class Unauthenticated(ProgressError):
    """401: no usable token."""

    status = 401


class Forbidden(ProgressError):
    """403: authenticated, but not allowed."""

    status = 403


class NotFound(ProgressError):
    """404: no such course, or no record yet."""

    status = 404


class Conflict(ProgressError):
    """409: the record kept changing under us until the retry budget ran out."""

    status = 409


class Unavailable(ProgressError):
    """503: the service cannot do this now (the database, or its unique index); retry later."""

    status = 503
