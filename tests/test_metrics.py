"""Metrics (contract section 13), in this process: what is counted, under which labels, into
which registry. The served side (gunicorn's workers summed, a real Prometheus) is
tests/test_metrics_served.py.
"""
import gc
import re
import shutil
import subprocess
import threading
from pathlib import Path

import mongoengine
import pytest
from bson import ObjectId
from flask import Flask
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from progress_service import create_app
from progress_service.progress import MountError, Progress, metrics, mount_of, service, store
from progress_service.progress.database import IndexGuard

from .clients import wait_for
from .lrs_proxy import LrsProxy
from .prometheus import assert_no_ids_in
from .support import PREFIX, SECRET, WIRE, Api, Lms, close_mounts, mounted_database, utc_ms
from .test_xapi import xapi_app
from .unreachable import refused_endpoint

DOCS = Path(__file__).resolve().parent.parent / "docs"
OPERATIONS = DOCS / "operations.md"
COURSE = f"{PREFIX}/<course_id>"
LECTURE = f"{PREFIX}/<course_id>/lectures/<lecture_id>"


def registry_of(app):
    """The standalone app's own registry."""
    return app.extensions["progress_metrics"]


def samples(registry, name):
    """{labels as a tuple of values in label order: value} of the samples called `name`."""
    return {tuple(sample.labels.values()): sample.value for family in registry.collect()
            for sample in family.samples if sample.name == name}


def assert_no_ids(families, *ids):
    """No label value of any sample looks like an id, or contains one of `ids`."""
    assert_no_ids_in([value for family in families for sample in family.samples
                      for value in sample.labels.values()], *ids)


@WIRE
def test_requests_completions_and_commands_are_counted_by_template_never_by_id(app, lms, client):
    """Every kind of answer under its route template; completions by how; the mount's database
    commands by command and collection; no label value is an id."""
    user = lms.user()
    course, lectures = lms.course(3, durations=[100, 100, 100])
    api = Api(client, user)
    assert api.get(course).status_code == 404  # no record yet
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    assert api.patch(course, lectures[1], {"watchTime": 95}).status_code == 200  # 95 % of 100 s: watched
    assert api.patch(course, "not-an-id", {"isCompleted": True}).status_code == 400
    too_large = client.patch(f"{PREFIX}/{course}/lectures/{lectures[2]}", data="x" * 70_000,
                             headers={"Authorization": f"Bearer {api.token}"})
    assert too_large.status_code == 413
    assert api.complete(course).status_code == 200  # completes lecture 2 and the course
    assert api.get(course).status_code == 200
    unknown = client.get(f"{PREFIX}/{course}/no/such/path", headers={"Authorization": f"Bearer {api.token}"})
    assert unknown.status_code == 404

    registry = registry_of(app)
    assert samples(registry, "progress_http_requests_total") == {
        (COURSE, "GET", "404"): 1, (COURSE, "GET", "200"): 1,
        (LECTURE, "PATCH", "200"): 2, (LECTURE, "PATCH", "400"): 1, (LECTURE, "PATCH", "413"): 1,
        (f"{COURSE}/complete", "POST", "200"): 1, (f"{PREFIX}/<path:rest>", "GET", "404"): 1,
    }
    assert samples(registry, "progress_http_request_duration_seconds_count") == {
        (COURSE, "GET"): 2, (LECTURE, "PATCH"): 4, (f"{COURSE}/complete", "POST"): 1,
        (f"{PREFIX}/<path:rest>", "GET"): 1}
    assert samples(registry, "progress_http_requests_in_progress") == {(): 0}
    assert samples(registry, "progress_lecture_completions_total") == {("explicit",): 2, ("watching",): 1}
    assert samples(registry, "progress_course_completions_total") == {(): 1}
    commands = samples(registry, "progress_db_command_duration_seconds_count")
    for expected in [("insert", "courseprogresses"), ("update", "courseprogresses"), ("find", "courseprogresses"),
                     ("aggregate", "courses")]:
        assert commands.get(expected, 0) >= 1, (expected, commands)
    assert all(command not in ("", None) for command, _collection in commands)
    assert_no_ids(list(registry.collect()), user, course, *lectures)


