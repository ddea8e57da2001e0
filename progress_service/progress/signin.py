"""Who is calling (contract sections 4 and 11): the host's hook, the host's JWTs, or our own check.

Decided at mount time, once: `sign_in_for(app, identity)` refuses (MountError) a mount that
could never authenticate anyone, and returns the object each request asks for its caller:
- `HookSignIn`: the host's `identity=` function says who it is (a Flask-Login session, say);
  no JWT, no JWTManager, no `JWT_*` key read.
- `JwtSignIn`: a JWT. Through the host's flask-jwt-extended manager when the app has one at
  request time (its algorithm, keys, loaders, blocklist, audience, issuer, CSRF), else our
  own check: HS256 only, with the contract's section 5 defaults for what the config leaves
  unset. The extension never writes a `JWT_*` key: written before the host's own
  `JWTManager(app)`, they would become the host's settings (contract section 11).
"""
from dataclasses import dataclass

import jwt
from flask import current_app, request
from flask_jwt_extended import JWTManager, get_jwt, get_jwt_header, get_jwt_request_location, verify_jwt_in_request
from flask_jwt_extended.config import config as host_jwt_config
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.algorithms import get_default_algorithms, requires_cryptography
from jwt.exceptions import PyJWTError

from . import compat
from .exceptions import MountError, Unauthenticated
from .settings import flag, split_list

ALGORITHM = "HS256"
MANAGER_KEY = "flask-jwt-extended"  # where flask-jwt-extended registers its manager
NO_CALLER = "Authentication required"
NOT_A_USER = "Token does not identify a user"
OWN_LOCATIONS = ("cookies", "headers")
# Contract section 5: what our own check reads when the host's config leaves a key unset.
OWN_DEFAULTS = {
    "JWT_TOKEN_LOCATION": "cookies,headers",
    "JWT_ACCESS_COOKIE_NAME": "token",
    "JWT_HEADER_NAME": "Authorization",
    "JWT_HEADER_TYPE": "Bearer",
    "JWT_IDENTITY_CLAIM": "sub",
    "JWT_COOKIE_CSRF_PROTECT": False,
    "JWT_ACCESS_CSRF_HEADER_NAME": "X-CSRF-TOKEN",
    "JWT_CSRF_METHODS": ["POST", "PUT", "PATCH", "DELETE"],
    "JWT_DECODE_LEEWAY": 0,
}


@dataclass(frozen=True)
class Places:
    """Where a mount takes the caller's credential (for the OpenAPI document)."""

    locations: tuple
    cookie: str = None
    cookie_description: str = None
    header: str = None
    header_type: str = None


@dataclass(frozen=True)
class Caller:
    """The caller's user id (the host's type), and whether the browser sent its credential on its
    own (a cookie or a session: then a write's origin is checked, contract section 4)."""

    user_id: object
    ambient: bool


def user_id_from(value, parse_id):
    """The host's user id for an identity: a string is parsed by the catalog's parse_id."""
    if not isinstance(value, str) or not value:
        raise Unauthenticated(NOT_A_USER)
    try:
        return parse_id(value)
    except ValueError as exc:
        raise Unauthenticated(NOT_A_USER) from exc


class HookSignIn:
    """The host says who is calling: `identity()` runs inside the request."""

    csrf_header = None

    def __init__(self, identity):
        """Keep the host's function."""
        self.identity = identity

    def caller(self, parse_id):
        """The hook's answer: None is 401; a string is parsed, any other value is the host's id."""
        value = self.identity()
        if value is None:
            raise Unauthenticated(NO_CALLER)
        user_id = user_id_from(value, parse_id) if isinstance(value, str) else value
        # A session cookie travels with every request the browser makes: check the origin.
        return Caller(user_id, ambient=True)

    def describe(self, app):
        """One line for `progress doctor`."""
        name = getattr(self.identity, "__qualname__", repr(self.identity))
        return f"the host's identity hook {name}(): no JWT is read"

    @staticmethod
    def places(app):
        """The host's session cookie (Flask's, or the one its sign-in keeps)."""
        return Places(("cookies",), app.config.get("SESSION_COOKIE_NAME") or "session", "The LMS's session cookie")


