"""Request logs (issue 3, point 8): one JSON line per request on stdout, never a secret."""
import json
import re

import pytest
from bson import ObjectId
from flask import Flask

from progress_service.progress import Progress

from .clients import Scenario, database  # noqa: F401 (fixture)
from .serving import Gunicorn
from .support import PREFIX, Api, make_token, mounted_database

REQUEST_FIELDS = {"time", "level", "logger", "pid", "message", "requestId", "method", "path", "status",
                  "durationMs", "userId"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def request_lines(text):
    """The request lines among the JSON lines written to stdout."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [line for line in lines if line["logger"] == "progress_service.request"]


def test_one_json_line_per_request_with_id_method_path_status_duration_user(client, lms, capsys):
    """Each request: exactly one line, with the caller's user id once authenticated."""
    user = lms.user()
    course, lectures = lms.course(2)
    api = Api(client, user)
    capsys.readouterr()
    patched = api.patch(course, lectures[0], {"isCompleted": True}, headers={"X-Request-ID": "lb-7f3a.1"})
    refused = client.get(f"{PREFIX}/{course}?page=2")
    health = client.get("/healthz")
    lines = request_lines(capsys.readouterr().out)
    assert len(lines) == 3
    first, second, third = lines
    assert set(first) == REQUEST_FIELDS
    assert first["requestId"] == "lb-7f3a.1" == patched.headers["X-Request-ID"]
    assert (first["method"], first["path"], first["status"], first["userId"]) == (
        "PATCH", f"{PREFIX}/{course}/lectures/{lectures[0]}", 200, str(user))
    assert isinstance(first["durationMs"], float) and first["durationMs"] >= 0
    assert first["level"] == "info" and first["time"].endswith("Z")
    # The query string is not logged: only the path.
    assert (second["path"], second["status"], second["userId"]) == (f"{PREFIX}/{course}", 401, None)
    assert GENERATED_ID.fullmatch(second["requestId"]) and second["requestId"] == refused.headers["X-Request-ID"]
    assert (third["path"], third["status"]) == ("/healthz", 200)
    assert len({line["requestId"] for line in lines}) == 3


@pytest.mark.parametrize("incoming", ["x" * 129, "two words", 'quote"d', "semi;colon", "é"])
def test_an_untrustworthy_request_id_is_replaced(client, capsys, incoming):
    """Only short plain ids are honoured: anything else is replaced, in the log and the echo."""
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    line, = request_lines(capsys.readouterr().out)
    assert GENERATED_ID.fullmatch(line["requestId"])
    assert response.headers["X-Request-ID"] == line["requestId"]


def test_no_token_cookie_or_authorization_reaches_the_log(client, lms, capsys):
    """Tokens in the header, the cookie and the query string: none of them is written anywhere."""
    user = lms.user()
    course, lectures = lms.course(1)
    good = make_token(user)
    bad = make_token(user, expires_in=-10)
    client.set_cookie("token", good)
    client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}?token={good}", data='{"isCompleted": true}',
                 headers={"Authorization": f"Bearer {bad}"})
    client.delete_cookie("token")
    client.get(f"{PREFIX}/{course}", headers={"Authorization": f"Bearer {bad}"})
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert len(request_lines(captured.out)) == 2
    for secret in (good, bad, good.split(".")[2], bad.split(".")[2]):
        assert secret not in output
    assert "Bearer" not in output and "Authorization" not in output and "Cookie" not in output


def test_a_mounted_host_keeps_its_own_logging(capsys):
    """Mounted, the blueprint writes no request lines and adds no X-Request-ID: the host decides."""
    host = Flask("host")
    host.config.update(JWT_SECRET_KEY="host-secret-key-that-is-at-least-32-bytes")
    with mounted_database() as database:
        host.config.update(database)
        Progress(host)
        response = host.test_client().get(f"{PREFIX}/{ObjectId()}")
    assert response.status_code == 401
    assert "X-Request-ID" not in response.headers
    assert request_lines(capsys.readouterr().out) == []


@pytest.mark.slow
def test_under_gunicorn_everything_is_json_on_stdout(tmp_path, database):
    """gunicorn's own lines and the request lines share stdout, one JSON object each; stderr is empty."""
    embedded, db = database
    scenario = Scenario(db, lectures=2)
    user, token = scenario.student, scenario.student_token
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=1) as server:
        written = server.call("PATCH", f"{scenario.course}/lectures/{scenario.lectures[1]}", token=token,
                              body={"isCompleted": True}, headers={"X-Request-ID": "edge-123"})
        assert written.status_code == 200 and written.headers["X-Request-ID"] == "edge-123"
        assert server.call("GET", str(scenario.course), token="x.y.z").status_code == 401
    lines = server.log_lines()  # json.loads of every line: fails on anything that is not JSON
    assert server.stderr() == ""
    messages = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any(m.startswith("Starting gunicorn") for m in messages)
    assert any(m.startswith("Booting worker") for m in messages)
    assert "Shutting down: Master" in messages
    requests_logged = [line for line in lines if line["logger"] == "progress_service.request"]
    healthz = [line for line in requests_logged if line["path"] == "/healthz"]
    api_lines = [line for line in requests_logged if line["path"] != "/healthz"]
    assert healthz, "the start-up probe is logged too"
    assert [(line["requestId"], line["status"], line["userId"]) for line in api_lines][:1] == [
        ("edge-123", 200, str(user))]
    assert api_lines[1]["status"] == 401 and api_lines[1]["userId"] is None
    assert token not in server.stdout_path.read_text()
