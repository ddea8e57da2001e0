"""The OpenAPI document (generated from the schemas) and the /docs page.

The document must be valid OpenAPI 3, list every route of the blueprint with every status it
can answer, and describe what the service really sends: real responses of every operation
are validated against it here, as Schemathesis does against the live server in `make qa`.
"""
import copy
import json
import re

import pytest
from bson import ObjectId
from flask import Flask
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from progress_service.progress import Progress
from progress_service.progress.openapi import OPERATIONS

from .support import BOTH, PREFIX, SECRET, close_mounts, make_token, mounted_database

DOC = f"{PREFIX}/openapi.json"
OBJECT_ID = "^[0-9a-fA-F]{24}$"
METHODS = {"get", "post", "patch", "put", "delete"}


@pytest.fixture
def doc(client):
    """The document the standalone app serves."""
    response = client.get(DOC)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations(document):
    """(path, method, operation) for every operation of the document."""
    return [(path, method, op) for path, item in document["paths"].items()
            for method, op in item.items() if method in METHODS]


def resolve(document, node):
    """`node` with every $ref replaced by its target (our schemas have no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolve(document, target)
        return {key: resolve(document, value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(document, value) for value in node]
    return node


def assert_conforms(document, path, method, response):
    """The response's status is declared for the operation and its JSON body matches it."""
    op = document["paths"][path][method]
    status = str(response.status_code)
    assert status in op["responses"], f"{method.upper()} {path} answered undeclared {status}"
    declared = op["responses"][status]
    assert list(declared["content"]) == [response.mimetype]
    schema = resolve(document, declared["content"][response.mimetype]["schema"])
    body = response.get_json() if response.mimetype == "application/json" else response.get_data(as_text=True)
    OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER).validate(body)
    for header, spec in resolve(document, declared.get("headers", {})).items():
        if header in response.headers:
            assert re.fullmatch(spec["schema"]["pattern"], response.headers[header])


# --- the document ---------------------------------------------------------------------------

def test_document_is_valid_openapi_3(doc):
    """openapi-spec-validator accepts it; it is OpenAPI 3.0 (what Swagger UI 4 reads)."""
    validate_spec(copy.deepcopy(doc))
    assert doc["openapi"].startswith("3.0.")
    assert doc["info"]["title"] and doc["info"]["version"]


def test_every_route_of_the_blueprint_is_documented(app, doc):
    """Each view's rule and methods appear (HEAD/OPTIONS aside), and nothing else does."""
    expected = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("progress.") and not rule.endpoint.endswith(".fallback"):
            path = re.sub(r"<(\w+)>", lambda m: "{%s}" % re.sub(r"_(\w)", lambda c: c[1].upper(), m[1]),
                          rule.rule).rstrip("/")
            expected |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert documented == expected
    assert {op["operationId"] for _, _, op in operations(doc)} == set(OPERATIONS)
    # The contract's four, the dashboard, batch, summary, students, its CSV, the lecture's POST
    # (sendBeacon).
    assert len(documented) == 10


def test_every_view_has_an_operation_entry(app):
    """A new view without an OPERATIONS entry would be left out of the document."""
    views = {rule.endpoint.split(".", 1)[1] for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("progress.")}
    assert views - {"fallback"} == set(OPERATIONS)


def test_security_schemes_are_the_cookie_and_bearer(doc):
    """The `token` cookie or a Bearer JWT, either one, on every operation."""
    schemes = doc["components"]["securitySchemes"]
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "token",
                                     "description": schemes["cookieAuth"]["description"]}
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for _, _, op in operations(doc):
        assert op["security"] == [{"cookieAuth": []}, {"bearerAuth": []}]


@pytest.mark.parametrize("app_config", [{"JWT_TOKEN_LOCATION": ["headers"]}])
def test_only_the_configured_token_locations_are_declared(doc):
    """JWT_TOKEN_LOCATION=headers: no cookie scheme is offered."""
    assert set(doc["components"]["securitySchemes"]) == {"bearerAuth"}