@dataclass(frozen=True)
class OwnJwt:
    """What our own check reads from the config at mount time (section 5's defaults where unset)."""

    key: str
    locations: tuple
    cookie: str
    header: str
    header_type: str
    identity_claim: str
    audience: object
    issuer: str
    leeway: int
    csrf_protect: bool
    csrf_header: str
    csrf_methods: frozenset

    @classmethod
    def read(cls, config):
        """Read once, before anything could set flask-jwt-extended's own defaults."""

        def get(key):
            value = config.get(key)
            return OWN_DEFAULTS.get(key) if value is None else value

        return cls(
            key=config.get("JWT_SECRET_KEY") or config.get("SECRET_KEY"),
            # Our check reads these two; a host wanting others makes its own JWTManager.
            locations=tuple(place for place in split_list(get("JWT_TOKEN_LOCATION")) if place in OWN_LOCATIONS),
            cookie=get("JWT_ACCESS_COOKIE_NAME"),
            header=get("JWT_HEADER_NAME"),
            header_type=get("JWT_HEADER_TYPE"),
            identity_claim=get("JWT_IDENTITY_CLAIM"),
            audience=config.get("JWT_DECODE_AUDIENCE"),
            issuer=config.get("JWT_DECODE_ISSUER"),
            leeway=get("JWT_DECODE_LEEWAY"),
            csrf_protect=flag(get("JWT_COOKIE_CSRF_PROTECT")),
            csrf_header=get("JWT_ACCESS_CSRF_HEADER_NAME"),
            csrf_methods=frozenset(method.upper() for method in split_list(get("JWT_CSRF_METHODS"))),
        )

    def token(self):
        """(token, where) from the first location that has one (the cookie first by default)."""
        for place in self.locations:
            if place == "cookies":
                found = request.cookies.get(self.cookie)
            else:
                found = request.headers.get(self.header)
                if found and self.header_type:
                    kind, _, found = found.partition(" ")
                    found = found.strip() if kind == self.header_type else None
            if found:
                return found, place
        raise Unauthenticated(NO_CALLER)

    def caller(self, parse_id):
        """One PyJWT decode: HS256 only, `exp` and the identity claim required (a token without the
        claim is invalid, as flask-jwt-extended has it), audience and issuer when configured."""
        token, place = self.token()
        if not self.key:
            # An asymmetric config whose JWTManager never came: nothing of ours can verify.
            raise Unauthenticated("Invalid token")
        try:
            claims = jwt.decode(token, self.key, algorithms=[ALGORITHM], audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["exp"], "verify_aud": self.audience is not None})
        except PyJWTError as exc:
            raise Unauthenticated(refusal(exc)) from exc
        # flask-jwt-extended's refresh tokens are not for calling APIs.
        if claims.get("type", "access") != "access" or self.identity_claim not in claims:
            raise Unauthenticated("Invalid token")
        cookie = place == "cookies"
        if cookie and self.csrf_protect and request.method in self.csrf_methods:
            sent = request.headers.get(self.csrf_header)
            if not sent or sent != claims.get("csrf"):
                raise Unauthenticated("Missing or invalid CSRF token")
        return Caller(user_id_from(claims.get(self.identity_claim), parse_id), ambient=cookie)


class JwtSignIn:
    """A JWT: checked by the host's JWTManager when the app has one, else by our own check."""

    def __init__(self, own, own_manager, csrf_header):
        """`own`: our check's settings; `own_manager`: the manager we made (None: the host had one)."""
        self.own = own
        self.own_manager = own_manager
        self.csrf_header = csrf_header

    def host_manager(self, app):
        """The host's JWTManager on `app` (also one made after the mount), or None."""
        manager = app.extensions.get(MANAGER_KEY)
        return None if manager is None or manager is self.own_manager else manager

    def caller(self, parse_id):
        """The caller of the current request."""
        if self.host_manager(current_app) is None:
            return self.own.caller(parse_id)
        return host_caller(parse_id)

    def describe(self, app):
        """One line for `progress doctor`."""
        config = app.config
        if self.host_manager(app) is not None:
            algorithms = dict.fromkeys([config.get("JWT_ALGORITHM"), *(config.get("JWT_DECODE_ALGORITHMS") or ())])
            return (f"the host's JWTManager ({', '.join(algorithms)}; token in "
                    f"{', '.join(split_list(config.get('JWT_TOKEN_LOCATION')))}; "
                    f"user id in {config.get('JWT_IDENTITY_CLAIM')!r})")
        own = self.own
        key = "JWT_SECRET_KEY" if config.get("JWT_SECRET_KEY") else "SECRET_KEY"
        return (f"the extension's own check: HS256 signed with {key}, token in {', '.join(own.locations)} "
                f"(cookie {own.cookie!r}), user id in {own.identity_claim!r}")

    def places(self, app):
        """The token's locations: the host's manager's (read in the request), or our check's."""
        cookie = "The LMS's HTTP-only JWT cookie"
        if self.host_manager(app) is not None:
            return Places(tuple(host_jwt_config.token_location), host_jwt_config.access_cookie_name, cookie,
                          host_jwt_config.header_name, host_jwt_config.header_type)
        own = self.own
        if own.locations == ("cookies", "headers"):
            cookie += "; it wins over a header"
        return Places(own.locations, own.cookie, cookie, own.header, own.header_type)


