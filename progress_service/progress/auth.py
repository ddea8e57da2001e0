"""The origin check of cookie-authenticated writes, and CORS for our routes (contract section 4).

Who is calling is signin.py's question; this module decides what a browser may do with it.
"""
from urllib.parse import urlsplit

from flask import request

from .exceptions import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CORS_METHODS = "GET, PATCH, POST, OPTIONS"
# Prefer: a cross-origin video player asks for minimal answers (contract section 8).
CORS_HEADERS = ("Content-Type", "Authorization", "X-Request-ID", "Prefer")
# Retry-After: a browser client must be able to honour it on a 409 or 503 (contract section 12).
CORS_EXPOSED = "Preference-Applied, Retry-After, X-Request-ID"


def request_origin():
    """The Origin header, or the scheme://host[:port] of the Referer, or None."""
    origin = request.headers.get("Origin")
    if origin:
        return origin.rstrip("/")
    referer = request.headers.get("Referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "null"


def own_origin():
    """scheme://host[:port] of this app as it sees itself (behind ProxyFix: as forwarded)."""
    return f"{request.scheme}://{request.host}".lower()


def check_origin(origins, ambient):
    """403 for a write authenticated by a cookie (`ambient`) from an origin that is not allowed.

    Without CSRF tokens (the LMS's tokens have no csrf claim) this is what stops another
    site from using the student's cookie. The app's own origin is always allowed (its own
    pages write too, contract section 11); requests with no Origin/Referer (curl, servers)
    and Bearer requests carry no ambient credential and pass.
    """
    if request.method in SAFE_METHODS or not ambient:
        return
    origin = request_origin()
    if origin is not None and origin not in origins and origin.lower() != own_origin():
        raise Forbidden("Origin not allowed")


def add_cors_headers(response, origins, csrf_header):
    """CORS for our routes only: the allowed origins, with credentials.

    The preflight allows the header of flask-jwt-extended's CSRF double submit (its name
    from the app's JWT_ACCESS_CSRF_HEADER_NAME; None for a mount that reads no JWT), so a
    host that turns it on can still call our writes from its single-page app on another origin.
    """
    origin = request.headers.get("Origin", "").rstrip("/")
    response.vary.add("Origin")
    if origin and origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            allowed = (*CORS_HEADERS, csrf_header) if csrf_header else CORS_HEADERS
            response.headers["Access-Control-Allow-Headers"] = ", ".join(allowed)
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
    return response
