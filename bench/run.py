"""Benchmark the progress service against a minimal reference implementation.

    .venv/bin/python -m bench.run                                  # make bench
    .venv/bin/python -m bench.run --ours bench.reference_app:app   # self-test of the harness

Starts a SecantusDB in a temporary directory, seeds it in the original LMS's shape (1,000
records on courses of 10, 200 and 1,000 lectures, later 100,000 on one course), serves both
apps with gunicorn (2 sync workers each) and drives them with wrk, alternating between them.
Per app and scenario: requests/s and p50/p99 latency (wrk), CPU per request of the gunicorn
workers and of the database (/proc), MongoDB commands per request, their time and reply bytes
(the hooks in bench/gunicorn_bench.py) and peak worker RSS. Scenarios, in this order: GET and
PATCH at 10 and 200 lectures, position-only heartbeats, the xAPI sender on and off, the
metrics on and off, 16 writers on one record (lost updates), GET and PATCH at 1,000
lectures, POST complete/reset at 1,000, GET on courses with 100,000 and 10 enrolled
students; the instructor's views and the dashboard (bench/instructor.py); 16 writers on
different records served by one threaded process against one sync worker (on a database of
its own); last GET/PATCH among 100,000 records and the CSV export of 100,000 students. Prints
a table and every target with its value, writes bench/results.json (docs/performance.md).
"""
import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # `python bench/run.py`: run as `-m bench.run` in the checkout's venv
    VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    python = VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable)
    os.execv(python, [str(python), "-m", "bench.run", *sys.argv[1:]])

from pymongo import MongoClient  # noqa: E402  (after the re-exec above)
from pymongo.errors import PyMongoError  # noqa: E402

from bench import contention, dataset, instructor, procs, report  # noqa: E402
from bench.load import ensure_wrk, http_call, http_json  # noqa: E402
from bench.measure import Scenario, Server, combine, compare, log_result, measure_once, per_request  # noqa: E402
from bench.stub_lrs import StubLrs  # noqa: E402

GUNICORN_CONFIG = ROOT / "bench" / "gunicorn_bench.py"
DB_NAME = "benchdb"
DB_NAME_1K = "benchdb1k"  # the 1k phase's data, copied before the growth (run_large)
REFERENCE_PATCH = "reference-patch"  # the reference serving patch-200 beside the heartbeats
OURS_PLAYED = "ours-played"  # ours serving heartbeats with played intervals beside the plain ones


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", default="wsgi:app", help="the service (gunicorn app spec)")
    parser.add_argument("--reference", default="bench.reference_app:app", help="the yardstick")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured round")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per app and scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (uncontended)")
    parser.add_argument("--writers", type=int, default=dataset.WRITER_LECTURES,
                        help=f"concurrent writers on one record (at most {dataset.WRITER_LECTURES})")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per app")
    # 2: what docs/performance.md's rule, T = 1 + wait / CPU per request, gives on the 2-core
    # machine (sync: 6 ms a PATCH, 2.5 of them CPU); measured there: T=2 1.32, 3 1.22, 4 1.16.
    parser.add_argument("--threads", type=int, default=2,
                        help="threads of the one gthread process in the threaded scenario (0 skips it)")
    parser.add_argument("--no-restart-db", dest="restart_db", action="store_false",
                        help="do not restart SecantusDB before each scenario (see run.Database)")
    parser.add_argument("--threaded-rounds", type=int, default=4,
                        help="measured rounds of the threaded scenario (four servers, ABBA...)")
    parser.add_argument("--slow-factor", type=float, default=2.0,
                        help="longer rounds for the scenario that serves few requests a second "
                             "(POST complete/reset on 1,000 lectures: ours sends a 1,000-path $set)")
    parser.add_argument("--large", type=int, default=100_000,
                        help="records of the large phase (0 skips it)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--only", default="",
                        help="comma-separated prefixes of the scenarios to run (e.g. "
                             "'heartbeat,get-enrolled'; 'writers', 'threaded', 'get-10@' for the "
                             "100k phase); default all. Keys of skipped scenarios are null")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data set")
    parser.add_argument("--no-lms-index", dest="lms_index", action="store_false",
                        help="do not pre-create the LMS's unique (user, course) index; the apps' "
                             "own index creation makes it")
    args = parser.parse_args(argv)
    if not 1 <= args.writers <= dataset.WRITER_LECTURES:
        parser.error(f"--writers must be 1..{dataset.WRITER_LECTURES}")
    return args


