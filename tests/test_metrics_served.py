"""Metrics as an operator gets them (contract section 13): gunicorn with two workers on the wire
server, scraped every second by a real Prometheus, checked through its query API against the
traffic the test sent. A worker killed with SIGKILL takes nothing from the sums.
"""
import os
import signal
import tempfile
from pathlib import Path

import pymongo
import pytest
import requests
from bson import ObjectId
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from .clients import Scenario, in_parallel, wait_for
from .prometheus import Prometheus, assert_no_ids_in
from .serving import Gunicorn, SlowRequest
from .support import PREFIX, make_token

pytestmark = [pytest.mark.wire, pytest.mark.slow]
COURSE = f"{PREFIX}/<course_id>"
LECTURE = f"{PREFIX}/<course_id>/lectures/<lecture_id>"
GOOD_GETS = f'sum(progress_http_requests_total{{route="{COURSE}",method="GET",status="200"}})'


def leave_stale_counts(directory):
    """A counter file as an earlier run of the server would have left it: 1,000 good GETs."""
    stale = MmapedDict(str(directory / "counter_1.db"))
    stale.write_value(mmap_key("progress_http_requests", "progress_http_requests_total", ["route", "method", "status"],
                               [COURSE, "GET", "200"], "an earlier run"), 1000.0, 0.0)
    stale.close()


@pytest.fixture
def served(wire_server, tmp_path):
    """(server, prometheus, scenario, metrics directory): 2 workers, scraped every second."""
    name = f"served_{ObjectId()}"
    client = pymongo.MongoClient(wire_server.uri())
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    leave_stale_counts(metrics_dir)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with Gunicorn(tmp_path, wire_server.uri(name), workers=2, env=env) as server, \
            Prometheus(tmp_path / "prometheus", f"127.0.0.1:{server.port}") as prometheus:
        yield server, prometheus, Scenario(client[name]), metrics_dir
    client.close()


def by_labels(rows):
    """{(route, method, status): value} of a `sum by (route, method, status)` answer."""
    return {(labels["route"], labels["method"], labels["status"]): value
            for labels, value in ((dict(key), value) for key, value in rows.items())}


def test_counts_are_summed_over_workers_and_survive_a_killed_one(served):
    """Known traffic over both workers is counted exactly; a worker killed mid-request drops out
    of the live gauge but not out of the counters, which never reset; no label is an id."""
    server, prometheus, scenario, metrics_dir = served
    token, course, lectures = scenario.student_token, scenario.course, scenario.lectures
    foreign = ObjectId()

    def get(course_id):
        return lambda: server.call("GET", str(course_id), token=token).status_code

    assert server.call("PATCH", f"{course}/lectures/{lectures[0]}", token=token,
                       body={"isCompleted": True}).status_code == 200
    assert in_parallel([get(course)] * 30, width=4) == [200] * 30
    assert in_parallel([get(foreign)] * 6, width=3) == [404] * 6
    served_by = {line["pid"] for line in server.log_lines() if line.get("path", "").startswith(PREFIX)}
    assert len(served_by) == 2, "both workers served the traffic the sums are checked against"

    assert prometheus.wait_for_value(GOOD_GETS, 30) == 30, "summed over the workers, the earlier run's files gone"
    assert by_labels(prometheus.query("sum by (route, method, status) (progress_http_requests_total)")) == {
        (COURSE, "GET", "200"): 30, (COURSE, "GET", "404"): 6, (LECTURE, "PATCH", "200"): 1}
    assert prometheus.value('sum(progress_db_command_duration_seconds_count'
                            '{command="insert",collection="courseprogresses"})') == 1
    assert prometheus.value("sum(progress_lecture_completions_total)") == 1

    slow = SlowRequest(server, f"{course}/lectures/{lectures[1]}", token, {"isCompleted": True})
    victim = slow.begin()
    assert prometheus.wait_for_value("sum(progress_http_requests_in_progress)", 1) == 1
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(OSError):
        slow.finish()
    assert wait_for(lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids(), 30)
    assert list(metrics_dir.glob(f"counter_{victim}.db")), "the dead worker's counts stay"
    assert not list(metrics_dir.glob(f"gauge_livesum_{victim}.db")), "gunicorn's child_exit marked it dead"
    assert prometheus.wait_for_value("sum(progress_http_requests_in_progress)", 0) == 0

    assert in_parallel([get(course)] * 10, width=4) == [200] * 10
    assert prometheus.wait_for_value(GOOD_GETS, 40) == 40, "the killed worker's 30-odd GETs still counted"
    for counter in ("progress_http_requests_total", "progress_http_request_duration_seconds_count",
                    "progress_db_command_duration_seconds_count"):
        assert prometheus.value(f"sum(resets({counter}[5m]))") == 0, counter

    ids = (scenario.student, scenario.instructor, course, foreign, *lectures)
    scraped = text_string_to_metric_families(requests.get(server.url + "/metrics", timeout=10).text)
    assert_no_ids_in([value for family in scraped for sample in family.samples for value in sample.labels.values()],
                     *ids)
    stored = prometheus.query('{__name__=~"progress_.+"}')
    assert_no_ids_in([value for labels in stored for name, value in labels if name not in ("job", "instance")], *ids)


def test_metrics_off_is_a_json_404_under_gunicorn(wire_server, tmp_path):
    """PROGRESS_METRICS=off: /metrics is an unknown path, in the JSON envelope."""
    with Gunicorn(tmp_path, wire_server.uri(f"off_{ObjectId()}"), workers=1,
                  env={"PROGRESS_METRICS": "off"}) as server:
        answer = server.call("GET", "/metrics")
        assert answer.status_code == 404
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == {"status": "fail", "message": "Not found"}


def test_without_a_directory_gunicorn_makes_one_even_with_preload(wire_server, tmp_path):
    """Plain `gunicorn -c scripts/gunicorn.conf.py --preload`: a temporary directory of its own,
    chosen before the app is imported in the master, the sums right, removed at exit."""
    token = make_token(ObjectId())
    with Gunicorn(tmp_path, wire_server.uri(f"plain_{ObjectId()}"), workers=2, preload=True) as server:
        assert in_parallel([lambda: server.call("GET", str(ObjectId()), token=token).status_code] * 12, 4) == [404] * 12
        served_by = {line["pid"] for line in server.log_lines() if line.get("path", "").startswith(PREFIX)}
        assert len(served_by) == 2
        for _ in range(4):  # whichever worker serves the scrape, it counts both
            text = requests.get(server.url + "/metrics", timeout=10).text
            counted = [sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                       if sample.name == "progress_http_requests_total"]
            assert counted == [12]
        [directory] = {path.parent for pid in served_by
                       for path in Path(tempfile.gettempdir()).glob(f"progress-metrics-*/counter_{pid}.db")}
    assert not directory.exists(), "the temporary directory went with the server"
