"""Every path to the LRS (contract section 12): redirects, an answer that dribbles, a statement that
always fails, no answer at all. Nothing lost, nothing sent twice at the same moment, no credential
for another address, the other records keep flowing.

The app runs in this process with its relay thread, on the wire server; a programmable stub LRS
(tests/stub_lrs.py) answers. Two apps on one database stand for two gunicorn workers where the
test is about the lease.
"""
import base64
import logging
import time
from datetime import timedelta

import pytest
from bson import ObjectId

from progress_service import create_app
from progress_service.progress import mount_of, relay as relay_module, start_background
from progress_service.progress.outbox import COLLECTION, LEASES, PARKED, PENDING
from progress_service.progress.rule import now_ms
from progress_service.progress.xapi import statement_id

from .clients import wait_for
from .stub_lrs import Reply, StubLrs, accept
from .support import SECRET, Api, Lms

pytestmark = pytest.mark.wire
HOMEPAGE = "https://lms.example.com"
CREDENTIALS = ("progress-service", "s3cret-pass")
AUTHORIZATION = "Basic " + base64.b64encode(":".join(CREDENTIALS).encode()).decode()


@pytest.fixture
def lrs():
    """The stub LRS, accepting everything until told otherwise."""
    stub = StubLrs()
    yield stub
    stub.close()


@pytest.fixture
def apps(wire_server, lrs):
    """apps(n): n apps (workers) on one fresh database, xAPI pointed at the stub; relays stopped after."""
    name = f"relay_{ObjectId()}"
    made = []

    def make(count=1):
        for _ in range(count):
            made.append(create_app({
                "PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": wire_server.uri(name),
                "PROGRESS_XAPI_ENDPOINT": lrs.endpoint, "PROGRESS_XAPI_USERNAME": CREDENTIALS[0],
                "PROGRESS_XAPI_PASSWORD": CREDENTIALS[1], "PROGRESS_XAPI_HOMEPAGE": HOMEPAGE}))
        return made[-count:]

    yield make
    for app in made:
        mount_of(app).relay.stop()
    for app in made:
        mount_of(app).database.close()


def outbox(app):
    """The outbox collection."""
    return mount_of(app).database.db()[COLLECTION]


def write(app, lectures=2, students=1):
    """Each of `students` new students completes every lecture of a new course; returns their ids.

    Per student: 2 statements per lecture, and the course's completion.
    """
    with app.app_context():
        lms = Lms(mount_of(app).database.db())
        users = [lms.user() for _ in range(students)]
        course, lecture_ids = lms.course(lectures)
    for lecture in lecture_ids:
        for user in users:
            assert Api(app.test_client(), user).patch(course, lecture, {"isCompleted": True}).status_code == 200
    return users


def statement_ids(app):
    """The ids of every statement in the outbox."""
    return {document["_id"] for document in outbox(app).find({}, {"_id": 1})}


# --- redirects ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_no_credential_leaves(apps, lrs, status, caplog):
    """The LRS answers 3xx to another host: never followed (urllib sent 301/302/303 on as a GET that
    answered 200, so the batch counted as delivered; it took the Basic credentials along; and a
    307/308 parked everything). Each is a failed delivery, logged with where it points, retried."""
    elsewhere = StubLrs()
    try:
        lrs.behave = lambda seen: Reply(status, headers={"Location": f"{elsewhere.base}/xAPI/statements"})
        [app] = apps()
        write(app)
        expected = statement_ids(app)
        with caplog.at_level(logging.WARNING, logger="progress_service"):
            start_background(app)
            assert wait_for(lambda: len(lrs.posts()) >= 3, 20), "the relay tried, and tried again"
        assert elsewhere.seen == [], "nothing went to the other address"
        assert all(seen.headers["Authorization"] == AUTHORIZATION for seen in lrs.posts())
        assert statement_ids(app) == expected and outbox(app).count_documents({"state": PARKED}) == 0
        assert any(f"HTTP {status}" in line and elsewhere.base in line and "PROGRESS_XAPI_ENDPOINT" in line
                   for line in caplog.messages), caplog.messages

        lrs.behave = accept  # the operator fixed the endpoint
        assert wait_for(lambda: outbox(app).count_documents({}) == 0, 30), "delivered once the LRS answers"
        assert lrs.delivered() == dict.fromkeys(expected, 1)
        assert elsewhere.seen == []
    finally:
        elsewhere.close()


