"""Benchmark the progress service against a minimal reference implementation.

    .venv/bin/python -m bench.run                                  # make bench
    .venv/bin/python -m bench.run --ours bench.reference_app:app   # self-test of the harness

Starts a SecantusDB in a temporary directory, seeds it in the original LMS's shape (1,000
records, later 100,000), serves both apps with gunicorn (2 sync workers each) and drives them
with wrk, alternating between them. Per app and scenario: requests/s and p50/p99 latency
(wrk), CPU per request of the gunicorn workers (/proc; the database's CPU is reported apart),
MongoDB commands per request (the hooks in bench/gunicorn_bench.py) and peak worker RSS;
16 writers on one record are then checked for lost updates in the database. Prints a table,
writes bench/results.json.
"""
import argparse
import http.client
import json
import os
import random
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # `python bench/run.py`: run as `-m bench.run` in the checkout's venv
    VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    python = VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable)
    os.execv(python, [str(python), "-m", "bench.run", *sys.argv[1:]])

from pymongo import MongoClient  # noqa: E402  (after the re-exec above)
from pymongo.errors import PyMongoError  # noqa: E402

from bench import contention, dataset, procs, report  # noqa: E402
from bench.load import ensure_wrk, http_json  # noqa: E402
from bench.measure import Scenario, Server, compare  # noqa: E402

