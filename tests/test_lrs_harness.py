"""Ralph's real behaviour over the wire (ralph-malph 5.1.0, mongo backend on SecantusDB).

These pin what the service can rely on, and what it must not, when it sends statements.
Tests on the shared `ralph_lrs` each use their own student (actor) and count by id what
`statements(agent=...)` returns after paging; a test that stops something has its own LRS.
"""
import time
import uuid
from collections import Counter
from urllib.parse import urljoin

import pytest
import requests
from bson import ObjectId

from .lrs import LRSPagingError, RalphLRS
from .support import EmbeddedServer
from .xapi import (HOMEPAGE, PROGRESS, agent, course_progressed, sample_statements,
                   validate_statements)


def new_user():
    """A fresh student id (24 hex, as the LMS's users)."""
    return str(ObjectId())


def stored_ids(lrs, user):
    """{statement id: how many times} of everything the LRS returns for `user`, all pages."""
    return Counter(statement["id"] for statement in lrs.statements(agent=agent(user)))


def timed_statements(user, count, timestamp):
    """`count` progress statements of `user`, statement i at `timestamp(i)`."""
    course = str(ObjectId())
    statements = [course_progressed(user, course, "Course", index) for index in range(count)]
    for index, statement in enumerate(statements):
        statement["timestamp"] = timestamp(index)
    return statements


# -- POST: what it answers, what it stores ---------------------------------------------------

def test_post_one_statement_answers_its_id_and_stores_it_as_sent(ralph_lrs):
    """200 with `[id]`; the stored statement is the sent one plus `stored` and `authority`."""
    user = new_user()
    statement = sample_statements(user)[0]
    response = ralph_lrs.post(statement)
    assert response.status_code == 200
    assert response.json() == [statement["id"]]
    [stored] = ralph_lrs.statements(agent=agent(user))
    assert {key: stored[key] for key in statement} == statement
    assert set(stored) - set(statement) == {"stored", "authority"}
    assert stored["authority"] == {"objectType": "Agent",
                                   "account": {"homePage": HOMEPAGE, "name": ralph_lrs.username}}
    # What the LRS gives back passes the strict check too (stored, authority included).
    assert validate_statements([stored]) == []


def test_post_a_batch_answers_the_ids_in_order(ralph_lrs):
    """An array: 200 with the ids in the order sent; each stored once."""
    user = new_user()
    statements = sample_statements(user)
    response = ralph_lrs.post(statements)
    assert response.status_code == 200
    assert response.json() == [statement["id"] for statement in statements]
    assert stored_ids(ralph_lrs, user) == Counter(statement["id"] for statement in statements)


def test_same_statement_again_is_204_and_stored_once(ralph_lrs):
    """A resend (same id, same content) is 204 with an empty body: a retry is safe."""
    user = new_user()
    statement = sample_statements(user)[1]
    assert ralph_lrs.post(statement).status_code == 200
    again = ralph_lrs.post(statement)
    assert again.status_code == 204
    assert again.content == b""
    assert stored_ids(ralph_lrs, user) == Counter([statement["id"]])


def test_batch_resending_stored_statements_stores_only_the_new_ones(ralph_lrs):
    """A batch mixing a stored statement with new ones: 200, the body lists only the new ids."""
    user = new_user()
    first, second, third = sample_statements(user)
    assert ralph_lrs.post(first).status_code == 200
    response = ralph_lrs.post([first, second, third])
    assert response.status_code == 200
    assert response.json() == [second["id"], third["id"]]
    assert stored_ids(ralph_lrs, user) == Counter([first["id"], second["id"], third["id"]])


def test_batch_of_only_stored_statements_is_204(ralph_lrs):
    """Resending a whole batch that is already stored: 204, nothing added."""
    user = new_user()
    statements = sample_statements(user)
    assert ralph_lrs.post(statements).status_code == 200
    again = ralph_lrs.post(statements)
    assert (again.status_code, again.content) == (204, b"")
    assert sum(stored_ids(ralph_lrs, user).values()) == 3


def test_same_id_different_content_is_409_and_keeps_the_first(ralph_lrs):
    """A different statement under a stored id: 409 naming the id; the stored one is unchanged."""
    user = new_user()
    statement = sample_statements(user)[1]
    assert ralph_lrs.post(statement).status_code == 200
    changed = {**statement, "result": {"extensions": {PROGRESS: 60}}}
    response = ralph_lrs.post(changed)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Differing statements already exist with the same ID: {statement['id']}"}
    [stored] = ralph_lrs.statements(agent=agent(user))
    assert stored["result"]["extensions"][PROGRESS] == 50