# --- one sender at a time ---------------------------------------------------------------------

def test_an_answer_that_dribbles_cannot_keep_a_send_alive_past_the_lease(apps, lrs, monkeypatch):
    """The LRS trickles its answer a byte at a time for longer than the lease: each POST ends at its
    total deadline (a socket timeout bounded each read only, so a second worker took the lease and
    sent while the first was still sending). Two workers: never two POSTs at once; all arrive."""
    monkeypatch.setattr(relay_module, "LEASE_SECONDS", 4)
    monkeypatch.setattr(relay_module, "SEND_DEADLINE", 2, raising=False)
    monkeypatch.setattr(relay_module, "LEASE_MARGIN", 1, raising=False)
    slow = {"left": 3}

    def dribble(seen):
        if slow["left"] > 0:
            slow["left"] -= 1
            return Reply(200, body=b"[]" * 20, dribble=0.3)  # about 30 s for the whole answer
        return accept(seen)

    lrs.behave = dribble
    first, second = apps(2)
    write(first, students=2)
    expected = statement_ids(first)
    start_background(first)
    start_background(second)
    assert wait_for(lambda: outbox(first).count_documents({}) == 0, 60), "all delivered in the end"
    posts = lrs.posts()
    assert lrs.most_in_flight == 1, "never two senders at once"
    assert max(seen.seconds for seen in posts) < 2 + 1.5, [round(seen.seconds, 1) for seen in posts]
    assert set(lrs.delivered()) == expected


def test_a_sender_that_lost_its_lease_sends_nothing_more_and_acts_on_nothing(apps, lrs):
    """The lease is taken while a POST is in flight: its answer is not acted on (the new holder decides)
    and that sender sends nothing more while the other holds the lease."""
    held = {"first": True}

    def slow_once(seen):
        if held.pop("first", False):
            return Reply(200, body=b"[]", hang=1.5)
        return accept(seen)

    lrs.behave = slow_once
    [app] = apps()
    write(app, lectures=1)
    expected = statement_ids(app)
    start_background(app)
    assert wait_for(lambda: len(lrs.posts()) == 1, 10)
    leases = mount_of(app).database.db()[LEASES]
    leases.update_one({"_id": "relay"}, {"$set": {"owner": "another-worker", "until": now_ms() + timedelta(seconds=6)}})
    time.sleep(3)
    assert len(lrs.posts()) == 1, "nothing more sent without the lease"
    assert statement_ids(app) == expected, "the answer to a send under a lost lease was not acted on"
    assert wait_for(lambda: outbox(app).count_documents({}) == 0, 20), "once the lease ran out it sent again"
    assert set(lrs.delivered()) == expected


# --- a statement that always fails -------------------------------------------------------------

def poisoned(ids):
    """500 for any POST holding one of `ids`; the rest accepted."""
    return lambda seen: Reply(500, body=b'{"error": "boom"}') if set(seen.ids) & ids else accept(seen)


def parked_while_others_flow(app):
    """Whether a statement is parked; meanwhile another student completes a lecture, so the LRS has other
    statements to take (only failures while it takes others count against a statement)."""
    write(app, lectures=1)
    return outbox(app).count_documents({"state": PARKED}) == 1


