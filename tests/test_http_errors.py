"""One envelope everywhere: routing errors, 413, unexpected exceptions, health endpoints."""
import pytest
from bson import ObjectId

from progress_service.progress import store

from .support import PREFIX, Api


@pytest.mark.parametrize("path", [f"{PREFIX}/a/b/c/d", f"{PREFIX}/x/lectures/y/z", "/nope", "/"])
def test_unknown_paths_are_json_404(client, path):
    """Under the prefix and (standalone) everywhere else."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.is_json and response.json == {"status": "fail", "message": "Not found"}


@pytest.mark.parametrize("method,path,allow", [
    ("get", "/{c}/complete", {"POST", "OPTIONS"}),
    ("delete", "/{c}", {"GET", "HEAD", "OPTIONS"}),
    ("put", "/{c}/lectures/{c}", {"PATCH", "POST", "OPTIONS"}),
    ("put", "/{c}/reset", {"POST", "OPTIONS"}),
])
def test_wrong_method_is_json_405_with_allow(client, method, path, allow):
    """405 in the envelope keeps the Allow header listing the real methods."""
    course = ObjectId()
    response = getattr(client, method)(PREFIX + path.format(c=course))
    assert response.status_code == 405
    assert response.json == {"status": "fail", "message": "Method not allowed"}
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allow


def test_body_over_64kb_is_413(api, lms):
    """A declared body over the limit: 413 in the envelope, nothing stored."""
    course, lectures = lms.course(1)
    padding = "x" * (64 * 1024)
    response = api.patch(course, lectures[0], f'{{"isCompleted": true, "pad": "{padding}"}}', raw=True)
    assert response.status_code == 413
    assert response.json == {"status": "fail", "message": "Request body too large"}
    assert lms.record(api.user_id, course) is None


def test_body_just_under_the_limit_is_read(api, lms):
    """A 60 KB body is parsed (and refused for its unknown field, not its size)."""
    course, lectures = lms.course(1)
    padding = "x" * (60 * 1024)
    response = api.patch(course, lectures[0], f'{{"isCompleted": true, "pad": "{padding}"}}', raw=True)
    assert response.status_code == 400
    assert "pad" in response.json["errors"]


def test_unexpected_error_is_500_without_trace(api, lms, monkeypatch):
    """A bug answers 500 in the envelope; no stack trace or exception text leaks."""
    course, _ = lms.course(1)

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "find", explode)
    response = api.get(course)
    assert response.status_code == 500
    assert response.json == {"status": "error", "message": "Internal server error"}
    assert "secret internals" not in response.get_data(as_text=True)


def test_progress_responses_are_not_cached(api, lms):
    """no-store and nosniff on progress responses, errors included."""
    course, lectures = lms.course(1)
    for response in (api.patch(course, lectures[0], {"isCompleted": True}), api.get(ObjectId())):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_health_endpoints(client):
    """/healthz is up; /readyz answers when the database does."""
    assert client.get("/healthz").json == {"status": "success", "data": {"alive": True}}
    assert client.get("/readyz").json == {"status": "success", "data": {"ready": True}}


def test_an_options_request_under_the_prefix_is_json_too(client, lms):
    """Flask's automatic OPTIONS answer is an empty HTML page; ours is the envelope with the methods."""
    course, lectures = lms.course(1)
    response = client.options(f"{PREFIX}/{course}/lectures/{lectures[0]}",
                              headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "PATCH"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json == {"status": "success", "data": {"methods": ["OPTIONS", "PATCH", "POST"]}}
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