GUNICORN_CONFIG = ROOT / "bench" / "gunicorn_bench.py"
DB_NAME = "benchdb"


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
    parser.add_argument("--large", type=int, default=100_000,
                        help="records of the large phase (0 skips it)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.json")
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
    db_proc, uri = start_database(group, tmp, log)
    db = MongoClient(uri).get_default_database()
    rng = random.Random(args.seed)
    secret = secrets.token_hex(32)
    user_count = max(dataset.BASE_USERS, -(-args.large // dataset.SMALL_COURSES))
    log(f"seeding {user_count:,} users; courses of 10, 200 and {dataset.WRITER_LECTURES} lectures")
    data = dataset.seed_catalog(db, secret, user_count, lms_indexes=args.lms_index)
    dataset.seed_base_records(db, data, rng)
    env = app_environment(uri, secret)
    raw = {name: {} for name in apps}

    def run(scenarios):
        for scenario in scenarios:
            for name, figures in compare(servers, scenario, db_proc.pid, args, log).items():
                raw[name][scenario.name] = figures

    with ExitStack() as stack:
        servers = {name: stack.enter_context(serve(group, name, spec, env, tmp, args.workers, data, log))
                   for name, spec in apps.items()}
        answers = {name: check_answers(server, data) for name, server in servers.items()}
        run(base_scenarios(args, data, rng, tmp))
        for name, server in servers.items():
            raw[name][f"writers-{args.writers}"] = run_writers(server, db, data, db_proc.pid, args, tmp, log)
        if args.large:
            log(f"growing to {args.large:,} records on the 10-lecture courses")
            dataset.grow_small_records(db, data, args.large, rng)
            run(large_scenarios(args, data, rng, tmp))
        for name, server in servers.items():
            raw[name]["peak_rss_mb"] = round(server.peak_rss_mb, 1)
    return report.summarize(args, apps, raw, report.compare_answers(answers))


# ---- the database and the apps --------------------------------------------------------------

def start_database(group, tmp, log):
    """A SecantusDB on a free port with its storage in `tmp`; returns (process, URI)."""
    port = procs.free_port()
    log_path = tmp / "secantusdb.log"
    # cwd=tmp: secantusd-py would otherwise pick up a secantusd.toml from the current directory.
    proc = group.start([str(Path(sys.executable).parent / "secantusd-py"), "--host", "127.0.0.1",
                        "--port", str(port), "--storage-path", str(tmp / "db"),
                        "--log-level", "WARNING"], log_path, cwd=tmp)
    uri = f"mongodb://127.0.0.1:{port}/{DB_NAME}?directConnection=true"
    with MongoClient(uri, serverSelectionTimeoutMS=500) as probe:
        procs.wait_until(lambda: _alive(proc, log_path) and probe.admin.command("ping"),
                         timeout=60, errors=(PyMongoError, OSError), what="SecantusDB")
    log(f"SecantusDB up on port {port} (pid {proc.pid})")
    return proc, uri


def app_environment(uri, secret):
    """What both apps are configured with; nothing inherited that would change gunicorn's setup."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PROGRESS_LEGACY_FIRST_PATCH")}
    env.update(MONGODB_URI=uri, JWT_SECRET_KEY=secret, PROGRESS_ENV="development",
               JWT_IDENTITY_CLAIM="sub", PYTHONUNBUFFERED="1")
    return env


@contextmanager
def serve(group, name, spec, env, tmp, workers, data, log):
    """gunicorn serving `spec` on a free port with the counting hooks; stopped on exit."""
    port = procs.free_port()
    stats_dir = tmp / f"stats-{name}"
    stats_dir.mkdir()
    log_path = tmp / f"gunicorn-{name}.log"
    # No --preload: the workers must import the app after post_fork has registered the listener.
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "--workers", str(workers),
           "--bind", f"127.0.0.1:{port}", spec]
    proc = group.start(cmd, log_path, cwd=ROOT, env={**env, "BENCH_STATS_DIR": str(stats_dir)})
    server = Server(name, f"http://127.0.0.1:{port}", proc, stats_dir, log_path)
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


# ---- scenarios ------------------------------------------------------------------------------

def base_scenarios(args, data, rng, tmp):
    """The 1k phase: GET and PATCH over many users' records, on 10- and 200-lecture courses."""
    scenarios = []
    for label, course_of in (("10", lambda u: data.small_courses[u % dataset.SMALL_COURSES]),
                             ("200", lambda u: data.big_course)):
        scenarios += _get_and_patch(label, *dataset.base_lists(data, course_of, rng), args, tmp)
    return scenarios


def large_scenarios(args, data, rng, tmp):
    """The 100k phase: the same GET and PATCH, spread over the whole set of records."""
    return _get_and_patch(report.large_label(args), *dataset.spread_lists(data, rng), args, tmp)


def _get_and_patch(label, gets, patches, args, tmp):
    get_file, patch_file = tmp / f"get-{label}.txt", tmp / f"patch-{label}.txt"
    dataset.write_lines(get_file, gets)
    dataset.write_lines(patch_file, patches)
    return [Scenario(f"get-{label}", "GET", get_file, args.connections),
            Scenario(f"patch-{label}", "PATCH", patch_file, args.connections)]


def run_writers(server, db, data, db_pid, args, tmp, log):
    """N writers PATCH different lectures of ONE new record; then check that nothing was lost."""
    user_id = dataset.new_user(db, f"Writer for {server.name}")
    list_file = tmp / f"writers-{server.name}.txt"
    dataset.write_lines(list_file, dataset.writer_lines(data, user_id)[:args.writers])
    scenario = Scenario(f"writers-{args.writers}", "PATCH", list_file, args.writers,
                        mode="writer", warmup=False)
    # One app at a time and one long round: the check needs one uninterrupted wrk run.
    one_round = argparse.Namespace(**{**vars(args), "rounds": 1, "duration": args.duration * args.rounds})
    result = compare({server.name: server}, scenario, db_pid, one_round, log)[server.name]
    writers = result.pop("wrk_threads")
    during = contention.check_load(db, user_id, data.writer_course, writers)
    final = contention.final_round(db, server.url, data.token(user_id), user_id,
                                   data.writer_course, writers)
    result.update(lost_updates=len(during["lost"]) + len(final["lost"]), during_load=during,
                  final_round=final)
    log(f"{server.name} writers: lost {result['lost_updates']}, rule held "
        f"{during['rule_ok'] and final['rule_ok']}, final round {final['statuses']}")
    return result


if __name__ == "__main__":
    sys.exit(main())