def main(argv=None):
    args = parse_args(argv)
    ensure_wrk()
    apps = {"ours": args.ours, "reference": args.reference}
    for spec in apps.values():
        check_app_exists(spec)
    started = time.monotonic()

    def log(message):
        print(f"[{time.monotonic() - started:4.0f}s] {message}", flush=True)

    try:
        with procs.ProcessGroup() as group, tempfile.TemporaryDirectory(prefix="progress-bench-") as tmp:
            results = benchmark(args, apps, group, Path(tmp), log)
    except KeyboardInterrupt:
        print("\ninterrupted: every process the benchmark started has been stopped", file=sys.stderr)
        return 130
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    report.print_report(results)
    report.write_json(args.output, results)
    log(f"wrote {args.output}")
    return 0


def check_app_exists(spec):
    """Fail early and clearly when an app module is missing (e.g. before wsgi.py is written)."""
    module = ROOT / spec.split(":")[0].replace(".", "/")
    if not (module.with_suffix(".py").exists() or (module / "__init__.py").exists()):
        raise SystemExit(f"{spec}: no such module in {ROOT}. To test the harness alone, "
                         "run with --ours bench.reference_app:app")


def benchmark(args, apps, group, tmp, log):
    """Seed, serve both apps, run every scenario on both; return the summary."""
    database = Database(group, tmp, log)
    uri = database.uri
    db = MongoClient(uri).get_default_database()
    rng = random.Random(args.seed)
    secret = secrets.token_hex(32)

    def selected(name):
        return not args.only or name.startswith(tuple(filter(None, args.only.split(","))))

    views = any(selected(name) for name in instructor.VIEWS)
    large = args.large and (selected(f"get-{report.large_label(args)}") or selected(instructor.EXPORT))
    # The 10,000-student summary course has a record per user (the 100k phase adds its own).
    user_count = max(dataset.BASE_USERS, max(dataset.SUMMARY_STUDENTS.values()) if views else 0)
    log(f"seeding {user_count:,} users; courses of 10, 200, {dataset.HUGE_LECTURES} and "
        f"{dataset.WRITER_LECTURES} lectures; {dataset.CROWD:,} and {dataset.FEW} enrolled")
    data = dataset.seed_catalog(db, secret, user_count, lms_indexes=args.lms_index)
    dataset.seed_base_records(db, data, rng)
    log("seeded")
    env = app_environment(uri, secret)
    ensure_indexes(apps["ours"], env, log)
    raw = {name: {} for name in apps}
    extra = {}

    def fresh_database():
        """SecantusDB restarted on its data, the apps' connections back: see Database."""
        if args.restart_db:
            database.restart()
            for server in servers.values():
                warm_up(server, data)

    def run(scenarios, restart=True):
        for scenario in scenarios:
            if selected(scenario.name):
                if restart:
                    fresh_database()
                for name, figures in compare(servers, scenario, lambda: database.pid, args, log).items():
                    raw[name][scenario.name] = figures

    with ExitStack() as stack:
        servers = {name: stack.enter_context(serve(group, name, spec, env, tmp, args.workers, data, log))
                   for name, spec in apps.items()}
        answers = {name: check_answers(server, data) for name, server in servers.items()}
        behaviours = {name: check_behaviours(server, db, data) for name, server in servers.items()}

        base = base_scenarios(args, data, rng, tmp)
        run(base)
        if selected("heartbeat-200"):
            fresh_database()
            patch_200 = next(scenario for scenario in base if scenario.name == "patch-200")
            found = compare({**servers, REFERENCE_PATCH: replace(servers["reference"], name=REFERENCE_PATCH),
                             OURS_PLAYED: replace(servers["ours"], name=OURS_PLAYED)},
                            heartbeat_scenario(args, data, rng, tmp, patch_200.list_file),
                            lambda: database.pid, args, log)
            for name in servers:
                raw[name]["heartbeat-200"] = found[name]
            raw["reference"][report.BESIDE_HEARTBEATS] = found[REFERENCE_PATCH]
            raw["ours"][report.PLAYED_HEARTBEATS] = found[OURS_PLAYED]
        if selected("xapi"):
            fresh_database()
            extra["xapi"] = run_xapi(group, servers["ours"], apps["ours"], env, db, lambda: database.pid,
                                     data, args, tmp, log)
        if selected("metrics"):
            fresh_database()
            extra["metrics"] = run_metrics(group, servers["ours"], apps["ours"], env, lambda: database.pid,
                                           data, args, tmp, log)
        if selected(f"writers-{args.writers}"):
            for name, figures in run_writers(servers, db, data, database, fresh_database, args, tmp, log).items():
                raw[name][f"writers-{args.writers}"] = figures
        run(heavy_scenarios(args, db, data, rng, tmp))
        if views:
            # Seeded here and removed afterwards: the views' 10,000 long records would slow every
            # restart of the database before them, and the 100k phase's copy of it.
            log("seeding the instructor's views: 200-lecture courses of 100 and 10,000 students, "
                "twin 10-lecture courses, dashboards of 10 and 1,000 courses")
            dataset.seed_instructor_views(db, data, rng)
            extra["views_checked"] = instructor.check_views(servers["ours"], db, data, log)
            extra["views"] = instructor.run_views(
                servers["ours"], database, db, data, rng, args, tmp, log, selected, fresh_database,
                lambda name, variables: serve(group, name, apps["ours"], {**env, **variables}, tmp,
                                              args.workers, data, log))
            dataset.remove_instructor_records(db, data)
        if args.threads and selected(f"threaded-{args.writers}"):
            extra["threaded"] = run_threaded(group, apps, env, db, data, args, tmp, log)
        if large:
            extra["latency"] = run_large(group, servers, apps, env, database, db, data, rng, args, tmp,
                                         log, raw, selected, extra)
        for name, server in servers.items():
            raw[name]["peak_rss_mb"] = round(server.peak_rss_mb, 1)
            raw[name]["log_problems"] = procs.log_problems(server.log)
    return report.summarize(args, apps, raw, report.compare_answers(answers),
                            report.compare_behaviours(behaviours), extra)