@WIRE
@pytest.mark.parametrize("app_config", [{"PROGRESS_COMPLETE_BY": "watched"}])
def test_lectures_completed_by_the_seconds_played_count_as_watching(app, lms, client):
    """PROGRESS_COMPLETE_BY=watched: the write completes a lecture whose played union reaches
    90 %, on the full path and after a heartbeat; both count as watching, a flag as explicit."""
    user = lms.user()
    course, lectures = lms.course(3, durations=[100, 100, 100])
    api = Api(client, user)
    assert api.patch(course, lectures[0], {"watchTime": 95, "played": [[0, 95]]}).status_code == 200
    minimal = {"Prefer": "return=minimal"}
    assert api.patch(course, lectures[1], {"watchTime": 40, "played": [[0, 40]]}, headers=minimal).status_code == 204
    assert api.patch(course, lectures[1], {"watchTime": 95, "played": [[40, 95]]}, headers=minimal).status_code == 204
    assert api.patch(course, lectures[2], {"isCompleted": True}).status_code == 200
    assert [entry["isCompleted"] for entry in lms.record(user, course)["lectureProgress"]] == [True, True, True]
    assert samples(registry_of(app), "progress_lecture_completions_total") == {("watching",): 2, ("explicit",): 1}


def test_metrics_off_is_a_json_404_and_nothing_is_counted(db_uri):
    """PROGRESS_METRICS=off: /metrics is an unknown path like any other, and the mount counts nothing."""
    with mounted_database(db_uri) as database:
        app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "PROGRESS_METRICS": "off", **database})
        answer = app.test_client().get("/metrics")
        assert answer.status_code == 404
        assert answer.json == {"status": "fail", "message": "Not found"}
        assert mount_of(app).metrics is metrics.OFF
        assert "progress_metrics" not in app.extensions
        on = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, **database})
        served = on.test_client().get("/metrics")
        assert served.status_code == 200 and served.mimetype == "text/plain"
        names = {family.name for family in text_string_to_metric_families(served.get_data(as_text=True))}
        assert {"progress_http_requests", "progress_db_command_duration_seconds",
                "progress_unique_index_ready"} <= names


def default_registry_names():
    """The metric names in prometheus_client's process-wide registry (an app another test left
    for the garbage collector would still report its mount's database figures)."""
    gc.collect()
    return sorted(family.name for family in REGISTRY.collect())


def test_a_host_that_does_not_ask_gets_no_route_and_nothing_in_the_default_registry():
    """Mounted without metrics=: no /metrics rule, nothing registered anywhere, no listener."""
    before = default_registry_names()
    with mounted_database() as database:
        host = Flask("host")
        host.config.update(JWT_SECRET_KEY=SECRET, **database)
        Progress(host)
        lms = Lms(mount_of(host).database.db())
        user = lms.user()
        course, lectures = lms.course(2)
        assert Api(host.test_client(), user).patch(course, lectures[0], {"isCompleted": True}).status_code == 200
        assert not [rule for rule in host.url_map.iter_rules() if "metrics" in rule.rule]
        assert host.test_client().get("/metrics").status_code == 404
        assert mount_of(host).metrics is metrics.OFF
        assert metrics.OFF.command_listeners == ()
    assert default_registry_names() == before