def host_caller(parse_id):
    """Through the host's flask-jwt-extended: its settings and loaders decide, but never `alg: none`
    and never a token without `exp`. Its refusals become our 401, whatever its loaders answer."""
    try:
        verify_jwt_in_request()
        header, claims = get_jwt_header(), get_jwt()
    except (JWTExtendedException, PyJWTError) as exc:
        raise Unauthenticated(refusal(exc)) from exc
    if str(header.get("alg")).lower() == "none":
        raise Unauthenticated("Token algorithm not accepted")
    if "exp" not in claims:
        # PyJWT accepts a token without exp; a token that never expires is refused here.
        raise Unauthenticated("Token has no expiry")
    user_id = user_id_from(claims.get(host_jwt_config.identity_claim_key), parse_id)
    return Caller(user_id, ambient=get_jwt_request_location() == "cookies")


def refusal(exc):
    """A short, secret-free reason for a refused token."""
    name = type(exc).__name__
    if name == "NoAuthorizationError":
        return NO_CALLER
    if name == "ExpiredSignatureError":
        return "Token has expired"
    if name == "MissingRequiredClaimError" and exc.claim == "exp":
        return "Token has no expiry"
    return "Invalid token"


def sign_in_for(app, identity=None):
    """The mount's sign-in, or MountError when no request could ever authenticate."""
    if identity is not None:
        if not callable(identity):
            raise MountError("identity= must be a function returning the caller's user id (or None)")
        return HookSignIn(identity)
    config = app.config
    check_jwt_config(config, app.extensions.get(MANAGER_KEY))
    # Read before a manager of ours sets flask-jwt-extended's defaults into the config.
    own = OwnJwt.read(config)
    own_manager = None
    if MANAGER_KEY not in app.extensions:
        # So that the host's create_access_token() works. Its init_app sets flask-jwt-extended's
        # own defaults only (setdefault): the same a JWTManager of the host's made later sets.
        own_manager = JWTManager(app)
    return JwtSignIn(own, own_manager, own.csrf_header)


def check_jwt_config(config, manager):
    """MountError for JWT settings that could never verify a token, naming what is missing."""
    algorithm = config.get("JWT_ALGORITHM") or ALGORITHM
    listed = [algorithm, *split_list(config.get("JWT_DECODE_ALGORITHMS") or ())]
    if any(name.strip().lower() == "none" for name in listed):
        raise MountError("'none' is among JWT_ALGORITHM / JWT_DECODE_ALGORITHMS: unsigned tokens would be "
                         "accepted. Remove it.")
    if algorithm not in get_default_algorithms():
        extra = " (it needs the `cryptography` package)" if algorithm in requires_cryptography else ""
        raise MountError(f"JWT_ALGORITHM {algorithm!r} cannot be verified here{extra}")
    if manager is not None and compat.has_own_decode_key(manager):
        return  # the host's decode_key_loader finds the key (a JWKS, say)
    if algorithm in requires_cryptography:
        if not config.get("JWT_PUBLIC_KEY"):
            raise MountError(f"JWT_ALGORITHM is {algorithm} but JWT_PUBLIC_KEY is not set: no token could be "
                             f"verified. Set JWT_PUBLIC_KEY, or pass identity= to Progress.")
    elif not (config.get("JWT_SECRET_KEY") or config.get("SECRET_KEY")):
        raise MountError(f"no key to verify {algorithm} tokens: set JWT_SECRET_KEY (or Flask's SECRET_KEY), "
                         f"or pass identity= to Progress.")