# ---- the database and the apps --------------------------------------------------------------

class Database:
    """A SecantusDB on a free port with its storage in `home`, which can be restarted on it.

    Why restart: after some seconds of concurrent writes SecantusDB serves every later
    update 2-4 times slower (a find + update of a 10-lecture record: 2.7 ms before 20 s of 16
    concurrent writers, 5.7 ms after, still 5.9 ms 5 s later, 2.4 ms after a restart; in a
    benchmark run 4 ms became 14 ms), with no background work of its own to see. A scenario
    would then measure what the ones before it left behind: so each starts on a database
    restarted on its data (same port; the apps' drivers reconnect, and a few GETs bring their
    pools back before the warm-up).
    """

    def __init__(self, group, home, log):
        self.group, self.home, self.log = group, home, log
        home.mkdir(exist_ok=True)
        self.port = procs.free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/{DB_NAME}?directConnection=true"
        self.proc = None
        self.restarts = 0
        self.start()
        log(f"SecantusDB up on port {self.port} (pid {self.proc.pid})")

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        log_path = self.home / "secantusdb.log"
        # cwd=home: secantusd-py would otherwise pick up a secantusd.toml from the current directory.
        self.proc = self.group.start([str(Path(sys.executable).parent / "secantusd-py"), "--host",
                                      "127.0.0.1", "--port", str(self.port), "--storage-path",
                                      str(self.home / "db"), "--log-level", "WARNING"],
                                     log_path, cwd=self.home)
        with MongoClient(self.uri, serverSelectionTimeoutMS=500) as probe:
            procs.wait_until(lambda: _alive(self.proc, log_path) and probe.admin.command("ping"),
                             timeout=120, errors=(PyMongoError, OSError), what="SecantusDB")

    def restart(self):
        started = time.monotonic()
        self.group.stop(self.proc)
        self.start()
        self.restarts += 1
        self.log(f"SecantusDB restarted in {time.monotonic() - started:.1f}s (pid {self.proc.pid})")

    def stop(self):
        self.group.stop(self.proc)


def warm_up(server, data, path=None, token=None, answers=10, attempts=100):
    """GETs until `answers` in a row are answered below 500 (a worker's first request after a
    database restart may find its pooled connections closed). Default: the check records."""
    in_a_row = 0
    for _ in range(attempts):
        if path:
            status, _ = http_json(server.url, "GET", path, token)
        else:
            status, _ = _get(server, data, *dataset.check_pairs(data)[in_a_row % dataset.CHECK_USERS])
        in_a_row = in_a_row + 1 if status < 500 else 0
        if in_a_row >= answers:
            return
        if status >= 500:
            time.sleep(0.2)
    raise SystemExit(f"{server.name} answers 5xx after a database restart:\n{procs.tail(server.log)}")