def test_a_conflict_in_a_batch_rejects_the_whole_batch(ralph_lrs):
    """A batch holding one conflicting statement: 409, and none of its new statements is stored."""
    user = new_user()
    first, second, third = sample_statements(user)
    assert ralph_lrs.post(second).status_code == 200
    changed = {**second, "result": {"extensions": {PROGRESS: 60}}}
    response = ralph_lrs.post([first, changed, third])
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Differing statements already exist with the same ID: {second['id']}"}
    assert stored_ids(ralph_lrs, user) == Counter([second["id"]])


def test_the_same_id_twice_in_one_batch_is_400(ralph_lrs):
    """Two statements with one id in a batch: 400, nothing stored."""
    user = new_user()
    first, second, _ = sample_statements(user)
    response = ralph_lrs.post([first, {**second, "id": first["id"]}])
    assert response.status_code == 400
    assert response.json() == {"detail": "Duplicate statement IDs in the list of statements"}
    assert stored_ids(ralph_lrs, user) == Counter()


def test_ralph_fills_id_and_timestamp_but_not_version(ralph_lrs):
    """Without id, Ralph makes a UUID (so a resend would be stored twice: the service sends its
    own ids); without timestamp it copies `stored`; without version it adds none."""
    user = new_user()
    statement = sample_statements(user)[2]
    for key in ("id", "timestamp", "version"):
        del statement[key]
    response = ralph_lrs.post(statement)
    assert response.status_code == 200
    [new_id] = response.json()
    assert str(uuid.UUID(new_id)) == new_id
    [stored] = ralph_lrs.statements(agent=agent(user))
    assert stored["id"] == new_id
    assert stored["timestamp"] == stored["stored"]
    assert stored["stored"].endswith("+00:00")  # Ralph's own times: offset, not Z
    assert "version" not in stored


def test_ralph_stores_statements_the_strict_check_refuses(ralph_lrs):
    """Ralph's endpoint validates little (actor, verb id, object id present): a non-IRI verb
    and an unknown property are stored. It is no validator; validate_statements is."""
    user = new_user()
    statement = sample_statements(user)[2]
    statement["verb"] = {"id": "completed"}
    statement["mood"] = "happy"
    response = ralph_lrs.post(statement)
    assert response.status_code == 200
    assert stored_ids(ralph_lrs, user) == Counter([statement["id"]])
    problems = validate_statements([statement])
    assert any("verb.id" in problem for problem in problems)
    assert any("mood: Extra inputs are not permitted" in problem for problem in problems)


# -- GET: paging -----------------------------------------------------------------------------

@pytest.mark.parametrize("count, sizes", [(5, [2, 2, 1]), (4, [2, 2, 0])])
def test_get_pages_through_more_links(ralph_lrs, count, sizes):
    """`limit` sizes the pages, `more` (a path: /xAPI/statements?...) links the next, newest
    first. A total that is a multiple of the limit ends with an empty page."""
    user = new_user()
    statements = timed_statements(user, count, lambda i: f"2024-05-01T10:00:{i:02d}.000Z")
    assert ralph_lrs.post(statements).status_code == 200
    pages = ralph_lrs.pages(agent=agent(user), limit=2)
    assert [len(page["statements"]) for page in pages] == sizes
    assert all(page["more"].startswith("/xAPI/statements?") for page in pages[:-1])
    assert "more" not in pages[-1]
    returned = [statement["id"] for page in pages for statement in page["statements"]]
    assert returned == [statement["id"] for statement in reversed(statements)]
    ascending = ralph_lrs.statements(agent=agent(user), limit=2, ascending=True)
    assert [statement["id"] for statement in ascending] == [s["id"] for s in statements]


def test_paging_is_lossy_when_timestamps_differ_within_a_second(ralph_lrs):
    """Ralph's mongo backend sorts by (timestamp, _id) but pages on `_id` alone, an `_id` being
    the timestamp's second plus a hash of the id: across pages, statements of one second with
    different milliseconds come twice or never. statements() raises instead; one page is right."""
    user = "5f0c" + "0" * 20
    statements = timed_statements(user, 12, lambda i: f"2024-05-01T10:00:00.{i:03d}Z")
    for index, statement in enumerate(statements):
        # Fixed ids: the hashes, hence the pages, are the same on every run.
        statement["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lossy-paging-{index}"))
    assert ralph_lrs.post(statements).status_code == 200
    paged = [s["id"] for page in ralph_lrs.pages(agent=agent(user), limit=3)
             for s in page["statements"]]
    sent = {statement["id"] for statement in statements}
    assert len(set(paged)) < len(sent)  # some never come
    assert len(paged) > len(set(paged))  # some come twice
    with pytest.raises(LRSPagingError):
        ralph_lrs.statements(agent=agent(user), limit=3)
    assert set(stored_ids(ralph_lrs, user)) == sent  # one page of 100 holds them all