def test_path_ids_are_24_hex(doc):
    """courseId and lectureId: required strings with the ObjectId pattern."""
    for path, _, op in operations(doc):
        for name in re.findall(r"{(\w+)}", path):
            [param] = [p for p in op["parameters"] if p["name"] == name]
            assert param["in"] == "path" and param["required"] is True
            assert param["schema"] == {"type": "string", "pattern": OBJECT_ID}


def test_every_operation_declares_its_errors_in_the_envelope(doc):
    """401 and 503 everywhere; 400, 404, 403, 409, 413 where they can happen."""
    failure = doc["components"]["schemas"]["Failure"]
    assert failure["required"] == ["message", "status"]
    assert failure["properties"]["status"]["enum"] == ["fail", "error"]
    for path, method, op in operations(doc):
        statuses = set(op["responses"])
        assert {"200", "400", "401", "503"} <= statuses, (method, path)
        if "{courseId}" in path:
            assert "404" in statuses
        if "{courseId}" in path:
            assert "403" in statuses, "enrollment, or the instructor views' own check"
        if method != "get":
            assert {"409", "204"} <= statuses
            assert op["responses"]["204"]["headers"]["Preference-Applied"]["schema"]["enum"] == ["return=minimal"]
            assert {"in": "header", "name": "Prefer"}.items() <= next(
                param for param in op["parameters"] if param["name"] == "Prefer").items()
        if "requestBody" in op:
            assert "413" in statuses
        for status, response in op["responses"].items():
            if status not in ("200", "204"):
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Failure"}
        for status in ("409", "503"):
            if status in statuses:
                assert "Retry-After" in op["responses"][status]["headers"]


def test_bodies_are_strict_and_typed(doc):
    """isCompleted a boolean, watchTime a number >= 0, unknown fields refused, 1-200 items."""
    schemas = doc["components"]["schemas"]
    update = schemas["LectureUpdate"]
    assert "required" not in update and update["additionalProperties"] is False
    either = [{"required": ["isCompleted"]}, {"required": ["watchTime"]}]
    assert update["anyOf"] == either and schemas["BatchItem"]["anyOf"] == either
    assert update["properties"]["isCompleted"] == {"type": "boolean"}
    assert update["properties"]["watchTime"] == {"type": "number", "minimum": 0}
    lectures = schemas["BatchUpdate"]["properties"]["lectures"]
    assert (lectures["minItems"], lectures["maxItems"]) == (1, 200)
    assert schemas["BatchItem"]["properties"]["lecture"]["pattern"] == OBJECT_ID


def test_output_keys_are_required_and_nullables_declared(doc):
    """Contract section 3: every key present; null only where the contract allows it."""
    progress = doc["components"]["schemas"]["Progress"]
    assert set(progress["required"]) == set(progress["properties"]) >= {
        "_id", "user", "course", "isCompleted", "completionPercentage", "lectureProgress",
        "lastAccessed", "createdAt", "updatedAt", "completedAt", "resume"}
    assert progress["additionalProperties"] is False
    assert progress["properties"]["completedAt"]["nullable"] is True
    assert "nullable" not in progress["properties"]["_id"]
    user = doc["components"]["schemas"]["User"]
    assert set(user["properties"]) == {"_id", "name", "email", "avatar"}  # never a password
    assert all(user["properties"][key]["nullable"] for key in ("name", "email", "avatar"))


def test_document_is_served_without_a_token_and_is_json(client):
    """No auth needed to read the document; the standalone app's /docs is not under the prefix."""
    response = client.get(DOC)
    assert response.status_code == 200
    assert json.loads(response.get_data(as_text=True))["paths"]


# --- real responses conform -----------------------------------------------------------------

@pytest.fixture
def world(lms):
    """A student with a record, the course's instructor, and ids to call with."""
    instructor = lms.user(role="instructor", name="Ines Instructor")
    course, lectures = lms.course(3, instructor=instructor)
    return {"student": lms.user(), "instructor": instructor, "course": str(course),
            "lectures": [str(lecture) for lecture in lectures]}