def ensure_indexes(spec, env, log):
    """Our indexes made ahead of serving, as a deploy on a large database does (docs/operations.md):
    building them over the seeded records takes the embedded database longer than a request's
    time budget. Without a time limit (timeoutMS=0); the reference has no indexes of its own."""
    if spec != "wsgi:app":
        return
    started = time.monotonic()
    uri = env["MONGODB_URI"] + "&timeoutMS=0"
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "progress", "ensure-indexes"],
                          cwd=ROOT, env={**env, "MONGODB_URI": uri}, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"flask progress ensure-indexes failed:\n{done.stdout}{done.stderr}")
    log(f"our indexes ensured in {time.monotonic() - started:.0f}s")


def app_environment(uri, secret):
    """What both apps are configured with; nothing inherited that would change gunicorn's setup."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PROGRESS_LEGACY_FIRST_PATCH")}
    env.update(MONGODB_URI=uri, JWT_SECRET_KEY=secret, PROGRESS_ENV="development",
               JWT_IDENTITY_CLAIM="sub", PYTHONUNBUFFERED="1")
    return env


@contextmanager
def serve(group, name, spec, env, tmp, workers, data, log, threads=0):
    """gunicorn serving `spec` on a free port with the counting hooks; stopped on exit.
    `threads`: gthread workers with that many threads each, else sync workers."""
    port = procs.free_port()
    stats_dir = tmp / f"stats-{name}"
    stats_dir.mkdir()
    # As scripts/gunicorn.conf.py runs ours: /metrics summed over the workers through files.
    metrics_dir = tmp / f"metrics-{name}"
    metrics_dir.mkdir()
    log_path = tmp / f"gunicorn-{name}.log"
    # No --preload: the workers must import the app after post_fork has registered the listener.
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "--workers", str(workers),
           "--bind", f"127.0.0.1:{port}"]
    if threads:
        cmd += ["--worker-class", "gthread", "--threads", str(threads)]
    cmd.append(spec)
    proc = group.start(cmd, log_path, cwd=ROOT, env={**env, "BENCH_STATS_DIR": str(stats_dir),
                                                     "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    server = Server(name, f"http://127.0.0.1:{port}", proc, stats_dir, log_path, threads=threads)
    try:
        probe = dataset.check_pairs(data)[0]
        procs.wait_until(lambda: _alive(proc, log_path) and _get(server, data, *probe),
                         timeout=60, errors=(OSError, http.client.HTTPException),
                         what=f"{name} ({spec}) to answer")
        log(f"{name}: {spec} up on port {port}, workers {procs.children_of(proc.pid)}")
        yield server
    finally:
        group.stop(proc)


def _alive(proc, log_path):
    """True while the process runs; a clear error with its log once it has died."""
    if proc.poll() is not None:
        raise SystemExit(f"{' '.join(map(str, proc.args))} exited with {proc.returncode}:\n"
                         f"{procs.tail(log_path)}")
    return True


def _get(server, data, user, course):
    """GET one record as its user: (status, body)."""
    return http_json(server.url, "GET", f"/api/v1/progress/{course['_id']}",
                     data.token(data.users[user]))


def check_answers(server, data):
    """GET the read-only check records (both apps must answer them alike)."""
    answers = {}
    for user, course in dataset.check_pairs(data):
        status, body = _get(server, data, user, course)
        if status != 200:
            raise SystemExit(f"{server.name} answered {status} to GET of a seeded record: {body}\n"
                             f"{procs.tail(server.log)}")
        if dataset.PASSWORD in json.dumps(body):
            raise SystemExit(f"{server.name} leaked a user's password hash: {body}")
        answers[f"{user}/{course['_id']}"] = body["data"]
    return answers


def check_behaviours(server, db, data):
    """What the load scenarios rely on, asked once of each app (both must answer alike):
    enrollment's 403 (and no record created), the admin's and instructor's pass, the
    position-only PATCH (204 with return=minimal, flag kept), completion by watching (an
    explicit flag wins), POST complete/reset (messages, percentages, 404 without a record)."""
    found = {}
    big, open_course = data.big_course, data.writer_course
    stranger = dataset.new_user(db, f"Stranger for {server.name}")
    admin = dataset.new_user(db, f"Admin for {server.name}", role="admin")
    student = dataset.new_user(db, f"Student for {server.name}")

    def call(user, method, path, body=None, minimal=False):
        headers = {"Prefer": "return=minimal"} if minimal else None
        return http_call(server.url, method, f"/api/v1/progress/{path}", data.token(user), body, headers)

    def brief(answer, *keys):
        status, body, headers = answer
        if not isinstance(body, dict):
            return {"status": status, "body": body, "preference": headers.get("preference-applied")}
        data_ = body.get("data") or {}
        return {"status": status, "message": body.get("message"),
                **{k: data_.get(k) for k in keys}}

    lecture = big["lectures"][0]
    found["403 not enrolled GET"] = brief(call(stranger, "GET", big["_id"]))
    found["403 not enrolled PATCH"] = brief(call(stranger, "PATCH", f"{big['_id']}/lectures/{lecture}",
                                                 {"isCompleted": True}))
    found["403 created no record"] = db.courseprogresses.count_documents(
        {"user": stranger, "course": big["_id"]})
    found["admin passes (404 no record)"] = brief(call(admin, "GET", big["_id"]))
    found["instructor passes (404 no record)"] = brief(call(data.instructor, "GET", big["_id"]))
    found["complete without record"] = brief(call(student, "POST", f"{open_course['_id']}/complete"))

    course_id = open_course["_id"]
    first, second = open_course["lectures"][:2]
    duration = open_course["durations"][first]
    found["position only, first use"] = brief(call(student, "PATCH", f"{course_id}/lectures/{first}",
                                                   {"watchTime": 5}), "completionPercentage")
    found["heartbeat 204"] = brief(call(student, "PATCH", f"{course_id}/lectures/{first}",
                                        {"watchTime": 7}, minimal=True))
    status, body = http_json(server.url, "GET", f"/api/v1/progress/{course_id}", data.token(student))
    entry = body["data"]["lectureProgress"][0] if status == 200 else {}
    found["heartbeat stored"] = {k: entry.get(k) for k in ("watchTime", "isCompleted")}
    found["watched 90% completes"] = brief(call(student, "PATCH", f"{course_id}/lectures/{first}",
                                                {"watchTime": duration * dataset.COMPLETE_AT}),
                                           "completionPercentage")
    found["watching never un-completes"] = brief(call(student, "PATCH", f"{course_id}/lectures/{first}",
                                                      {"watchTime": 1}), "completionPercentage")
    found["explicit false wins"] = brief(call(student, "PATCH", f"{course_id}/lectures/{second}",
                                              {"watchTime": duration * 2, "isCompleted": False}),
                                         "completionPercentage")
    found["complete"] = brief(call(student, "POST", f"{course_id}/complete"), "completionPercentage", "isCompleted")
    found["reset"] = brief(call(student, "POST", f"{course_id}/reset"), "completionPercentage", "isCompleted")
    found["complete minimal"] = brief(call(student, "POST", f"{course_id}/complete", minimal=True))
    found["body without either field"] = brief(call(student, "PATCH", f"{course_id}/lectures/{first}", {}))
    return found


# ---- scenarios ------------------------------------------------------------------------------

def base_scenarios(args, data, rng, tmp):
    """The 1k phase: GET and PATCH over many users' records, on 10- and 200-lecture courses."""
    scenarios = []
    for label, course_of in (("10", lambda u: data.small_courses[u % dataset.SMALL_COURSES]),
                             ("200", lambda u: data.big_course)):
        scenarios += _get_and_patch(label, *dataset.base_lists(data, course_of, rng), args, tmp)
    return scenarios


