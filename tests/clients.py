"""Clients of a served app (gunicorn tests): a database, a scenario in it, students, timing."""
import threading
import time

import pymongo
import pytest
import requests

from .support import Lms
from .support import EmbeddedServer, make_token

INSTRUCTOR_ONLY = ("progress.course_summary", "progress.course_students", "progress.course_students_csv")
# Valid bodies of the write endpoints, by endpoint name (filled in with real ids).
BODIES = {
    "progress.mark_lecture": lambda lectures: {"isCompleted": True},
    "progress.mark_lecture_by_post": lambda lectures: {"isCompleted": True},
    "progress.mark_lectures": lambda lectures: {"lectures": [{"lecture": str(lectures[1]), "isCompleted": True}]},
}


class Scenario:
    """A course, a student, its instructor and their tokens, written straight to the database."""

    def __init__(self, db, lectures=3):
        self.lms = Lms(db)
        self.instructor = self.lms.user(role="instructor", name="Ida Instructor")
        self.course, self.lectures = self.lms.course(lectures, instructor=self.instructor)
        self.student = self.lms.user()
        self.student_token = make_token(self.student)
        self.instructor_token = make_token(self.instructor)

    def requests_for(self, endpoints):
        """(label, method, path, token, body) for every endpoint, ids filled in."""
        calls = []
        for endpoint, method, rule in endpoints:
            path = (rule.replace("<course_id>", str(self.course))
                    .replace("<lecture_id>", str(self.lectures[0])))
            token = self.instructor_token if endpoint in INSTRUCTOR_ONLY else self.student_token
            body = BODIES[endpoint](self.lectures) if endpoint in BODIES else None
            calls.append((f"{method} {rule}", method, path, token, body))
        return calls


def timed(server, method, path, token=None, body=None):
    """(response, seconds) of one call."""
    started = time.monotonic()
    response = server.call(method, path, token=token, body=body, timeout=30)
    return response, time.monotonic() - started


def in_parallel(functions, width):
    """Run the functions on `width` threads; results in order."""
    results = [None] * len(functions)
    lock = threading.Lock()
    pending = list(enumerate(functions))

    def worker():
        """Take the next function until none is left."""
        while True:
            with lock:
                if not pending:
                    return
                index, function = pending.pop(0)
            results[index] = function()

    threads = [threading.Thread(target=worker) for _ in range(width)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


class Student(threading.Thread):
    """A client marking lectures complete one after the other, retrying what did not get a 200."""

    def __init__(self, server, course, lectures, user, cycle=False):
        super().__init__(daemon=True)
        self.server, self.course, self.lectures, self.user = server, course, lectures, user
        self.token = make_token(user)
        self.cycle = cycle
        self.acknowledged = []
        self.statuses = []
        self.errors = 0
        self.stopping = threading.Event()

    def run(self):
        """PATCH lecture i until it answers 200, then lecture i+1 (round again if cycling)."""
        index = 0
        while not self.stopping.is_set() and (self.cycle or index < len(self.lectures)):
            lecture = self.lectures[index % len(self.lectures)]
            try:
                response = self.server.call("PATCH", f"{self.course}/lectures/{lecture}", token=self.token,
                                            body={"isCompleted": True}, timeout=30)
            except requests.RequestException:
                self.errors += 1
                continue
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                self.acknowledged.append(lecture)
                index += 1
            else:
                time.sleep(0.2)

    def stop(self):
        """Stop after the request in flight."""
        self.stopping.set()
        self.join(timeout=60)


def wait_for(predicate, timeout, interval=0.1):
    """Poll until predicate() is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


@pytest.fixture
def database(tmp_path):
    """(daemon, database): a SecantusDB daemon of the test's own, which it may stop and start again.

    Point the service at `daemon.uri(database.name)`.
    """
    server = EmbeddedServer(tmp_path / "db").start()
    client = pymongo.MongoClient(server.uri(), serverSelectionTimeoutMS=5000)
    yield server, client["served"]
    client.close()
    server.stop()