@WIRE
def test_two_mounts_with_their_own_registries_count_separately(db_uri):
    """One host, two mounts (two prefixes), each counting into its own registry, each timing the
    commands of its own client only."""
    host = Flask("host")
    host.config.update(JWT_SECRET_KEY=SECRET, MONGODB_URI=db_uri)
    first, second = CollectorRegistry(), CollectorRegistry()
    Progress(host, url_prefix="/first", name="first", metrics=first)
    Progress(host, url_prefix="/second", name="second", metrics=second)
    try:
        lms = Lms(mount_of(host, "first").database.db())
        user = lms.user()
        course, lectures = lms.course(2)
        client = host.test_client()
        headers = {"Authorization": f"Bearer {Api(client, user).token}"}
        for _ in range(2):
            assert client.get(f"/first/{course}", headers=headers).status_code == 404
        assert client.patch(f"/second/{course}/lectures/{lectures[0]}", json={"isCompleted": True},
                            headers=headers).status_code == 200
        assert samples(first, "progress_http_requests_total") == {("/first/<course_id>", "GET", "404"): 2}
        assert samples(second, "progress_http_requests_total") == {
            ("/second/<course_id>/lectures/<lecture_id>", "PATCH", "200"): 1}
        assert samples(first, "progress_lecture_completions_total") == {}
        assert samples(second, "progress_lecture_completions_total") == {("explicit",): 1}
        inserts = ("insert", "courseprogresses")
        assert inserts not in samples(first, "progress_db_command_duration_seconds_count")
        assert samples(second, "progress_db_command_duration_seconds_count")[inserts] == 1
        ready = {name: samples(registry, "progress_unique_index_ready") for name, registry in
                 (("first", first), ("second", second))}
        assert ready == {"first": {("first",): 1}, "second": {("second",): 1}}
    finally:
        close_mounts(host)


@WIRE
def test_a_hosts_connection_is_timed_only_when_the_host_gave_it_the_listener(db_uri):
    """The host's MongoEngine connection was made before the mount: its commands are timed only
    if the host passed the registry's listeners when connecting; requests are counted either way."""
    counted = {}
    for given in (False, True):
        registry = CollectorRegistry()
        listeners = list(metrics.for_registry(registry).command_listeners) if given else []
        mongoengine.connect(alias="host-metrics", host=db_uri, tz_aware=True, uuidRepresentation="standard",
                            event_listeners=listeners)
        try:
            host = Flask("host")
            host.config.update(JWT_SECRET_KEY=SECRET, PROGRESS_DB_ALIAS="host-metrics")
            mount = Progress().init_app(host, metrics=registry)
            assert mount.database.uses_host_connection
            lms = Lms(mount.database.db())
            user = lms.user()
            course, lectures = lms.course(1)
            assert Api(host.test_client(), user).patch(course, lectures[0], {"isCompleted": True}).status_code == 200
            assert samples(registry, "progress_http_requests_total") == {(LECTURE, "PATCH", "200"): 1}
            counted[given] = samples(registry, "progress_db_command_duration_seconds_count")
        finally:
            mongoengine.disconnect("host-metrics")
    assert counted[False] == {}
    assert counted[True][("insert", "courseprogresses")] == 1 and counted[True][("insert", "users")] == 1


def test_many_apps_and_mounts_on_shared_registries_never_clash():
    """Apps made again and again (a test suite), several mounts on one registry and on the
    library's default one: no "Duplicated timeseries", counts shared, one figure per mount name."""
    shared = CollectorRegistry()
    apps = []
    with mounted_database() as database:
        for _ in range(3):
            host = Flask("host")
            host.config.update(JWT_SECRET_KEY=SECRET, **database)
            Progress(host, url_prefix="/one", name="one", metrics=shared)
            Progress(host, url_prefix="/two", name="two", metrics=shared)
            Progress(host, url_prefix="/default", name="default", metrics=True)
            apps.append(host)
        lms = Lms(mount_of(apps[0], "one").database.db())
        user = lms.user()
        course, _lectures = lms.course(1)
        headers = {"Authorization": f"Bearer {Api(None, user).token}"}
        for host in apps:
            for prefix in ("/one", "/two", "/default"):
                assert host.test_client().get(f"{prefix}/{course}", headers=headers).status_code == 404
        assert samples(shared, "progress_http_requests_total") == {
            ("/one/<course_id>", "GET", "404"): 3, ("/two/<course_id>", "GET", "404"): 3}
        assert samples(shared, "progress_unique_index_ready") == {("one",): 1, ("two",): 1}
        assert samples(REGISTRY, "progress_http_requests_total")[("/default/<course_id>", "GET", "404")] >= 3
        with pytest.raises(MountError, match="CollectorRegistry"):
            Progress(Flask("host"), metrics="yes")