def call(client, user_id, method, path, body=None):
    """An authenticated request (Bearer); `body` sent as JSON."""
    data = None if body is None else json.dumps(body)
    return client.open(path, method=method.upper(), data=data,
                       headers={"Authorization": f"Bearer {make_token(user_id)}"})


@BOTH
def test_real_responses_conform_to_the_document(client, doc, world):
    """Success and failure of every operation, as the service sends them, match the document."""
    course, (first, second, _) = world["course"], world["lectures"]
    unknown = str(ObjectId())
    student, instructor = world["student"], world["instructor"]
    template = f"{PREFIX}/{{courseId}}"
    cases = [
        # (user, method, documented path, real path, body, expected status)
        (student, "get", template, f"{PREFIX}/{course}", None, 404),
        (student, "patch", template + "/lectures/{lectureId}", f"{PREFIX}/{course}/lectures/{first}",
         {"isCompleted": True, "watchTime": 12.5}, 200),
        (student, "get", template, f"{PREFIX}/{course}", None, 200),
        (student, "patch", template + "/lectures", f"{PREFIX}/{course}/lectures",
         {"lectures": [{"lecture": second, "isCompleted": True}]}, 200),
        (student, "post", template + "/complete", f"{PREFIX}/{course}/complete", None, 200),
        (student, "post", template + "/reset", f"{PREFIX}/{course}/reset", None, 200),
        (student, "get", PREFIX, PREFIX, None, 200),
        (student, "get", PREFIX, f"{PREFIX}?limit=0", None, 400),
        (instructor, "get", template + "/summary", f"{PREFIX}/{course}/summary", None, 200),
        (instructor, "get", template + "/students", f"{PREFIX}/{course}/students", None, 200),
        (instructor, "get", template + "/students", f"{PREFIX}/{course}/students?sort=percentage&order=desc"
                                                     "&status=in_progress&limit=1", None, 200),
        (instructor, "get", template + "/students", f"{PREFIX}/{course}/students?sort=age", None, 400),
        (instructor, "get", template + "/students.csv", f"{PREFIX}/{course}/students.csv", None, 200),
        (student, "get", template + "/students.csv", f"{PREFIX}/{course}/students.csv", None, 403),
        (student, "get", template + "/summary", f"{PREFIX}/{course}/summary", None, 403),
        (student, "get", template, f"{PREFIX}/not-an-id", None, 400),
        (student, "get", template, f"{PREFIX}/{unknown}", None, 404),
        (student, "patch", template + "/lectures/{lectureId}", f"{PREFIX}/{course}/lectures/{unknown}",
         {"isCompleted": True}, 400),
        (student, "patch", template + "/lectures/{lectureId}", f"{PREFIX}/{course}/lectures/{first}",
         {"isCompleted": "yes"}, 400),
        (student, "patch", template + "/lectures", f"{PREFIX}/{course}/lectures",
         {"lectures": [{"lecture": first, "isCompleted": True}] * 2}, 400),
    ]
    for user, method, path, url, body, status in cases:
        response = call(client, user, method, url, body)
        assert response.status_code == status, (method, url, response.get_json())
        assert_conforms(doc, path, method, response)
    unauthenticated = client.get(f"{PREFIX}/{course}")
    assert unauthenticated.status_code == 401
    assert_conforms(doc, template, "get", unauthenticated)


@BOTH
def test_a_user_missing_from_users_still_conforms(client, doc, lms):
    """The contract's nulls (name, email, avatar of an unknown user; a course without a
    thumbnail; lastWatched of an unwatched lecture) are declared nullable."""
    course, lectures = lms.course(2)
    ghost = ObjectId()
    lms.enroll(ghost, course)
    response = call(client, ghost, "patch", f"{PREFIX}/{course}/lectures/{lectures[0]}", {"isCompleted": False})
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["user"] == {"_id": str(ghost), "name": None, "email": None, "avatar": None}
    assert data["lectureProgress"][1]["lastWatched"] is None
    assert_conforms(doc, f"{PREFIX}/{{courseId}}/lectures/{{lectureId}}", "patch", response)