def test_a_statement_that_always_fails_holds_back_only_its_own_record(apps, lrs):
    """One statement gets a 500 every time: the other records' statements arrive within 30 s of their
    write (it stalled every record); its own record's later ones wait behind it; it is parked after at
    most 5 failures while the LRS takes the others, and then its record's later ones go, in order."""
    [app] = apps()
    with app.app_context():
        lms = Lms(mount_of(app).database.db())
        stuck, other = lms.user(), lms.user()
        course, lectures = lms.course(3)
    stuck_api = Api(app.test_client(), stuck)
    assert stuck_api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    poison = outbox(app).find_one({"kind": "lecture-completed"})["_id"]
    lrs.behave = poisoned({poison})
    start_background(app)

    other_api = Api(app.test_client(), other)
    for lecture in lectures:
        written = time.monotonic()
        assert other_api.patch(course, lecture, {"isCompleted": True}).status_code == 200
        mine = {d["_id"] for d in outbox(app).find({"record": {"$ne": outbox(app).find_one({"_id": poison})["record"]}})}
        assert wait_for(lambda: not mine & statement_ids(app), 30), "another record's statements flowed"
        assert time.monotonic() - written < 30
    assert stuck_api.patch(course, lectures[1], {"isCompleted": True}).status_code == 200
    held = outbox(app).count_documents({"_id": {"$ne": poison}, "state": PENDING,
                                        "record": outbox(app).find_one({"_id": poison})["record"]})
    assert held == 3, "its own record's later statements wait behind it"

    assert wait_for(lambda: parked_while_others_flow(app), 90, interval=1), "parked in the end"
    parked = outbox(app).find_one({"state": PARKED})
    assert parked["_id"] == poison and 1 <= parked["strikes"] <= 5 and "HTTP 500" in parked["reason"]
    assert wait_for(lambda: outbox(app).count_documents({"state": PENDING}) == 0, 30)
    arrival = [i for seen in lrs.posts() if seen.status == 200 for i in seen.ids]
    assert poison not in arrival and len(arrival) == len(set(arrival))

    record = lms.record(stuck, course)["_id"]
    # The first write created the record (__v 0) with the poison and a progressed; the second is __v 1.
    in_order = [statement_id(record, 0, "progressed"), statement_id(record, 1, "lecture-completed", lectures[1]),
                statement_id(record, 1, "progressed")]
    assert [i for i in arrival if i in in_order] == in_order, "its record's later ones, in write order"


def test_while_the_lrs_takes_nothing_nothing_is_parked(apps, lrs, monkeypatch):
    """Every POST gets a 500 (the LRS is broken, not the statements): many tries, nothing parked; once
    it answers, everything arrives once."""
    monkeypatch.setattr(relay_module, "BACKOFF_SECONDS", (0.05, 0.2))
    monkeypatch.setattr("progress_service.progress.outbox.RETRY_SECONDS", (0.05, 0.2), raising=False)
    lrs.behave = lambda seen: Reply(500)
    [app] = apps()
    write(app, lectures=2, students=3)
    expected = statement_ids(app)
    start_background(app)
    assert wait_for(lambda: len(lrs.posts()) >= 30, 30), len(lrs.posts())
    assert outbox(app).count_documents({"state": PARKED}) == 0
    assert max(d.get("attempts", 0) for d in outbox(app).find()) > 5, "tried more than the cap, not parked"
    lrs.behave = accept
    assert wait_for(lambda: outbox(app).count_documents({}) == 0, 30)
    assert lrs.delivered() == dict.fromkeys(expected, 1)


def test_two_minutes_of_failing_while_others_flow_park_a_statement_before_five_tries(apps, lrs, monkeypatch):
    """The time bound (here shortened from 2 minutes to 1 s): parked at its first failure after it,
    with fewer than 5 failures held against it."""
    monkeypatch.setattr(relay_module, "PARK_AFTER_SECONDS", 1, raising=False)
    [app] = apps()
    users = write(app, lectures=1, students=2)
    poison = outbox(app).find_one({"kind": "lecture-completed"})["_id"]
    lrs.behave = poisoned({poison})
    start_background(app)
    assert wait_for(lambda: parked_while_others_flow(app), 30, interval=1)
    parked = outbox(app).find_one({"state": PARKED})
    assert parked["_id"] == poison and parked["strikes"] < 5 and len(users) == 2


# --- no answer at all ---------------------------------------------------------------------

def test_an_lrs_that_never_answers_loses_nothing_and_parks_nothing(apps, lrs, monkeypatch):
    """Every POST hangs: each ends at its deadline (not at a socket timeout per read); nothing is lost or
    parked; once the LRS answers, everything arrives once."""
    monkeypatch.setattr(relay_module, "SEND_DEADLINE", 1, raising=False)
    monkeypatch.setattr(relay_module, "BACKOFF_SECONDS", (0.1, 0.5))
    lrs.behave = lambda seen: Reply(200, hang=30)
    [app] = apps()
    write(app, lectures=1, students=2)
    expected = statement_ids(app)
    start_background(app)
    assert wait_for(lambda: len([s for s in lrs.posts() if s.ended]) >= 3, 30)
    assert all(seen.seconds < 2.5 for seen in lrs.posts() if seen.ended), [s.seconds for s in lrs.posts()]
    assert statement_ids(app) == expected and outbox(app).count_documents({"state": PARKED}) == 0
    lrs.behave = accept
    assert wait_for(lambda: outbox(app).count_documents({}) == 0, 30)
    assert lrs.delivered() == dict.fromkeys(expected, 1)