def heartbeat_scenario(args, data, rng, tmp, patch_200):
    """Position-only PATCHes with Prefer: return=minimal on the 200-lecture records, and, in
    the same rounds (ABCD DCBA), the reference's full PATCH of patch-200 (the list `patch_200`)
    that they are divided by, and ours serving the player module's heartbeats (with `played`
    and `at`), which must stay as cheap as the plain ones.

    The database's cost per request (and with it the workers' CPU, since a request that waits
    longer resumes on colder caches) moves between scenarios: across runs of the same code,
    the heartbeat scenario took 11 to 19 ms of database CPU per request and the reference's
    own heartbeat over its PATCH of the patch-200 scenario ranged from 0.73 to 1.35. Side by
    side in one scenario, both answers are measured under the same database. Twice the rounds
    of the others: one 5 s round moves by about 15 %.
    """
    heartbeat, played = tmp / "heartbeat-200.txt", tmp / "heartbeat-played-200.txt"
    dataset.write_lines(heartbeat, dataset.heartbeat_list(data, data.big_course, rng))
    dataset.write_lines(played, dataset.heartbeat_list(data, data.big_course, rng, played=True))
    return Scenario("heartbeat-200", "PATCH", {"ours": heartbeat, "reference": heartbeat,
                                               REFERENCE_PATCH: patch_200, OURS_PLAYED: played},
                    args.connections, expected={"ours": 204, "reference": 204, REFERENCE_PATCH: 200,
                                                OURS_PLAYED: 204},
                    rounds=2 * args.rounds)


