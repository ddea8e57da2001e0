"""In process: our heartbeat against the reference's full PATCH-200, request by request.

    .venv/bin/python -m bench.paired [--requests 600] [--variants log,logging,hooks] [--parts] [--idle 0.006]
    .venv/bin/python -m bench.paired --scenario 10 [--variants unjoined,log,hooks]
    .venv/bin/python -m bench.paired --profile 1000

Starts a SecantusDB of its own (bench.run's, stopped on exit) and seeds make bench's
200-lecture course with bench.dataset (1,000 enrolled students, each with a record), then
calls both WSGI apps directly (no gunicorn, no test client) with the requests of make
bench's heartbeat-200 and patch-200 scenarios, each request measured by its thread's CPU.
Every round serves one request of each kind in a shuffled order, so the database's state and
the machine's drift weigh on all kinds alike; the ratios of the two halves of the run show
how steady it was.

Kinds: `ref_patch` (the reference's PATCH `{"isCompleted"}`, full answer), `ours_hb` (our
position-only PATCH with `Prefer: return=minimal`), and for each variant our heartbeat with
one part switched off, to see what that part costs here:
- `log`: no request log line; `hooks`: none of the app's before/after-request hooks;
- `logging`: the same log line and header, written with one json.dumps and one write to
  stdout instead of through the logging module (what its record and handlers cost);
- `unjoined`: the course and the caller's user asked in two commands (course(), then user()
  for the answer) instead of MongoCatalog.course_and_caller's one.
These switches exist only in this script. `--parts` adds `ours_hb_parts`, which times the
main parts of our heartbeat (printed per request). `--profile N` measures nothing: it counts
the function calls of N heartbeats of ours, by package.

`--scenario 10` compares instead make bench's get-10 and patch-10: a 10-lecture course with
the same 1,000 enrolled students and records, and the kinds `ref_get`, `ours_get`,
`ref_patch`, `ours_patch` (each of ours over the reference's of the same method), with the
variants applied to both of ours.

Why request by request: a worker that waits for the database resumes on colder caches and
pays more CPU for the same work (here, fixed Python work after a 6 ms sleep took about twice
the CPU it took back to back), so two apps measured minutes apart differ by more than their
code does. Called back to back, a request starts warm; under gunicorn a worker also waits
for its next request, and `--idle 0.006` adds that wait before each request (our heartbeat
over the reference's PATCH: 0.57 back to back, 0.60 with it; `make bench` gave 0.58).
"""
import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

import pymongo

from bench import dataset, procs

SECRET = "paired-" + "x" * 40
OTHER_LECTURES = 1150  # so that `lectures` holds about as many as make bench's (1,346)


def seed(db, rng, lectures=dataset.BIG_LECTURES):
    """make bench's course of `lectures` lectures (200: the heartbeat's), its 1,000 enrolled
    students and their records (bench.dataset); returns (the Dataset, the course)."""
    db.courseprogresses.create_index([("user", 1), ("course", 1)], unique=True)
    data = dataset.Dataset(secret=SECRET)
    instructor = dataset.new_user(db, "Ada Instructor", "instructor")
    data.users = dataset.insert_students(db, dataset.BASE_USERS)
    course = dataset.insert_course(db, f"A course of {lectures}", lectures, instructor, enrolled=data.users)
    dataset.insert_course(db, "Other lectures", OTHER_LECTURES, instructor)
    dataset.insert_records(db, data, [(user, course) for user in range(dataset.BASE_USERS)], rng,
                           f"{lectures}-lecture")
    return data, course


def requests(lines):
    """wrk list lines (METHOD, path, token, body, headers; bench.dataset) as
    (method, path, body bytes, {environ key: value})."""
    parsed = []
    for line in lines:
        method, path, token, body, *extra = line.split("\t")
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        for header in filter(None, "|".join(extra).split("|")):
            name, _, value = header.partition(":")
            headers["HTTP_" + name.strip().upper().replace("-", "_")] = value.strip()
        parsed.append((method, path, body.encode(), headers))
    return parsed