@WIRE
def test_write_retries_and_conflicts_are_counted(app, lms, monkeypatch):
    """Each lost race is a retry; a spent budget is one conflict (and a 409 request)."""
    user = lms.user()
    course, lectures = lms.course(2)
    api = Api(app.test_client(), user)
    assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    real_find = store.find

    def find_then_lose_the_race(records, user_id, course_id):
        """Another writer's change lands between our read and our conditional write."""
        raw = real_find(records, user_id, course_id)
        lms.db.courseprogresses.update_one({"user": user_id, "course": course_id}, {"$inc": {"__v": 1}})
        return raw

    monkeypatch.setattr(service, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(store, "find", find_then_lose_the_race)
    assert api.patch(course, lectures[1], {"isCompleted": True}).status_code == 409
    registry = registry_of(app)
    assert samples(registry, "progress_write_retries_total") == {(): 3}
    assert samples(registry, "progress_write_conflicts_total") == {(): 1}
    assert samples(registry, "progress_http_requests_total")[(LECTURE, "PATCH", "409")] == 1


def figures(app):
    """The database figures as a scrape of /metrics shows them: {name: value} for mount progress."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.labels == {"mount": "progress"}}


def student_in_course(mount, app):
    """(api of a new student, course, its two lectures) in the mount's database."""
    lms = Lms(mount.database.db())
    course, lectures = lms.course(2)
    return Api(app.test_client(), lms.user()), course, lectures


@pytest.mark.wire
def test_the_outbox_figures_are_asked_when_scraped_and_sends_counted_by_outcome(wire_server):
    """With the LRS unreachable: statements wait, the oldest ages, each failed send is counted."""
    with refused_endpoint() as endpoint:
        app = xapi_app(wire_server.uri(f"metrics_{ObjectId()}"), endpoint)
        mount = mount_of(app)
        try:
            api, course, lectures = student_in_course(mount, app)
            for lecture in lectures:
                assert api.patch(course, lecture, {"isCompleted": True}).status_code == 200
            outbox = mount.outbox.collection()
            waiting = outbox.count_documents({"state": "pending"})
            assert waiting == 5  # two lectures, two percentages, the course
            outbox.update_one({"kind": "progressed"}, {"$set": {"state": "parked"}})
            outbox.update_many({}, {"$set": {"createdAt": utc_ms(seconds=-90)}})
            seen = figures(app)
            assert seen["progress_xapi_statements_waiting"] == waiting - 1
            assert seen["progress_xapi_statements_parked"] == 1
            assert 90 <= seen["progress_xapi_oldest_waiting_age_seconds"] < 120
            assert seen["progress_unique_index_ready"] == 1
            sent = lambda: samples(registry_of(app), "progress_xapi_statements_sent_total")  # noqa: E731
            assert wait_for(lambda: sent().get(("failed",), 0) >= waiting - 1, 10), sent()
            assert set(sent()) == {("failed",)}
        finally:
            mount.relay.stop()
            mount.database.close()


@pytest.mark.wire
def test_sends_are_counted_as_delivered_and_parked(wire_server, ralph_lrs):
    """An LRS that refuses for good (400): each statement parked and counted so; then one that
    takes them: each delivered statement counted, as the LRS received them."""
    proxy = LrsProxy(ralph_lrs.endpoint)
    app = xapi_app(wire_server.uri(f"sent_{ObjectId()}"), proxy.endpoint, ralph_lrs.username, ralph_lrs.password)
    mount = mount_of(app)
    try:
        api, course, lectures = student_in_course(mount, app)
        outbox = mount.outbox.collection()
        sent = lambda: samples(registry_of(app), "progress_xapi_statements_sent_total")  # noqa: E731
        proxy.reject(400)
        assert api.patch(course, lectures[0], {"isCompleted": True}).status_code == 200
        assert wait_for(lambda: outbox.count_documents({"state": "parked"}) == 2, 30)
        proxy.forward()
        assert api.patch(course, lectures[1], {"isCompleted": True}).status_code == 200
        assert wait_for(lambda: outbox.count_documents({"state": "pending"}) == 0, 30)
        received = sum(len(batch) for batch in proxy.received)
        assert received == 3  # the second write's lecture, percentage and course
        assert sent() == {("parked",): 2, ("delivered",): received}
    finally:
        mount.relay.stop()
        mount.database.close()
        proxy.close()


@WIRE
def test_the_index_figure_follows_the_unique_index(app, lms, monkeypatch):
    """0 while a non-unique (user, course) index stops writes, 1 once it is replaced."""
    monkeypatch.setattr(IndexGuard, "RECHECK_SECONDS", 0)
    lms.db.courseprogresses.create_index([("user", 1), ("course", 1)], name="user_1_course_1")
    assert figures(app)["progress_unique_index_ready"] == 0
    lms.db.courseprogresses.drop_index("user_1_course_1")
    assert figures(app)["progress_unique_index_ready"] == 1


@WIRE
def test_requests_in_progress_is_a_live_count(app, lms, monkeypatch):
    """A request being answered is in progress; once answered, it no longer is."""
    user = lms.user()
    course, lectures = lms.course(1)
    inside, release = threading.Event(), threading.Event()
    real_write = service.write

    def held_write(*args, **kwargs):
        inside.set()
        release.wait(10)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(service, "write", held_write)
    api = Api(app.test_client(), user)
    writer = threading.Thread(target=api.patch, args=(course, lectures[0], {"isCompleted": True}))
    writer.start()
    try:
        assert inside.wait(10)
        assert samples(registry_of(app), "progress_http_requests_in_progress") == {(): 1}
    finally:
        release.set()
        writer.join(10)
    assert samples(registry_of(app), "progress_http_requests_in_progress") == {(): 0}


def test_the_documented_alerting_rules_are_valid(tmp_path):
    """docs/operations.md's rule file passes `promtool check rules` and names only our metrics."""
    text = OPERATIONS.read_text()
    rules = re.search(r"\*\*Alerting rules\*\*.*?```yaml\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus (scripts/system_deps.sh)"
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
    documented = set(re.findall(r"^\| `(progress_[a-z_]+)`", text, re.M))
    assert set(re.findall(r"progress_[a-z_]+", rules)) <= documented


def test_the_documented_metrics_are_the_ones_served(app, client, lms):
    """docs/operations.md's metrics table names what /metrics serves (the outbox's figures only
    with xAPI on, the text format's `_created` companions aside)."""
    user = lms.user()
    course, lectures = lms.course(1)
    assert Api(client, user).patch(course, lectures[0], {"isCompleted": True}).status_code == 200
    documented = set(re.findall(r"^\| `(progress_[a-z_]+)`", OPERATIONS.read_text(), re.M))
    served = {family.name + ("_total" if family.type == "counter" else "")
              for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
              if not family.name.endswith("_created")}
    outbox = {"progress_xapi_statements_waiting", "progress_xapi_statements_parked",
              "progress_xapi_oldest_waiting_age_seconds"}
    assert documented == served | outbox


@WIRE
def test_the_documented_host_serves_its_own_metrics(db_uri, monkeypatch):
    """docs/mounting.md's host that counts for Prometheus, as written: its own route serves
    the mount's counts."""
    block = next(block for block in re.findall(r"```python\n(.*?)```", (DOCS / "mounting.md").read_text(), re.S)
                 if block.startswith("# lms.py (counting for Prometheus)"))
    monkeypatch.setenv("JWT_SECRET_KEY", SECRET)
    monkeypatch.setenv("MONGODB_URI", db_uri)
    host = {"__name__": "lms"}
    exec(compile(block, "docs/mounting.md [counting]", "exec"), host)  # noqa: S102 - the doc's own example
    app = host["app"]
    try:
        lms = Lms(mount_of(app).database.db())
        user = lms.user()
        course, _lectures = lms.course(1)
        assert Api(app.test_client(), user).get(course).status_code == 404
        text = app.test_client().get("/internal/metrics").get_data(as_text=True)
        counted = [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
                   for sample in family.samples if sample.name == "progress_http_requests_total"]
        assert counted == [({"route": COURSE, "method": "GET", "status": "404"}, 1)]
    finally:
        close_mounts(app)