def heavy_scenarios(args, db, data, rng, tmp):
    """The largest course and the largest enrollment list: GET/PATCH at 1,000 lectures, POST
    complete/reset at 1,000, GET on the courses with 100,000 and 10 enrolled students."""
    scenarios = _get_and_patch("1000", *dataset.huge_lists(data, rng), args, tmp)

    # Each thread of wrk alternates complete and reset on its own record, which every run
    # (warm-up included) starts from the reset state: each request flips all 1,000 flags.
    users = data.users[dataset.HUGE_RECORDS:dataset.HUGE_RECORDS + args.connections]
    pairs = tmp / "complete-reset-1000.txt"
    dataset.write_lines(pairs, dataset.pair_lines(data, users, data.huge_course))
    scenarios.append(Scenario("complete-reset-1000", "POST", pairs, args.connections, mode="pair",
                              prepare=lambda server: dataset.replace_records(db, users, data.huge_course),
                              duration_factor=args.slow_factor))

    # Apart, for latency and reply bytes; mixed in one run (with the heavy control), for the
    # CPU of each kind of GET in the same conditions. A request that waits tens of ms for the
    # database resumes on cold caches and costs the worker more CPU, whatever it waited for:
    # only the control, whose query takes as long for another reason, tells that apart from
    # work done for the enrollment list.
    crowd, few, mixed = dataset.enrollment_lists(data)
    for label, lines in (("100k", crowd), ("10", few), ("mixed", mixed)):
        path = tmp / f"get-enrolled-{label}.txt"
        dataset.write_lines(path, lines)
        scenarios.append(Scenario(f"get-enrolled-{label}", "GET", path, args.connections))
    return scenarios


def large_scenarios(args, data, rng, tmp):
    """The 100k phase: the same GET and PATCH, spread over the whole set of records."""
    return _get_and_patch(report.large_label(args), *dataset.spread_lists(data, rng), args, tmp)


def run_large(group, servers, apps, env, database, db, data, rng, args, tmp, log, raw, selected, extra):
    """The 100k phase; returns the figures of both apps' GETs on a copy of the 1k phase's data.

    Latency at 100,000 records is compared with latency at 1,000 measured in the same rounds:
    before the growth the database is copied (same server, database DB_NAME_1K), a second
    server of each app is started on the copy, and the 100k GETs alternate (ABCD DCBA) with
    get-10's GETs on the copy. Measured minutes apart instead, the ratio moved with the
    machine: the reference's own ratio ranged 0.85-1.09 over four runs of the same code.
    No restart: the growth writes one batch at a time, and the phase measures the database's
    cache over 100,000 records as the growth left it.
    """
    uri_1k = database.uri.replace(f"/{DB_NAME}?", f"/{DB_NAME_1K}?")
    if selected(f"get-{report.large_label(args)}"):
        copy_database(db, MongoClient(uri_1k).get_default_database(), log)
    log(f"growing the first 10-lecture course to {args.large:,} records (a user each)")
    dataset.grow_small_records(db, data, args.large, rng)
    get_large, patch_large = large_scenarios(args, data, rng, tmp)
    at_1k = {}
    if selected(get_large.name):
        with ExitStack() as stack:
            copies = {f"{name}-1k": stack.enter_context(serve(group, f"{name}-1k", spec, {**env, "MONGODB_URI": uri_1k},
                                                              tmp, args.workers, data, log))
                      for name, spec in apps.items()}
            get_large.list_file = {**dict.fromkeys(servers, get_large.list_file),
                                   **dict.fromkeys(copies, tmp / "get-10.txt")}
            # One 5 s round of a server moves by about 15 %: twice the rounds of the others.
            get_large.rounds = 2 * args.rounds
            found = compare({**servers, **copies}, get_large, lambda: database.pid, args, log)
        for name in servers:
            raw[name][get_large.name] = found[name]
        at_1k = {name: found[f"{name}-1k"] for name in servers}
    if selected(patch_large.name):
        for name, figures in compare(servers, patch_large, lambda: database.pid, args, log).items():
            raw[name][patch_large.name] = figures
    if selected(instructor.EXPORT):
        # Last: counting the course's figures writes a document per record.
        try:
            extra["export"] = instructor.run_export(servers["ours"], database, data, log)
        except (RuntimeError, OSError) as exc:
            log(f"{instructor.EXPORT}: not measured: {exc}")
            extra["export"] = {"error": str(exc)}
    return at_1k


