"""Database outage (issue 3, point 1): 503s within 10 s, liveness up, recovery, no acknowledged write lost.

The service runs as operators run it, gunicorn with the shipped config in a subprocess,
against a SecantusDB daemon of the test's own that it stops (or freezes) and starts again.
"""
import os
import runpy
import signal
import time
from unittest import mock

import mongoengine
import pytest
from bson import ObjectId
from flask import Flask

from progress_service import create_app
from progress_service.progress import Progress
from progress_service.progress.database import CLIENT_TIMEOUTS

from .clients import Scenario, Student, database, in_parallel, timed, wait_for  # noqa: F401 (fixture)
from .serving import GUNICORN_CONF, Gunicorn
from .support import SECRET, make_token

OUTAGE_BOUND_SECONDS = 10
ENVELOPE_503 = {"status": "error", "message": "The database is unavailable; retry later"}
# The order a fresh user can call them in and get 200 each time (the record exists first).
FIRST = ("progress.mark_lecture",)


def api_endpoints():
    """Every (endpoint, method, rule) of the progress API, from the app's own URL map.

    Taken from the app rather than listed here, so an endpoint added later is in the
    outage test without anyone remembering to add it.
    """
    # Only the URL map is wanted: the app's own client is made on first use, so none is.
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
                      "MONGODB_URI": "mongodb://127.0.0.1:9/unused?directConnection=true"})
    found = {}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("progress.") or rule.endpoint == "progress.fallback":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.setdefault((rule.endpoint, method), rule.rule)
    ordered = sorted(found.items(), key=lambda item: (item[0][0] not in FIRST, item[0]))
    return [(endpoint, method, rule) for (endpoint, method), rule in ordered]



def readiness_served_by(server, workers, timeout=20):
    """The workers that answered /readyz with 200 (the log line's pid), once all of them have."""
    served = set()
    deadline = time.monotonic() + timeout
    while served != workers and time.monotonic() < deadline:
        in_parallel([lambda: server.call("GET", "/readyz") for _ in range(2 * len(workers))], width=len(workers))
        served = {line["pid"] for line in server.log_lines()
                  if line.get("path") == "/readyz" and line.get("status") == 200}
    return served


@pytest.mark.slow
def test_outage_answers_503_then_recovers_with_every_acknowledged_write_kept(tmp_path, database):
    """Stop the database mid-run: 503s within 10 s, liveness stays up; start it: same workers serve."""
    embedded, db = database
    scenario = Scenario(db, lectures=200)
    prober = Scenario(db, lectures=3)
    endpoints = api_endpoints()
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=4) as server:
        workers = server.worker_pids()
        student = Student(server, scenario.course, scenario.lectures, scenario.student)
        student.start()
        assert wait_for(lambda: len(student.acknowledged) >= 5, 20), "no write before the outage"

        embedded.stop()
        calls = prober.requests_for(endpoints) + [("/readyz", "GET", "/readyz", None, None),
                                                  ("/healthz", "GET", "/healthz", None, None)]
        outage = in_parallel([lambda call=call: (call[0], *timed(server, *call[1:])) for call in calls], width=3)
        during = len(student.acknowledged)
        for label, response, seconds in outage:
            assert seconds < OUTAGE_BOUND_SECONDS, f"{label} took {seconds:.1f} s"
            if label == "/healthz":
                assert response.status_code == 200 and response.json()["data"] == {"alive": True}
                continue
            assert response.status_code == 503, (label, response.status_code, response.text)
            assert response.headers["Retry-After"] == "5", label
            if label == "/readyz":
                assert response.json() == {"status": "error", "message": "The database is unavailable"}
            else:
                assert response.json() == ENVELOPE_503, label
        assert 503 in student.statuses, "the running client saw the outage too"

        embedded.start()
        assert wait_for(lambda: server.call("GET", "/readyz").status_code == 200, 20), "no recovery"
        assert wait_for(lambda: len(student.acknowledged) > during + 5, 20), "writes did not resume"
        student.stop()

        assert readiness_served_by(server, set(workers)) == set(workers)
        after = [(label, server.call(method, path, token=token, body=body))
                 for label, method, path, token, body in prober.requests_for(endpoints)]
        assert [(label, r.status_code) for label, r in after] == [(label, 200) for label, _ in after]
        assert server.worker_pids() == workers, "a worker was replaced"
        log = server.stdout_path.read_text()
        assert "WORKER TIMEOUT" not in log and log.count("Booting worker") == len(workers)

    stored = scenario.lms.record(scenario.student, scenario.course)
    done = {entry["lecture"] for entry in stored["lectureProgress"] if entry["isCompleted"]}
    assert set(student.acknowledged) <= done, "an acknowledged write was lost"
    assert stored["__v"] >= len(student.acknowledged) - 1
    assert stored["completionPercentage"] == (200 * len(done) + 200) // 400