def test_the_allow_header_lists_only_documented_methods(client, doc):
    """OPTIONS and 405 name the methods the document has for the path (and HEAD, OPTIONS)."""
    course, lecture = ObjectId(), ObjectId()
    for documented, real in [(PREFIX, PREFIX), (f"{PREFIX}/{{courseId}}", f"{PREFIX}/{course}"),
                             (f"{PREFIX}/{{courseId}}/lectures/{{lectureId}}",
                              f"{PREFIX}/{course}/lectures/{lecture}"),
                             (f"{PREFIX}/{{courseId}}/complete", f"{PREFIX}/{course}/complete")]:
        methods = {method.upper() for method in doc["paths"][documented]} | {"HEAD", "OPTIONS"}
        if "GET" not in methods:
            methods -= {"HEAD"}
        for response in (client.options(real), client.put(real)):
            assert set(response.headers["Allow"].replace(" ", "").split(",")) == methods, real
        assert client.put(real).status_code == 405


# --- mounted in a host app ------------------------------------------------------------------

@pytest.fixture
def host(db_uri):
    """A bare host Flask app with the progress feature under its own prefix."""
    app = Flask("host")
    with mounted_database(db_uri) as database:
        app.config.update(JWT_SECRET_KEY=SECRET, **database)
        Progress(app, url_prefix="/lms/api/progress")
        yield app
        close_mounts(app)


def test_mounted_app_serves_the_document_under_its_prefix(host):
    """The paths carry the host's prefix; the host gets no /docs page from us."""
    client = host.test_client()
    response = client.get("/lms/api/progress/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate_spec(copy.deepcopy(document))
    assert all(path.startswith("/lms/api/progress") for path in document["paths"])
    assert "/lms/api/progress/{courseId}/lectures/{lectureId}" in document["paths"]
    assert client.get("/docs").status_code == 404
    assert client.get(DOC).status_code == 404


def test_document_follows_the_script_root(client):
    """Behind a proxy mounting the app at /progress-svc, servers names that root."""
    response = client.get(DOC, base_url="http://localhost/progress-svc")
    assert response.get_json()["servers"] == [{"url": "/progress-svc"}]
    assert client.get(DOC).get_json()["servers"] == [{"url": "/"}]


# --- the human-readable page ------------------------------------------------------------------

def test_docs_page_uses_bundled_assets_only(client):
    """HTML pointing at our document and at assets served by this app: no CDN, no validator."""
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert json.dumps(DOC) in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<script>" not in page, "no inline script: the policy allows none"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "validatorUrl: null" in client.get("/docs/setup.js").get_data(as_text=True)
    for asset in re.findall(r"(?:src|href)=\"(/docs/[^\"]+)\"", page):
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.mimetype in ("text/css", "text/javascript", "application/javascript", "image/png")
        assert served.headers["Content-Security-Policy"] == policy
    assert len(re.findall(r"(?:src|href)=\"/docs/", page)) == 5


def test_only_the_pages_own_assets_are_served(client):
    """The rest of the swagger-ui-bundle directory (its petstore index, maps) is not ours to serve."""
    for name in ("index.html", "swagger-ui.js.map", "oauth2-redirect.html", "swagger-initializer.js"):
        response = client.get(f"/docs/{name}")
        assert (response.status_code, response.get_json()) == (404, {"status": "fail", "message": "Not found"}), name


def test_docs_assets_outside_the_bundle_are_json_404(client):
    """The standalone app answers JSON everywhere but the page itself."""
    for path in ("/docs/nope.js", "/docs/../wsgi.py", "/docs/%2e%2e/wsgi.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json() == {"status": "fail", "message": "Not found"}