def copy_database(source, target, log):
    """Every collection of `source` into `target` (dropped first), with its indexes."""
    started = time.monotonic()
    source.client.drop_database(target.name)
    for name in source.list_collection_names():
        batch = []
        for document in source[name].find():
            batch.append(document)
            if len(batch) == dataset.BATCH:
                target[name].insert_many(batch)
                batch = []
        if batch:
            target[name].insert_many(batch)
        for index in source[name].list_indexes():
            if index["name"] != "_id_":
                target[name].create_index(list(index["key"].items()), name=index["name"],
                                          unique=index.get("unique", False))
    log(f"copied the database to {target.name} in {time.monotonic() - started:.0f}s")


def _get_and_patch(label, gets, patches, args, tmp):
    get_file, patch_file = tmp / f"get-{label}.txt", tmp / f"patch-{label}.txt"
    dataset.write_lines(get_file, gets)
    dataset.write_lines(patch_file, patches)
    return [Scenario(f"get-{label}", "GET", get_file, args.connections),
            Scenario(f"patch-{label}", "PATCH", patch_file, args.connections)]


def run_xapi(group, ours, spec, env, db, db_pid, data, args, tmp, log):
    """What xAPI (contract section 10) adds to a PATCH: ours as measured everywhere else (xAPI
    off) against ours with the sender on, the same PATCHes of patch-10, rounds alternating.

    The LRS is a stub on a thread of this script (bench/stub_lrs.py): the row measures our
    worker's side, i.e. the outbox's insert in the same transaction as the record's write and
    the relay thread's sends (in `cpu_ms_per_request_all_threads`). Afterwards every statement
    must reach the stub and none may stay waiting or parked.
    """
    scenario = Scenario("xapi-patch-10", "PATCH", tmp / "patch-10.txt", args.connections)
    with StubLrs() as lrs:
        xapi_env = {**env, "PROGRESS_XAPI_ENDPOINT": lrs.endpoint, "PROGRESS_XAPI_USERNAME": "bench",
                    "PROGRESS_XAPI_PASSWORD": secrets.token_hex(8),
                    "PROGRESS_XAPI_HOMEPAGE": "https://lms.bench.example"}
        with serve(group, "ours-xapi", spec, xapi_env, tmp, args.workers, data, log) as sender:
            results = compare({"ours": ours, "ours-xapi": sender}, scenario, db_pid, args, log)
            outbox = db["progressxapioutbox"]
            procs.wait_until(lambda: outbox.count_documents({"state": "pending"}) == 0, timeout=120,
                             what="the outbox to drain")
            results["ours-xapi"]["peak_rss_mb"] = round(sender.peak_rss_mb, 1)
            results["ours-xapi"]["log_problems"] = procs.log_problems(sender.log)
        results["statements"] = {"delivered": lrs.received, "posts": lrs.posts,
                                 "waiting": outbox.count_documents({"state": "pending"}),
                                 "parked": outbox.count_documents({"state": "parked"})}
    log(f"xapi: {lrs.received} statements delivered in {lrs.posts} posts, "
        f"{results['statements']['waiting']} waiting, {results['statements']['parked']} parked")
    return results


def run_metrics(group, ours, spec, env, db_pid, data, args, tmp, log):
    """What metrics (contract section 13) cost a worker: ours as deployed (PROGRESS_METRICS on,
    multiprocess files) against ours with PROGRESS_METRICS=off, the requests of get-10 and
    patch-10, rounds alternating; the scrape itself is not part of it."""
    results = {}
    with serve(group, "ours-metrics-off", spec, {**env, "PROGRESS_METRICS": "off"}, tmp, args.workers,
               data, log) as off:
        for method in ("GET", "PATCH"):
            scenario = Scenario(f"metrics-{method.lower()}-10", method, tmp / f"{method.lower()}-10.txt",
                                args.connections)
            found = compare({"ours": ours, "ours-metrics-off": off}, scenario, db_pid, args, log)
            results[scenario.name] = {"on": found["ours"], "off": found["ours-metrics-off"]}
        results["log_problems"] = procs.log_problems(off.log)
    return results