class Silent:
    """stdout for the request log lines: written, then dropped."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def switches(ours, spent):
    """set(variant): our app as it is (''), with one part switched off ('log', 'logging', 'hooks',
    'unjoined'), or with its main parts timed into `spent` (thread CPU ns; 'parts')."""
    from progress_service.progress import catalog, routes, signin, store
    from progress_service.standalone import logs

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.thread_time_ns()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.thread_time_ns() - started
        wrapper.__name__ = function.__name__
        return wrapper

    def direct_line(response):
        from flask import g, request
        user = g.get("progress_user_id")
        fields = {"requestId": g.request_id, "method": request.method, "path": request.path,
                  "status": response.status_code, "userId": str(user) if user is not None else None,
                  "durationMs": round((time.perf_counter() - g.request_started) * 1000, 1)}
        response.headers[logs.REQUEST_ID_HEADER] = g.request_id
        sys.stdout.write(json.dumps({"time": logs._utc_time(time.time()), "level": "info",
                                     "logger": logs.request_log.name, "pid": os.getpid(),
                                     "message": "request", **fields}, ensure_ascii=False) + "\n")
        return response

    targets = [(signin.OwnJwt, "caller"), (catalog.MongoCatalog, "lecture_place"), (store, "record_position"),
               (routes, "load"), (routes, "json_body"), (routes, "answer")]
    plain = {(owner, name): getattr(owner, name) for owner, name in targets}
    timed_parts = {(owner, name): timed(name, function) for (owner, name), function in plain.items()}
    hook_lists = [(funcs, {key: list(value) for key, value in funcs.items()})
                  for funcs in (ours.before_request_funcs, ours.after_request_funcs)]
    timed_hooks = {id(f): timed(f.__name__, f) for _, saved in hook_lists for value in saved.values() for f in value}

    def pick(hook, variant):
        if variant == "parts":
            return timed_hooks[id(hook)]
        return direct_line if variant == "logging" and hook is logs.finish_request else hook

    def set_variant(variant):
        for target, function in plain.items():
            setattr(*target, timed_parts[target] if variant == "parts" else function)
        # What a subclass of MongoCatalog gets: the course, then the user for the answer.
        catalog.MongoCatalog.joins_caller = variant != "unjoined"
        logs.request_log.disabled = variant == "log"
        for funcs, saved in hook_lists:
            funcs.clear()
            if variant != "hooks":
                funcs.update({key: [pick(f, variant) for f in value] for key, value in saved.items()})
    return set_variant


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("heartbeat", "10"), default="heartbeat",
                        help="our heartbeat against the reference's PATCH at 200 lectures, or "
                             "GET and PATCH of both at 10 lectures")
    parser.add_argument("--requests", type=int, default=600, help="requests of each kind")
    parser.add_argument("--variants", default="log,hooks", help="parts to switch off, one kind each")
    parser.add_argument("--parts", action="store_true", help="time the parts of our heartbeat")
    parser.add_argument("--idle", type=float, default=0.0, metavar="SECONDS",
                        help="sleep before each request, as a worker waiting for the next one (0.006)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="instead: count function calls per heartbeat of ours over N heartbeats")
    args = parser.parse_args()
    if args.parts and args.scenario != "heartbeat":
        parser.error("--parts times the heartbeat's parts only")
    # Before bench.run, which imports the reference app: it reads its secret on import.
    os.environ["JWT_SECRET_KEY"] = SECRET
    from bench.run import Database
    with procs.ProcessGroup() as group, tempfile.TemporaryDirectory(prefix="paired-") as home:
        uri = Database(group, Path(home), lambda line: print(line, file=sys.stderr)).uri
        os.environ["MONGODB_URI"] = uri
        rng = random.Random(1)
        lectures = dataset.BIG_LECTURES if args.scenario == "heartbeat" else dataset.SMALL_LECTURES
        data, course = seed(pymongo.MongoClient(uri, tz_aware=True).get_default_database(), rng, lectures)
        # The requests of make bench's heartbeat-200 and patch-200 scenarios (get-10, patch-10).
        gets, patches = (requests(lines) for lines in dataset.base_lists(data, lambda user: course, rng))
        from bench.reference_app import app as reference  # reads the environment on import
        from progress_service import create_app
        ours = create_app()
        if args.scenario == "heartbeat":
            heartbeats = requests(dataset.heartbeat_list(data, course, rng))
            if args.profile:
                return profile(ours, heartbeats, rng, args.profile)
            kinds = {"ref_patch": (reference, patches, None), "ours_hb": (ours, heartbeats, "")}
        else:
            kinds = {"ref_get": (reference, gets, None), "ours_get": (ours, gets, ""),
                     "ref_patch": (reference, patches, None), "ours_patch": (ours, patches, "")}
        report(measure(ours, kinds, rng, args))


def wsgi_environ(request):
    """The WSGI environ of one parsed request (see requests())."""
    method, path, body, headers = request
    return {"REQUEST_METHOD": method, "PATH_INFO": path,
            "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
            **headers}


def profile(ours, heartbeats, rng, count):
    """Function calls per heartbeat of ours, by package (cProfile over `count` heartbeats).

    Counts, unlike times, do not move with the machine's load: they show where the work is.
    """
    statuses = Counter()
    profiler = cProfile.Profile()
    with redirect_stdout(Silent()):
        for _ in range(100):  # warm up, unprofiled
            serve(ours, wsgi_environ(rng.choice(heartbeats)), statuses)
        profiler.enable()
        for _ in range(count):
            serve(ours, wsgi_environ(rng.choice(heartbeats)), statuses)
        profiler.disable()
    if set(statuses) != {"204"}:
        raise SystemExit(f"answers other than 204: {dict(statuses)}; the counts would mean nothing")
    calls = Counter()
    for (filename, _, _), (_, ncalls, *_rest) in pstats.Stats(profiler).stats.items():
        calls[package_of(filename)] += ncalls
    print(f"function calls per heartbeat: {sum(calls.values()) / count:.0f}")
    for package, total in calls.most_common():
        print(f"  {package:28} {total / count:7.1f}")


def serve(app, environ, statuses):
    """Call the WSGI app and read its whole answer, counting its status in `statuses`."""
    def start_response(status, headers, exc_info=None):
        statuses[status[:3]] += 1

    for _ in app(environ, start_response):
        pass


def package_of(filename):
    """'pymongo', 'werkzeug', ... for a profiled function's file; 'progress_service' for ours;
    'stdlib' for the standard library; 'built-in' for C functions."""
    if filename == "~":  # how cProfile names a C function's file
        return "built-in"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/progress_service/" in filename:
        return "progress_service"
    return "stdlib"


def measure(ours, kinds, rng, args):
    """{kind: [thread CPU ns per request]} and the parts' totals, for `kinds` ({name: (app,
    requests, variant of ours or None)}) and each of ours once more per variant."""
    statuses = Counter()

    def call(app, requests):
        environ = wsgi_environ(rng.choice(requests))
        if args.idle:
            time.sleep(args.idle)  # as a gunicorn worker waits for its next request
        started = time.thread_time_ns()
        serve(app, environ, statuses)
        return time.thread_time_ns() - started

    spent = Counter()
    set_variant = switches(ours, spent)
    kinds = dict(kinds)
    for name, (app, sent, variant) in list(kinds.items()):
        if variant == "":
            kinds.update({f"{name}_no_{v}": (app, sent, v) for v in filter(None, args.variants.split(","))})
            if args.parts:
                kinds[f"{name}_parts"] = (app, sent, "parts")
    times = {kind: [] for kind in kinds}
    order = list(kinds)
    with redirect_stdout(Silent()):
        for round_number in range(args.requests + 30):  # the first 30 rounds warm up
            rng.shuffle(order)
            for kind in order:
                app, sent, variant = kinds[kind]
                if variant is not None:  # the reference's kind leaves ours as it is
                    set_variant(variant)
                elapsed = call(app, sent)
                if round_number >= 30:
                    times[kind].append(elapsed)
    set_variant("")
    return {"times": times, "statuses": dict(statuses), "parts": spent,
            "parts_requests": args.requests + 30 if args.parts else 0}


def report(found):
    wrong = {status: n for status, n in found["statuses"].items() if status not in ("200", "204")}
    if wrong:
        raise SystemExit(f"answers other than 200 and 204: {wrong}; the figures would mean nothing")
    times = found["times"]
    print(f"statuses {found['statuses']}")
    for kind, values in times.items():
        base = "ref_get" if "_get" in kind else "ref_patch"  # each of ours over the reference's of its method
        reference = times[base]
        half = len(reference) // 2
        ratio = statistics.mean(values) / statistics.mean(reference)
        halves = [statistics.mean(values[s]) / statistics.mean(reference[s]) for s in (slice(0, half), slice(half, None))]
        print(f"{kind:24} {statistics.mean(values) / 1000:7.1f} us/request  over {base} {ratio:.3f}"
              f"  (halves {halves[0]:.3f}, {halves[1]:.3f})")
    if found["parts_requests"]:
        print("parts of ours_hb_parts, us per request:")
        for name, total in found["parts"].most_common():
            print(f"  {name:20} {total / found['parts_requests'] / 1000:7.1f}")


if __name__ == "__main__":
    logging.getLogger("pymongo").setLevel(logging.WARNING)
    main()