# -- Authentication, headers, endpoint -------------------------------------------------------

def test_wrong_password_is_401_and_stores_nothing(ralph_lrs):
    """A wrong password (or none): 401, `WWW-Authenticate: Basic`, and the POST is not stored."""
    user = new_user()
    statement = sample_statements(user)[0]
    for auth in ((ralph_lrs.username, "wrong"), None):
        response = requests.post(ralph_lrs.statements_url, json=statement, auth=auth, timeout=10,
                                 headers={"X-Experience-API-Version": "1.0.3"})
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid authentication credentials"}
        assert response.headers["WWW-Authenticate"] == "Basic"
    assert stored_ids(ralph_lrs, user) == Counter()


def test_endpoint_is_the_xapi_base_and_the_version_header_is_not_checked(ralph_lrs):
    """Statements live at urljoin(endpoint, "statements"); Ralph serves no /xAPI/about (no
    health check there: /__lbheartbeat__ is Ralph's), and neither needs nor sends the
    X-Experience-API-Version header."""
    assert ralph_lrs.endpoint.endswith("/xAPI/")
    assert urljoin(ralph_lrs.endpoint, "statements") == ralph_lrs.statements_url
    bare = requests.get(ralph_lrs.statements_url, params={"limit": 1}, auth=ralph_lrs.auth,
                        timeout=10)
    assert bare.status_code == 200 and "statements" in bare.json()
    assert "X-Experience-API-Version" not in bare.headers
    about = requests.get(urljoin(ralph_lrs.endpoint, "about"), auth=ralph_lrs.auth, timeout=10)
    assert about.status_code == 404


# -- The LRS down, its database down ---------------------------------------------------------

def test_stopped_lrs_refuses_and_starts_again_on_its_data(own_ralph_lrs):
    """Stopped: connections refused. Started again: same endpoint, earlier statements there."""
    lrs = own_ralph_lrs
    user = new_user()
    first, second, _ = sample_statements(user)
    assert lrs.post(first).status_code == 200
    endpoint = lrs.endpoint
    lrs.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(lrs.statements_url, json=second, auth=lrs.auth, timeout=5)
    lrs.start()
    assert lrs.endpoint == endpoint
    assert lrs.post(second).json() == [second["id"]]
    assert stored_ids(lrs, user) == Counter([first["id"], second["id"]])


@pytest.mark.slow
def test_mongodb_unreachable_is_500_then_recovers(tmp_path):
    """Its MongoDB down: Ralph still runs (/__lbheartbeat__ 200) but POST and GET answer 500
    after the client's server-selection timeout; the POST's detail is "query failed" as
    Ralph first looks the ids up. Once MongoDB is back, the same POST is stored."""
    timeout = 1.0  # the pymongo server-selection timeout Ralph is given (its default is 30 s)
    database = EmbeddedServer(tmp_path / "db").start()
    lrs = RalphLRS(database.port, workdir=tmp_path / "ralph",
                   mongo_timeout_ms=int(timeout * 1000)).start()
    try:
        user = new_user()
        first, second, _ = sample_statements(user)
        assert lrs.post(first).status_code == 200
        database.stop()
        started = time.monotonic()
        response = lrs.post(second)
        waited = time.monotonic() - started
        assert (response.status_code, response.json()) == (
            500, {"detail": "xAPI statements query failed"})
        assert timeout <= waited < timeout + 5
        got = lrs.get(agent=agent(user))
        assert (got.status_code, got.json()) == (500, {"detail": "xAPI statements query failed"})
        assert requests.get(f"{lrs.base_url}/__lbheartbeat__", timeout=5).status_code == 200
        heartbeat = requests.get(f"{lrs.base_url}/__heartbeat__", timeout=10)
        assert (heartbeat.status_code, heartbeat.json()) == (500, {"database": "away"})
        database.start()
        assert lrs.post(second).json() == [second["id"]]
        assert stored_ids(lrs, user) == Counter([first["id"], second["id"]])
    finally:
        lrs.close()
        database.stop()