def run_writers(servers, db, data, database, fresh_database, args, tmp, log):
    """N writers PATCH different lectures of ONE record; then check that nothing was lost.

    Rounds alternate the apps (ABBA), each on a restarted database and a record of its own
    that the round's first PATCH creates, and each is checked when it ends (a check needs one
    uninterrupted wrk run). Run one app after the other, the throughput ratio moved with the
    machine between the two runs."""
    scenario = Scenario(f"writers-{args.writers}", "PATCH", None, args.writers, mode="writer", warmup=False)
    names = list(servers)
    runs = {name: [] for name in names}
    checks = {name: [] for name in names}
    for round_number in range(args.rounds):
        for name in names if round_number % 2 == 0 else names[::-1]:
            server = servers[name]
            user_id = dataset.new_user(db, f"Writer for {name}, round {round_number}")
            scenario.list_file = tmp / f"writers-{name}-{round_number}.txt"
            dataset.write_lines(scenario.list_file, dataset.writer_lines(data, user_id)[:args.writers])
            fresh_database()
            run = measure_once(server, scenario, database.pid, args.duration)
            checks[name].append((user_id, contention.check_load(db, user_id, data.writer_course, run["wrk_threads"])))
            runs[name].append(run)
    results = {}
    for name in names:
        result = per_request(scenario, combine(runs[name]))
        writers = result.pop("wrk_threads")
        user_id, _ = checks[name][-1]
        during = [check for _, check in checks[name]]
        final = contention.final_round(db, servers[name].url, data.token(user_id), user_id,
                                       data.writer_course, writers)
        result.update(lost_updates=sum(len(check["lost"]) for check in during) + len(final["lost"]),
                      during_load=during, final_round=final)
        rule_held = all(check["rule_ok"] for check in during) and final["rule_ok"]
        log_result(log, name, scenario, result)
        log(f"{name} writers: lost {result['lost_updates']}, rule held {rule_held}, "
            f"final round {final['statuses']}")
        results[name] = result
    return results


def run_threaded(group, apps, env, main_db, data, args, tmp, log):
    """16 writers on DIFFERENT records: ONE gunicorn process with `--threads` threads against
    ONE sync worker, for each app, rounds alternating over the four servers; then each
    server's records are checked (no lost or misplaced write).

    On a SecantusDB of its own, holding the writers' course and users: after a few minutes of
    concurrent writes SecantusDB serves every update 3-4 times slower (4 -> 14 ms for a
    10-lecture record, with no background work of its own to see), and this scenario is
    bound by the database's throughput. Its own database measures the same thing whatever
    ran before, and its hammering leaves the main database as it was."""
    database = Database(group, tmp / "threaded-db", log)
    uri = database.uri
    db = MongoClient(uri).get_default_database()
    db.courseprogresses.create_index([("user", 1), ("course", 1)], unique=True)
    course = main_db.courses.find_one({"_id": data.writer_course["_id"]})
    db.courses.insert_one(course)
    db.lectures.insert_many(list(main_db.lectures.find({"_id": {"$in": course["lectures"]}})))
    env = {**env, "MONGODB_URI": uri}
    configs = {}
    for app, spec in apps.items():
        configs[f"{app}-sync"] = (spec, 0)
        configs[f"{app}-threads"] = (spec, args.threads)
    lists, users = {}, {}
    for name in configs:
        users[name] = [dataset.new_user(db, f"Threaded writer {i} for {name}") for i in range(args.writers)]
        lists[name] = tmp / f"threaded-{name}.txt"
        dataset.write_lines(lists[name], dataset.threaded_writer_lines(data, users[name]))
    def fresh(server):
        """Every round on a database restarted (see Database): four servers hammer it."""
        if args.restart_db:
            database.restart()
            warm_up(server, data, path=f"/api/v1/progress/{course['_id']}",
                    token=data.token(users[server.name][0]))

    scenario = Scenario(f"threaded-{args.writers}", "PATCH", lists, args.writers, mode="writer",
                        prepare=fresh)
    # Its ratios compare runs of different servers, minutes into a busy database: more rounds.
    rounds = argparse.Namespace(**{**vars(args), "rounds": max(args.rounds, args.threaded_rounds)})
    with ExitStack() as stack:
        servers = {name: stack.enter_context(serve(group, name, spec, env, tmp, 1, data, log, threads))
                   for name, (spec, threads) in configs.items()}
        results = compare(servers, scenario, lambda: database.pid, rounds, log)
        for name, server in servers.items():
            results[name]["peak_rss_mb"] = round(server.peak_rss_mb, 1)
            results[name]["log_problems"] = procs.log_problems(server.log)
    for name, result in results.items():
        writers = result.pop("wrk_threads")
        check = contention.check_separate(db, users[name], data.writer_course, writers)
        result.update(lost_updates=len(check["lost"]), check=check)
        log(f"{name} threaded writers: lost {len(check['lost'])}, foreign writes "
            f"{len(check['foreign_writes'])}, rule broken {len(check['rule_broken'])}")
    database.stop()
    return {"threads": args.threads, "writers": args.writers, "servers": results}


if __name__ == "__main__":
    sys.exit(main())
