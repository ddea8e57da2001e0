"""Workers (issue 3, point 2): lazy connection, a worker killed under load, a graceful stop."""
import importlib.metadata
import os
import signal
import time

import pytest

from progress_service import create_app
from progress_service.progress import mount_of

from .clients import Scenario, Student, database, in_parallel, wait_for  # noqa: F401 (fixture)
from .serving import Gunicorn, SlowRequest, connections_to
from .support import SECRET, make_token


def test_create_app_opens_no_socket(wire_server):
    """Importing and create_app() connect nothing; the first request does (the control)."""
    before = set(connections_to("self", wire_server.port))
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
                      "MONGODB_URI": wire_server.uri("lazy")})
    try:
        assert set(connections_to("self", wire_server.port)) <= before
        assert app.test_client().get("/readyz").status_code == 200
        assert set(connections_to("self", wire_server.port)) - before, "the control: now connected"
    finally:
        mount_of(app).database.close()


@pytest.mark.slow
def test_no_database_connection_before_fork_even_with_preload(tmp_path, database):
    """--preload builds the app in the master: still no socket to MongoDB there, only in workers."""
    embedded, db = database
    scenario = Scenario(db)
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=2, preload=True) as server:
        master = server.process.pid
        assert connections_to(master, embedded.port) == []
        in_parallel([lambda: server.call("GET", str(scenario.course), token=scenario.student_token)
                     for _ in range(8)], width=2)
        assert connections_to(master, embedded.port) == []
        connected = [pid for pid in server.worker_pids() if connections_to(pid, embedded.port)]
        assert connected, "the control: a worker that served a request holds a connection"


@pytest.mark.slow
def test_a_worker_killed_mid_request_is_replaced_and_others_are_unaffected(tmp_path, database):
    """SIGKILL the worker serving one request under load: only that request fails; its retry lands."""
    embedded, db = database
    scenario = Scenario(db, lectures=200)
    retrier = scenario.lms.user()
    retrier_token = make_token(retrier)
    lecture = scenario.lectures[7]
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=3) as server:
        load = [Student(server, scenario.course, scenario.lectures, scenario.lms.user(), cycle=True)
                for _ in range(2)]
        for student in load:
            student.start()
        assert wait_for(lambda: all(len(s.acknowledged) >= 3 for s in load), 20)

        slow = SlowRequest(server, f"{scenario.course}/lectures/{lecture}", retrier_token,
                           {"isCompleted": True, "watchTime": 42})
        victim = slow.begin()
        served_before = sum(len(s.acknowledged) for s in load)
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(OSError):
            slow.finish()
        # The client retries the same idempotent PATCH.
        retry = server.call("PATCH", f"{scenario.course}/lectures/{lecture}", token=retrier_token,
                            body={"isCompleted": True, "watchTime": 42})
        assert retry.status_code == 200
        replaced = wait_for(lambda: len(server.worker_pids()) == 3 and victim not in server.worker_pids(), 20)
        assert replaced, "the master did not replace the killed worker"
        assert wait_for(lambda: sum(len(s.acknowledged) for s in load) > served_before + 10, 20)
        for student in load:
            student.stop()

    for student in load:
        assert student.errors == 0 and set(student.statuses) == {200}, "a request on another worker failed"
        stored = scenario.lms.record(student.user, scenario.course)
        done = {e["lecture"] for e in stored["lectureProgress"] if e["isCompleted"]}
        assert done == set(student.acknowledged)
    entry = next(e for e in scenario.lms.record(retrier, scenario.course)["lectureProgress"]
                 if e["lecture"] == lecture)
    assert entry["isCompleted"] is True and entry["watchTime"] == 42
    log = server.stdout_path.read_text()
    assert f"(pid:{victim}) was sent SIGKILL" in log


@pytest.mark.slow
def test_sigterm_drains_the_request_in_flight(tmp_path, database):
    """SIGTERM while a worker is mid-request: that request completes with 200, then gunicorn exits 0."""
    embedded, db = database
    scenario = Scenario(db)
    lecture = scenario.lectures[1]
    server = Gunicorn(tmp_path, embedded.uri(db.name), workers=2).start()
    try:
        slow = SlowRequest(server, f"{scenario.course}/lectures/{lecture}", scenario.student_token,
                           {"isCompleted": True})
        slow.begin()
        server.signal(signal.SIGTERM)
        time.sleep(1)
        assert server.process.poll() is None, "gunicorn exited with a request in flight"
        status, body = slow.finish()
        assert status == 200 and body["data"]["completionPercentage"] == 33
        assert server.process.wait(timeout=25) == 0
    finally:
        server.stop()
    stored = scenario.lms.record(scenario.student, scenario.course)
    assert [e["isCompleted"] for e in stored["lectureProgress"]] == [False, True, False]
    log = server.stdout_path.read_text()
    assert "Handling signal: term" in log and "Shutting down: Master" in log


GUNICORN_VERSION = tuple(int(part) for part in importlib.metadata.version("gunicorn").split(".")[:2])


@pytest.mark.slow
def test_no_control_socket_unless_the_deployment_names_one(tmp_path, database):
    """gunicorn's default control socket is one path per user (~/.gunicorn/gunicorn.ctl): two
    instances on a machine would share it. Off by default (gunicorn before 25.1 has none)."""
    embedded, db = database
    home = tmp_path / "home"
    home.mkdir()
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=1,
                  env={"HOME": str(home), "XDG_RUNTIME_DIR": ""}) as server:
        assert server.call("GET", "/healthz").status_code == 200
    assert not (home / ".gunicorn").exists()
    assert not any("Control socket" in line.get("message", "") for line in server.log_lines())


@pytest.mark.slow
@pytest.mark.skipif(GUNICORN_VERSION < (25, 1), reason="gunicorn has a control socket from 25.1")
def test_a_control_socket_named_by_the_deployment_is_opened_there(tmp_path, database):
    """GUNICORN_CONTROL_SOCKET turns it on at that path, and nothing goes to HOME."""
    embedded, db = database
    home = tmp_path / "home"
    home.mkdir()
    own = tmp_path / "progress.ctl"
    with Gunicorn(tmp_path, embedded.uri(db.name), workers=1,
                  env={"HOME": str(home), "XDG_RUNTIME_DIR": "", "GUNICORN_CONTROL_SOCKET": str(own)}):
        assert wait_for(own.exists, timeout=10), "the control socket at the configured path"
    assert not (home / ".gunicorn").exists()
