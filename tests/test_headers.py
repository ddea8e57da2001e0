"""Response headers (issue 3, point 7): nosniff everywhere, no-store on progress, no version banner."""
from importlib.metadata import version

import pytest
from bson import ObjectId
from flask import Flask

from progress_service import create_app
from progress_service.progress import Progress

from .clients import Scenario, database  # noqa: F401 (fixture)
from .serving import Gunicorn
from .support import PREFIX, SECRET, Api, make_token, mounted_database


def test_every_standalone_response_says_nosniff(client, lms):
    """Health, API page misses, routing errors, API answers: all carry X-Content-Type-Options."""
    api = Api(client, lms.user())
    course, lectures = lms.course(1)
    responses = {
        "healthz": client.get("/healthz"),
        "unknown path": client.get("/nope"),
        "wrong method": client.delete("/healthz"),
        "401": client.get(f"{PREFIX}/{course}"),
        "200": api.patch(course, lectures[0], {"isCompleted": True}),
        "404 under the prefix": api.get(ObjectId()),
    }
    for name, response in responses.items():
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name


def test_progress_responses_are_never_cached(client, lms):
    """Success and failure under the prefix: Cache-Control no-store (a shared cache must not keep them)."""
    api = Api(client, lms.user())
    course, lectures = lms.course(1)
    for response in (api.patch(course, lectures[0], {"isCompleted": True}), api.get(course),
                     api.get("not-an-id"), client.get(f"{PREFIX}/{course}"),
                     client.get(PREFIX, headers={"Authorization": f"Bearer {api.token}"})):
        assert response.headers["Cache-Control"] == "no-store", response.status_code


def test_mounted_the_host_keeps_its_own_headers_outside_the_prefix():
    """Mounted: nosniff and no-store on our routes only; the host's own routes are its business."""
    host = Flask("host")
    host.config.update(JWT_SECRET_KEY="host-secret-key-that-is-at-least-32-bytes")
    host.add_url_rule("/home", "home", lambda: "home")
    with mounted_database() as database:
        host.config.update(database)
        Progress(host)
        client = host.test_client()
        ours = client.get(f"{PREFIX}/{ObjectId()}")
        theirs = client.get("/home")
    assert ours.headers["X-Content-Type-Options"] == "nosniff" and ours.headers["Cache-Control"] == "no-store"
    assert "X-Content-Type-Options" not in theirs.headers and "Cache-Control" not in theirs.headers


@pytest.mark.slow
def test_under_gunicorn_no_version_banner(tmp_path, database):
    """gunicorn's default Server header, without a version; nothing else names the software."""
    embedded, db = database
    scenario = Scenario(db, lectures=1)
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=1) as server:
        responses = [server.call("PATCH", f"{scenario.course}/lectures/{scenario.lectures[0]}",
                                 token=scenario.student_token, body={"isCompleted": True}),
                     server.call("GET", "/healthz"), server.call("GET", "/nope"),
                     server.call("GET", str(scenario.course))]
    assert [r.status_code for r in responses] == [200, 200, 404, 401]
    for response in responses:
        assert response.headers["Server"] == "gunicorn"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "X-Powered-By" not in response.headers
        assert not any(word in value.lower() for value in response.headers.values()
                       for word in ("werkzeug", "flask", "python", version("gunicorn")))
    assert responses[0].headers["Cache-Control"] == "no-store"


ORIGIN = "http://localhost:5173"  # the default CLIENT_URL


def cors_view(response):
    """The headers a browser's CORS and cache rules read, as a dict."""
    keys = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
            "Cache-Control", "X-Content-Type-Options", "Vary")
    return {key: response.headers.get(key) for key in keys}


def test_retry_after_is_exposed_to_cross_origin_scripts():
    """A 503 carries Retry-After, and a script on an allowed origin may read it (contract section 12)."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
                      "MONGODB_URI": "mongodb://127.0.0.1:9/away?directConnection=true&serverSelectionTimeoutMS=300"})
    answer = app.test_client().get(f"{PREFIX}/{ObjectId()}", headers={
        "Origin": ORIGIN, "Authorization": f"Bearer {make_token(ObjectId())}"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = [name.strip().lower() for name in answer.headers["Access-Control-Expose-Headers"].split(",")]
    assert "retry-after" in exposed


def test_the_openapi_document_carries_the_apis_cors_and_cache_headers(client, api):
    """<prefix>/openapi.json: the same CORS (answer and preflight) and Cache-Control as the API's answers."""
    document = client.get(f"{PREFIX}/openapi.json", headers={"Origin": ORIGIN})
    answer = client.get(PREFIX, headers={"Origin": ORIGIN, "Authorization": f"Bearer {api.token}"})
    assert document.status_code == 200 and document.json["openapi"]
    assert cors_view(document) == cors_view(answer)
    assert cors_view(document)["Access-Control-Allow-Origin"] == ORIGIN
    assert cors_view(document)["Cache-Control"] == "no-store"
    preflight = client.options(f"{PREFIX}/openapi.json", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.json == {"status": "success", "data": {"methods": ["GET", "HEAD", "OPTIONS"]}}
    elsewhere = client.get(f"{PREFIX}/openapi.json", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers and elsewhere.headers["Cache-Control"] == "no-store"