@pytest.mark.slow
def test_a_database_that_stops_answering_is_503_within_the_bound(tmp_path, database):
    """A hung server (SIGSTOP, connections stay open) is bounded by the driver's timeouts too."""
    embedded, db = database
    scenario = Scenario(db)
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=2) as server:
        path = f"{scenario.course}/lectures/{scenario.lectures[0]}"
        assert server.call("PATCH", path, token=scenario.student_token, body={"isCompleted": True}).ok
        embedded.process.send_signal(signal.SIGSTOP)
        try:
            hung = in_parallel([lambda: timed(server, "GET", str(scenario.course), scenario.student_token)
                                for _ in range(4)], width=2)
        finally:
            embedded.process.send_signal(signal.SIGCONT)
        for response, seconds in hung:
            assert response.status_code == 503 and response.json() == ENVELOPE_503
            assert seconds < OUTAGE_BOUND_SECONDS, f"{seconds:.1f} s"
        assert wait_for(lambda: server.call("GET", str(scenario.course), token=scenario.student_token).ok, 20)
        assert "WORKER TIMEOUT" not in server.stdout_path.read_text()


def test_driver_timeouts_stay_below_the_bound_and_the_worker_timeout():
    """The settings the outage test relies on: worst driver wait < 10 s < gunicorn's timeout."""
    with mock.patch.dict(os.environ):  # reading the file sets the metrics directory for gunicorn's run
        gunicorn = runpy.run_path(str(GUNICORN_CONF))
        if os.environ.get(gunicorn["TEMPORARY_METRICS_DIR"]):
            os.rmdir(os.environ[gunicorn["METRICS_DIR"]])
    timeouts = CLIENT_TIMEOUTS
    worst_ms = max(timeouts["serverSelectionTimeoutMS"], timeouts["timeoutMS"])
    assert worst_ms < OUTAGE_BOUND_SECONDS * 1000 < gunicorn["timeout"] * 1000
    assert timeouts["connectTimeoutMS"] < timeouts["serverSelectionTimeoutMS"]
    assert gunicorn["graceful_timeout"] < gunicorn["timeout"]


def test_a_host_connection_that_went_away_is_503_not_500(wire_server):
    """The host disconnects the MongoEngine alias we use: MongoEngine's own ConnectionFailure is a 503."""
    alias = f"gone-{ObjectId()}"
    mongoengine.connect(alias=alias, host=wire_server.uri(f"gone_{ObjectId()}"))
    host = Flask("host")
    host.config.update(JWT_SECRET_KEY=SECRET, PROGRESS_DB_ALIAS=alias)
    Progress(host)
    mongoengine.disconnect(alias)
    response = host.test_client().get(f"/api/v1/progress/{ObjectId()}",
                                      headers={"Authorization": f"Bearer {make_token(ObjectId())}"})
    assert response.status_code == 503
    assert response.json == {"status": "error", "message": "The database is unavailable; retry later"}
    assert response.headers["Retry-After"] == "5"


def test_bad_input_is_400_even_while_the_database_is_away():
    """Validation comes before the first database call (the index check included)."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
                      "MONGODB_URI": "mongodb://127.0.0.1:9/away?directConnection=true&serverSelectionTimeoutMS=300"})
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make_token(ObjectId())}"}
    assert client.get("/api/v1/progress/not-an-id", headers=auth).status_code == 400
    assert client.get("/api/v1/progress?page=0", headers=auth).status_code == 400
    bad_body = client.patch(f"/api/v1/progress/{ObjectId()}/lectures/{ObjectId()}", data="[", headers=auth)
    assert bad_body.status_code == 400
    assert client.get(f"/api/v1/progress/{ObjectId()}", headers=auth).status_code == 503
