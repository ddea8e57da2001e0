"""How the service's latency grows with the course size (issue 3, point 4), on the wire server.

    .venv/bin/python -m bench.course_size [--sizes 200,500,1000] [--students 1] [--repeat 3]

For each size: one course of that many lectures, `--students` records on it (each with every
lecture marked through the batch endpoint), then the median time of each endpoint, in process
(Flask's test client) against a SecantusDB daemon of its own, so only the service and the
database are measured. The record's BSON size is shown next to MongoDB's 16 MB ceiling.
"""
import argparse
import statistics
import tempfile
import time

import bson
import pymongo

from progress_service import create_app
from progress_service.progress import mount_of
from tests.support import PREFIX, SECRET, EmbeddedServer, Lms, make_token

BSON_LIMIT = 16 * 1024 * 1024
BATCH = 200


def timed(function, repeat):
    """Median milliseconds of `repeat` calls; the last response is checked by the caller."""
    samples, response = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        response = function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), response


def fill(client, token, course, lectures):
    """Mark every lecture of the course through the batch endpoint, 200 at a time."""
    for start in range(0, len(lectures), BATCH):
        items = [{"lecture": str(lecture), "isCompleted": True, "watchTime": 60}
                 for lecture in lectures[start:start + BATCH]]
        response = client.patch(f"{PREFIX}/{course}/lectures", json={"lectures": items},
                                headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.get_json()


def measure(client, lms, size, students, repeat):
    """One row of the table: the median ms of each endpoint for a course of `size` lectures."""
    instructor = lms.user(role="instructor")
    course, lectures = lms.course(size, instructor=instructor)
    users = [lms.user() for _ in range(students)]
    for user in users:
        fill(client, make_token(user), course, lectures)
    auth = {"Authorization": f"Bearer {make_token(users[0])}"}
    boss = {"Authorization": f"Bearer {make_token(instructor)}"}
    calls = {
        "GET": lambda: client.get(f"{PREFIX}/{course}", headers=auth),
        "PATCH one": lambda: client.patch(f"{PREFIX}/{course}/lectures/{lectures[-1]}",
                                          json={"isCompleted": True}, headers=auth),
        "complete": lambda: client.post(f"{PREFIX}/{course}/complete", headers=auth),
        "dashboard": lambda: client.get(PREFIX, headers=auth),
        "summary": lambda: client.get(f"{PREFIX}/{course}/summary", headers=boss),
        "students": lambda: client.get(f"{PREFIX}/{course}/students", headers=boss),
    }
    row = {"lectures": size}
    for name, call in calls.items():
        row[name], response = timed(call, repeat)
        if response.status_code != 200:
            # Shown, not fatal: a size where an endpoint fails is exactly what this measures.
            row[name] = f"{response.status_code} after {row[name]:.0f}"
    record = lms.record(users[0], course)
    row["record KB"] = len(bson.encode(record)) / 1024
    # Once, last: a reset of the fully watched record (every entry changes three fields).
    row["reset"], response = timed(lambda: client.post(f"{PREFIX}/{course}/reset", headers=auth), 1)
    if response.status_code != 200:
        row["reset"] = f"{response.status_code} after {row['reset']:.0f}"
    return row


def main():
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,500,1000")
    parser.add_argument("--students", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as storage:
        server = EmbeddedServer(storage).start()
        try:
            app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
                              "MONGODB_URI": server.uri("course_size")})
            lms = Lms(pymongo.MongoClient(server.uri())["course_size"])
            rows = []
            for size in args.sizes.split(","):
                rows.append(measure(app.test_client(), lms, int(size), args.students, args.repeat))
                print(rows[-1], flush=True)
            mount_of(app).database.close()
        finally:
            server.stop()
    columns = list(rows[0])
    print(" | ".join(f"{c:>10}" for c in columns) + "   (median ms; record KB of one full record)")
    for row in rows:
        print(" | ".join(f"{row[c]:>10.1f}" if isinstance(row[c], float) else f"{row[c]:>10}" for c in columns))
    largest = max(rows, key=lambda r: r["lectures"])
    per_lecture = largest["record KB"] * 1024 / largest["lectures"]
    print(f"about {per_lecture:.0f} bytes per lecture entry: the 16 MB document limit is "
          f"about {BSON_LIMIT / per_lecture:,.0f} lectures")


if __name__ == "__main__":
    main()
