"""Who is calling: the user id from the JWT, the origin check, CORS for our routes."""
import re
from urllib.parse import urlsplit

from bson import ObjectId
from flask import request
from flask_jwt_extended import get_jwt, get_jwt_header, get_jwt_request_location, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from .exceptions import Forbidden, Unauthenticated

ALGORITHM = "HS256"
OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CORS_METHODS = "GET, PATCH, POST, OPTIONS"
# Prefer: a cross-origin video player asks for minimal answers (contract section 8).
CORS_HEADERS = ("Content-Type", "Authorization", "X-Request-ID", "Prefer")
# Retry-After: a browser client must be able to honour it on a 409 or 503 (contract section 12).
CORS_EXPOSED = "Preference-Applied, Retry-After, X-Request-ID"


def current_user_id(identity_claim):
    """The caller's user id from a valid HS256 token with `exp`, else Unauthenticated.

    flask-jwt-extended finds and verifies the token (cookie first, then header); any of
    its or PyJWT's failures becomes our 401, whatever loaders the app has registered.
    """
    try:
        verify_jwt_in_request()
        header, claims = get_jwt_header(), get_jwt()
    except (JWTExtendedException, PyJWTError) as exc:
        raise Unauthenticated(_reason(exc)) from exc
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated("Token algorithm not accepted")
    if "exp" not in claims:
        # PyJWT accepts a token without exp; a token that never expires is refused here.
        raise Unauthenticated("Token has no expiry")
    identity = claims.get(identity_claim)
    if not isinstance(identity, str) or not OBJECT_ID.fullmatch(identity):
        raise Unauthenticated("Token does not identify a user")
    return ObjectId(identity)


def _reason(exc):
    """A short, secret-free reason for a refused token."""
    name = type(exc).__name__
    if name == "NoAuthorizationError":
        return "Authentication required"
    if name == "ExpiredSignatureError":
        return "Token has expired"
    return "Invalid token"


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


def check_origin(origins):
    """403 for a cookie-authenticated write from an origin that is not allowed.

    Without CSRF tokens (the LMS's tokens have no csrf claim) this is what stops another
    site from using the student's cookie. Requests with no Origin/Referer (curl, servers)
    and Bearer requests carry no ambient credential and pass.
    """
    if request.method in SAFE_METHODS or get_jwt_request_location() != "cookies":
        return
    origin = request_origin()
    if origin is not None and origin not in origins:
        raise Forbidden("Origin not allowed")


def add_cors_headers(response, origins, csrf_header):
    """CORS for our routes only: the allowed origins, with credentials.

    The preflight allows the header of flask-jwt-extended's CSRF double submit (its name
    from the app's JWT_ACCESS_CSRF_HEADER_NAME), so a host that turns it on can still call
    our writes from its single-page app on another origin.
    """
    origin = request.headers.get("Origin", "").rstrip("/")
    response.vary.add("Origin")
    if origin and origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = ", ".join((*CORS_HEADERS, csrf_header))
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
    return response
