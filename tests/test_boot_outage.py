"""Workers that boot while the database is away (contract section 12), with xAPI on, for real.

gunicorn with the shipped configuration, two workers, a SecantusDB daemon of the test's own and a
stub LRS in this process. The database stops; a worker is killed and gunicorn starts another; a
second gunicorn cold-starts: every master stays up, /healthz answers 200 and /readyz 503. The
database returns: writes are served again and every statement reaches the LRS exactly once.
Before, the new worker's post_worker_init asked the database whether it takes transactions, failed
to reach it, and exited with code 3, which stops gunicorn ("Worker failed to boot").
"""
import os
import signal
import time

import pytest

from progress_service.progress.outbox import COLLECTION

from .clients import Scenario, database, wait_for  # noqa: F401 (fixture)
from .serving import Gunicorn
from .stub_lrs import StubLrs

pytestmark = [pytest.mark.wire, pytest.mark.slow]


@pytest.fixture
def lrs():
    """The stub LRS, accepting everything."""
    stub = StubLrs()
    yield stub
    stub.close()


def served(tmp_path, embedded, db, lrs):
    """A gunicorn (two workers) on the test's database, xAPI to the stub LRS; not started."""
    env = {"PROGRESS_XAPI_ENDPOINT": lrs.endpoint, "PROGRESS_XAPI_USERNAME": "u", "PROGRESS_XAPI_PASSWORD": "p",
           "PROGRESS_XAPI_HOMEPAGE": "https://lms.example.com"}
    return Gunicorn(tmp_path, embedded.uri(db.name), workers=2, env=env)


def up_but_not_ready(server):
    """The master runs, all its workers answer /healthz 200, and /readyz says 503."""
    assert server.process.poll() is None, "gunicorn stopped: " + server.stdout_path.read_text()[-2000:]
    assert len(server.worker_pids()) == 2
    assert server.call("GET", "/healthz").status_code == 200
    ready = server.call("GET", "/readyz")
    assert ready.status_code == 503 and ready.json() == {"status": "error", "message": "The database is unavailable"}


def test_workers_boot_during_an_outage_and_every_statement_arrives_once(tmp_path, database, lrs):
    """Kill a worker while the database is down, cold-start another gunicorn meanwhile; then recover."""
    embedded, db = database
    scenario = Scenario(db, lectures=3)
    path = f"{scenario.course}/lectures/{{}}"
    first = served(tmp_path, embedded, db, lrs).start()
    second = served(tmp_path, embedded, db, lrs)
    try:
        done = first.call("PATCH", path.format(scenario.lectures[0]), token=scenario.student_token,
                          body={"isCompleted": True})
        assert done.status_code == 200
        assert wait_for(lambda: len(lrs.delivered()) == 2, 20), "delivered before the outage"

        embedded.stop()
        victim = first.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(first.worker_pids()) == 2 and victim not in first.worker_pids(), 30)
        time.sleep(3)  # the new worker's start-up has asked the database by now
        up_but_not_ready(first)
        second.start(timeout=60)  # a cold start while the database is unreachable
        up_but_not_ready(second)
        refused = second.call("PATCH", path.format(scenario.lectures[1]), token=scenario.student_token,
                              body={"isCompleted": True})
        assert refused.status_code == 503

        embedded.start()
        for server in (first, second):
            assert wait_for(lambda: server.call("GET", "/readyz").status_code == 200, 30), "ready again"
        for server, lecture in ((first, scenario.lectures[1]), (second, scenario.lectures[2])):
            answer = server.call("PATCH", path.format(lecture), token=scenario.student_token, body={"isCompleted": True})
            assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["completionPercentage"] == 100

        assert wait_for(lambda: db[COLLECTION].count_documents({}) == 0, 120), "the outbox drained"
        delivered = lrs.delivered()
        assert len(delivered) == 2 * 3 + 1 and set(delivered.values()) == {1}, delivered
        for server in (first, second):
            assert server.process.poll() is None
            assert "Worker failed to boot" not in server.stdout_path.read_text()
    finally:
        second.stop()
        first.stop()
