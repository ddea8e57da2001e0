"""xAPI delivery as operators run it: gunicorn workers, a relay killed mid-batch, a restart.

The service runs under gunicorn with the shipped configuration (scripts/gunicorn.conf.py,
whose post_worker_init starts the relay in each worker after the fork); a recording proxy
stands in front of a real Ralph LRS. Each test ends with every statement in the LRS exactly
once (counted by id, paged) and the outbox empty.
"""
import os
import signal
import time

import pymongo
import pytest
from bson import ObjectId

from progress_service.progress.outbox import COLLECTION, LEASES

from .clients import wait_for
from .lrs_proxy import LrsProxy
from .serving import Gunicorn
from .support import Lms, make_token

pytestmark = [pytest.mark.wire, pytest.mark.slow]
HOMEPAGE = "https://lms.example.com"


@pytest.fixture
def served(tmp_path, wire_server, ralph_lrs):
    """(start, db, lrs, proxy): start() serves the app under gunicorn with xAPI through the proxy."""
    proxy = LrsProxy(ralph_lrs.endpoint)
    name = f"served_xapi_{ObjectId()}"
    uri = wire_server.uri(name)
    client = pymongo.MongoClient(uri, tz_aware=True)
    env = {"PROGRESS_XAPI_ENDPOINT": proxy.endpoint, "PROGRESS_XAPI_USERNAME": ralph_lrs.username,
           "PROGRESS_XAPI_PASSWORD": ralph_lrs.password, "PROGRESS_XAPI_HOMEPAGE": HOMEPAGE}
    started = []

    def start(workers=2):
        """A gunicorn serving the app on this database (stopped at the end of the test)."""
        server = Gunicorn(tmp_path, uri, workers=workers, env=env).start()
        started.append(server)
        return server

    yield start, client[name], ralph_lrs, proxy
    for server in started:
        server.stop()
    proxy.close()
    client.close()


def in_lrs(lrs, user_id):
    """The user's statements in the LRS, paged and counted by id."""
    return lrs.statements(agent={"objectType": "Agent", "account": {"homePage": HOMEPAGE, "name": str(user_id)}})


def drained(db, lrs, user_ids, expected, timeout=60):
    """Wait until the outbox is empty and the LRS holds `expected` statements per user, once each."""
    assert wait_for(lambda: db[COLLECTION].count_documents({}) == 0, timeout), "the outbox drained"
    for user_id in user_ids:
        found = in_lrs(lrs, user_id)
        ids = [statement["id"] for statement in found]
        assert len(ids) == len(set(ids)) == expected, (user_id, len(ids), len(set(ids)))


def write_some(server, db, students=2, lectures=3):
    """Each student completes every lecture of a new course: 2 statements per write + the course."""
    lms = Lms(db)
    users = [lms.user() for _ in range(students)]
    course, lecture_ids = lms.course(lectures)
    for lecture in lecture_ids:
        for user in users:
            response = server.call("PATCH", f"{course}/lectures/{lecture}", token=make_token(user),
                                   body={"isCompleted": True})
            assert response.status_code == 200, response.text
    return users, 2 * lectures + 1


def test_a_relay_killed_in_the_middle_of_a_batch_loses_nothing_and_sends_nothing_twice(served):
    """The LRS stored the batch, the sender dies before hearing so: another worker sends it again."""
    start, db, lrs, proxy = served
    proxy.refuse()
    server = start()
    users, per_user = write_some(server, db)
    proxy.hold()
    assert proxy.holding.wait(30), "a batch reached the LRS"
    owner = db[LEASES].find_one({"_id": "relay"})["owner"]
    sender = int(owner.split(":")[1])
    assert sender in server.worker_pids()
    os.kill(sender, signal.SIGKILL)  # mid-batch: the LRS has it, the outbox still does too
    proxy.forward()
    proxy.release.set()
    drained(db, lrs, users, per_user)
    assert sender not in server.worker_pids()
    resent = [statement["id"] for batch in proxy.received for statement in batch]
    assert len(resent) > len(set(resent)), "the killed sender's batch went again (identical: the LRS kept one)"


def test_a_restarted_service_delivers_what_waits_without_any_request(served):
    """Statements wait while the LRS is down; the service stops; it starts again and they go."""
    start, db, lrs, proxy = served
    proxy.refuse()
    server = start()
    users, per_user = write_some(server, db)
    waiting = db[COLLECTION].count_documents({})
    assert waiting == len(users) * per_user
    server.stop()
    proxy.forward()
    time.sleep(1)
    assert db[COLLECTION].count_documents({}) == waiting, "nothing sent while the service was down"
    start()  # no request at all from here
    drained(db, lrs, users, per_user)
