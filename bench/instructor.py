"""The instructor's views and the dashboard at course scale (contract section 15), ours only.

The reference implements the student's endpoints alone, so these scenarios compare ours with
itself in the same rounds: their participants are one gunicorn server of ours asked different
kinds of request (bench.measure.compare, a list file per participant):
- `summary`: the summary of a 200-lecture course with 100 students against one with 10,000
  (every record holding all 200 entries), p50 ratio;
- `figures-patch-10`, `figures-heartbeat-10`: what keeping a course's figures costs its
  writes: the same flag PATCHes (and position-only heartbeats) on twin 10-lecture courses with
  the same records, in the same rounds: `figures-on`, ours on the twin whose figures are kept
  (its summary was asked for); `figures-none`, ours on the other twin, whose figures nobody
  asked for; `figures-off`, a second server of ours on that twin with the figures' update
  switched off (bench/gunicorn_bench.py, BENCH_FIGURES_OFF: a switch of this benchmark only),
  i.e. the service without kept figures. Worker CPU and commands per request, on over off;
- `students-pages`: the student list's page near the end of the 10,000-student course by
  cursor (`?after=`) against its first page, p50 ratio;
- `dashboard`: page 1 of the dashboard of a student with records on 1,000 courses against one
  with 10, p50 ratio;
- `export-100k` (the 100k phase, last): GET /:courseId/students.csv of the 100,000-student course,
  streamed to the end: its time, rows, and the workers' peak resident memory growth.

Before any load `check_views` asks each new endpoint once on small data and compares the
answers with an oracle computed from the stored records (the rule of contract section 2).
"""
import csv
import http.client
import io
import time
from dataclasses import replace
from urllib.parse import quote, urlsplit

from bench import dataset, procs
from bench.load import http_json
from bench.measure import Scenario, compare

PREFIX = "/api/v1/progress"
VIEWS = ("summary", "figures", "students-pages", "dashboard")  # the 1k phase's, for --only
EXPORT = "export-100k"  # the 100k phase's
FIGURES_OFF = "figures-off"  # the server of ours that keeps no figures (figures scenarios)
PAGE = 20               # the page size the list scenarios ask for (the API's default)
WALK_PAGE = 100         # the largest page, to reach the end of a list in few requests
# How long a course's figures may take to be counted from its records, on SecantusDB: this
# much, and as much per record and per stored entry.
FIGURES_BASE_S = 120
FIGURES_S_PER_RECORD = 0.002
FIGURES_S_PER_ENTRY = 0.0001
COUNTED = {}  # course id: seconds its figures took to be counted, or why they were not
BUILDING = 503          # the answer while a course's figures are being counted


def summary_path(course):
    return f"{PREFIX}/{course['_id']}/summary"


def students_path(course, **query):
    params = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in query.items())
    return f"{PREFIX}/{course['_id']}/students" + (f"?{params}" if params else "")


def line(path, token):
    """A wrk list line: GET, no body."""
    return f"GET\t{path}\t{token}\t"


# ---- waiting for the figures, walking the list ------------------------------------------------

def figures_ready(server, data, course, log, students=1000):
    """Ask the course's summary until it answers 200 (503 while its figures are counted, and
    now and then while a batch of the count outlasts a request's time budget); returns the
    seconds it took. RuntimeError with the last answer when the time for `students` records
    of the course's length (FIGURES_*) runs out, or when no answer ever said the figures were
    being counted. A course's outcome is remembered (COUNTED)."""
    if course["_id"] in COUNTED:
        outcome = COUNTED[course["_id"]]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    started = time.monotonic()
    deadline = started + FIGURES_BASE_S + students * (FIGURES_S_PER_RECORD
                                                      + FIGURES_S_PER_ENTRY * len(course["lectures"]))
    token = data.token(data.instructor)
    counting, asked = False, 0
    while True:
        status, body = http_json(server.url, "GET", summary_path(course), token, timeout=120)
        asked += 1
        if status == 200:
            spent = round(time.monotonic() - started, 1)
            if spent > 5:
                log(f"{server.name}: figures of course {course['_id']} counted in {spent:.0f}s")
            COUNTED[course["_id"]] = spent
            return spent
        counting = counting or "count" in str(body)  # "The course's figures are being counted"
        if status != BUILDING or time.monotonic() > deadline or (asked >= 5 and not counting):
            COUNTED[course["_id"]] = RuntimeError(
                f"summary of {course['_id']} answered {status} after {time.monotonic() - started:.0f}s: "
                f"{str(body)[:300]}")
            raise COUNTED[course["_id"]]
        time.sleep(0.5)


def walk(server, token, course, limit, stop=None, **query):
    """Follow the student list's cursor from the first page: (items in order, the `next` that
    starts the page after the last one read). `stop(count)` ends the walk early."""
    items, after = [], None
    while True:
        params = {"limit": limit, **query, **({"after": after} if after else {})}
        status, body = http_json(server.url, "GET", students_path(course, **params), token, timeout=120)
        if status != 200:
            raise RuntimeError(f"students list answered {status}: {str(body)[:300]}")
        page = body["data"]
        items += page["items"]
        after = page.get("next")
        if not after or (stop and stop(len(items))):
            return items, after


def cursor_near_end(server, data, course, students):
    """The `next` cursor after all but the last WALK_PAGE students of the course."""
    token = data.token(data.instructor)
    items, after = walk(server, token, course, WALK_PAGE, stop=lambda count: count >= students - WALK_PAGE)
    if not after or len(items) < students - WALK_PAGE:
        raise RuntimeError(f"the list ended after {len(items)} of {students} students")
    return after


# ---- the oracle ------------------------------------------------------------------------------

def oracle(db, course_id):
    """(current lectures, {user: row}) of a course from its stored records, by the rule of
    contract section 2: only current lectures count, a lecture's first entry wins, a
    missing entry is not completed, percentage = (200 c + t) // (2 t)."""
    stored = db.courses.find_one({"_id": course_id}, {"lectures": 1})
    lectures = list(dict.fromkeys(stored.get("lectures") or []))
    total = len(lectures)
    rows = {}
    for raw in db.courseprogresses.find({"course": course_id}):
        first = {}
        for entry in raw.get("lectureProgress") or []:
            if isinstance(entry, dict):
                first.setdefault(entry.get("lecture"), bool(entry.get("isCompleted", False)))
        flags = [first.get(lecture, False) for lecture in lectures]
        done = sum(flags)
        percentage = (200 * done + total) // (2 * total) if total else 0
        rows[raw["user"]] = {"percentage": percentage, "completed": percentage == 100, "flags": flags,
                             "order": (raw.get("createdAt"), raw["_id"])}
    return lectures, rows


def expected_summary(lectures, rows):
    """The summary the oracle gives: students, completed, the mean percentage (half up, one
    decimal) and each lecture's completed count."""
    count = len(rows)
    total = sum(row["percentage"] for row in rows.values())
    return {"students": count, "completed": sum(row["completed"] for row in rows.values()),
            "averagePercentage": (20 * total + count) // (2 * count) / 10 if count else 0.0,
            "lectures": [sum(row["flags"][i] for row in rows.values()) for i in range(len(lectures))]}


def check_views(server, db, data, log):
    """Each new endpoint asked once on small data, compared with the oracle: {check: result},
    each result with `ok`. Ours only (the reference has none of them)."""
    token = data.token(data.instructor)
    course = data.summary_courses["100"]
    found = {}

    def check(name, function):
        try:
            found[name] = function()
        except (RuntimeError, KeyError, TypeError, ValueError, OSError, http.client.HTTPException) as exc:
            found[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    try:
        figures_ready(server, data, course, log)
    except (RuntimeError, OSError, http.client.HTTPException) as exc:
        return {"summary": {"ok": False, "error": f"not served: {exc}"}}
    lectures, rows = oracle(db, course["_id"])
    by_order = sorted(rows, key=lambda user: rows[user]["order"])

    def answer(path, caller_token):
        """The `data` of a 200 answer, else RuntimeError with what came instead."""
        status, body = http_json(server.url, "GET", path, caller_token, timeout=120)
        if status != 200 or not isinstance(body, dict) or "data" not in body:
            raise RuntimeError(f"GET {path} answered {status}: {str(body)[:300]}")
        return body["data"]

    def summary():
        shown = answer(summary_path(course), token)
        expected = expected_summary(lectures, rows)
        got = {"students": shown["students"], "completed": shown["completed"],
               "averagePercentage": shown["averagePercentage"],
               "lectures": [row["completed"] for row in shown["lectures"]]}
        order_ok = [row["lecture"] for row in shown["lectures"]] == [str(lecture) for lecture in lectures]
        return {"ok": got == expected and order_ok and bool(shown.get("asOf")), "asOf": shown.get("asOf"),
                **({} if got == expected else {"got": got, "expected": expected})}

    def cursor_pages():
        items, _ = walk(server, token, course, 7)
        users = [item["user"]["_id"] for item in items]
        wrong = [item["user"]["_id"] for item in items
                 if item["completionPercentage"] != rows.get(_oid(item["user"]["_id"]), {}).get("percentage")]
        return {"ok": users == [str(user) for user in by_order] and not wrong,
                "students": len(users), "expected": len(by_order), "wrong_percentages": wrong[:5]}

    def filtered_and_sorted():
        found = {}
        for status, test in (("completed", lambda row: row["completed"]),
                             ("not_started", lambda row: not any(row["flags"]))):
            items, _ = walk(server, token, course, WALK_PAGE, status=status)
            shown = sorted(item["user"]["_id"] for item in items)
            found[status] = (shown, sorted(str(user) for user, row in rows.items() if test(row)))
        shown, _ = walk(server, token, course, 9, sort="percentage", order="desc")
        percentages = [item["completionPercentage"] for item in shown]
        expected = sorted((row["percentage"] for row in rows.values()), reverse=True)
        ok = all(got == wanted and wanted for got, wanted in found.values()) and percentages == expected
        return {"ok": ok, **{status: len(got) for status, (got, _) in found.items()},
                **{f"expected_{status}": len(wanted) for status, (_, wanted) in found.items()}}

    def export():
        header, body = export_rows(server, token, course)
        sample = body[:: max(1, len(body) // 10)]
        wrong = [row[0] for row in sample if not _csv_matches(row, rows, len(lectures))]
        return {"ok": len(body) == len(rows) and len(header) == 7 + len(lectures) and not wrong,
                "rows": len(body), "columns": len(header), "header": header[:8], "wrong_rows": wrong[:5]}

    def dashboard():
        user = data.dashboard_users["10"]
        page = answer(f"{PREFIX}?page=1&limit=100", data.token(user))
        expected = [str(raw["course"]) for raw in
                    db.courseprogresses.find({"user": user}).sort([("lastAccessed", -1), ("_id", -1)])]
        shown = [item["course"]["_id"] for item in page["items"]]
        return {"ok": shown == expected and page["total"] == len(expected),
                "items": len(shown), "total": page.get("total")}

    for name, function in (("summary", summary), ("students by cursor", cursor_pages),
                           ("students filtered and sorted", filtered_and_sorted),
                           ("students.csv", export), ("dashboard", dashboard)):
        check(name, function)
    return found


def _oid(text):
    from bson import ObjectId
    return ObjectId(text) if ObjectId.is_valid(text) else text


def _csv_matches(row, rows, lecture_count):
    """A CSV row (user id, name, email, percentage, completed, completedAt, lastAccessed, one
    flag per lecture) agrees with the oracle's row for that user."""
    expected = rows.get(_oid(row[0]))
    if expected is None or len(row) != 7 + lecture_count:
        return False
    truthy = {"true", "1", "yes"}
    return (int(float(row[3])) == expected["percentage"]
            and (row[4].strip().lower() in truthy) == expected["completed"]
            and [cell.strip().lower() in truthy for cell in row[7:]] == expected["flags"])


# ---- the export ------------------------------------------------------------------------------

def export_rows(server, token, course):
    """(header, rows) of the course's CSV export, read whole (for the checks: small courses)."""
    status, raw = _download(server, token, course, keep=True)
    if status != 200:
        raise RuntimeError(f"students.csv answered {status}: {raw[:300]!r}")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    return table[0], [row for row in table[1:] if row]


def _download(server, token, course, keep=False):
    """GET the course's students.csv; (status, the body if `keep`, else (bytes, lines))."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        conn.request("GET", f"{PREFIX}/{course['_id']}/students.csv",
                     headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        if keep or response.status != 200:
            return response.status, response.read()
        size = lines = 0
        started = time.monotonic()
        while True:
            try:
                chunk = response.read(1 << 16)
            except http.client.HTTPException as exc:
                problems = procs.log_problems(server.log)
                raise RuntimeError(f"the export stopped after {time.monotonic() - started:.0f}s, {lines:,} lines "
                                   f"({type(exc).__name__}); the server's log: {problems}") from exc
            if not chunk:
                return response.status, (size, lines)
            size += len(chunk)
            lines += chunk.count(b"\n")
    finally:
        conn.close()


def run_export(server, database, data, log, attempts=1):
    """The export of the 100k phase's course: the figures counted first (as an instructor's
    first look at the course would), then `attempts` downloads streamed to the end, each timed
    and measured: rows, bytes, the workers' CPU, the database's CPU, and the growth of the
    workers' peak resident memory (VmHWM reset before each download: /proc/<pid>/clear_refs)."""
    course = data.small_courses[dataset.EXPORT_COURSE]
    token = data.token(data.instructor)
    result = {"figures_counted_s": figures_ready(server, data, course, log, len(data.users))}
    runs = []
    for _ in range(attempts):
        workers = procs.children_of(server.proc.pid)
        resident = {pid: reset_peak_rss(pid) for pid in workers}
        cpu = {pid: procs.cpu_seconds(pid) for pid in workers}
        db_cpu = procs.cpu_seconds(database.pid)
        started = time.monotonic()
        status, (size, lines) = _download(server, token, course)
        seconds = time.monotonic() - started
        if status != 200:
            raise RuntimeError(f"students.csv answered {status}")
        growth = max((procs.peak_rss_mb(pid) or 0) - resident[pid] for pid in workers)
        runs.append({"seconds": round(seconds, 2), "rows": lines - 1, "bytes": size,
                     "rss_growth_mb": round(growth, 1),
                     "worker_cpu_s": round(sum(procs.cpu_seconds(pid) - cpu[pid] for pid in workers), 2),
                     "db_cpu_s": round(procs.cpu_seconds(database.pid) - db_cpu, 2)})
        log(f"export-100k: {runs[-1]}")
    result.update(runs=runs, seconds=min(run["seconds"] for run in runs),
                  rows=runs[-1]["rows"], rss_growth_mb=max(run["rss_growth_mb"] for run in runs))
    return result


def reset_peak_rss(pid):
    """Reset the process's VmHWM to its current resident size (Linux: clear_refs 5); returns
    that size in MiB."""
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")
    with open(f"/proc/{pid}/status") as status:
        for text in status:
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


# ---- the scenarios ---------------------------------------------------------------------------

def _pair(name, method, files, args, expected=200):
    """A scenario whose two participants are one server asked two kinds of request."""
    return Scenario(name, method, files, args.connections, expected=dict.fromkeys(files, expected))


def _participants(server, files):
    return {name: replace(server, name=name) for name in files}


def run_views(ours, database, db, data, rng, args, tmp, log, selected, fresh_database, serve_ours):
    """Every 1k-phase scenario of the instructor's views that is selected: {scenario: figures
    by participant}, or {scenario: {"error": ...}} when ours cannot serve it. `serve_ours(name,
    environment)`: a context manager serving another server of ours with those variables."""
    results = {}
    token = data.token(data.instructor)

    def attempt(name, function):
        if not selected(name):
            return
        try:
            results[name] = function()
        except RuntimeError as exc:
            log(f"{name}: not measured: {exc}")
            results[name] = {"error": str(exc)}

    def measure(scenario, others=None):
        participants = {**_participants(ours, scenario.list_file), **(others or {})}
        found = compare(participants, scenario, lambda: database.pid, args, log)
        ours.peak_rss_mb = max([ours.peak_rss_mb] + [server.peak_rss_mb for server in participants.values()])
        return found

    def summary():
        # Counted first (a build writes a document per record), then a restarted database.
        built = {label: figures_ready(ours, data, course, log, dataset.SUMMARY_STUDENTS[label])
                 for label, course in data.summary_courses.items()}
        files = {}
        for label, course in data.summary_courses.items():
            files[f"summary-{label}"] = tmp / f"summary-{label}.txt"
            dataset.write_lines(files[f"summary-{label}"], [line(summary_path(course), token)])
        fresh_database()
        found = measure(_pair("summary", "GET", files, args))
        found["figures_counted_s"] = built
        return found

    def write_cost():
        """Flag PATCHes that each flip a flag (wrk's writer mode: writer i alternates the flag of
        lecture i of user i's record), and position-only heartbeats: on the twin whose figures
        are kept, on the other by the same server, and on the other by a server that keeps none."""
        figures_ready(ours, data, data.twin_courses["on"], log)
        found = {}
        with serve_ours(FIGURES_OFF, {"BENCH_FIGURES_OFF": "1"}) as off:
            for kind in ("patch", "heartbeat"):
                files = {}
                for name, twin in (("figures-on", "on"), ("figures-none", "off"), (FIGURES_OFF, "off")):
                    course = data.twin_courses[twin]
                    lines = (dataset.heartbeat_list(data, course, rng) if kind == "heartbeat"
                             else dataset.flipping_lines(data, course, args.connections,
                                                         first=0 if name != FIGURES_OFF else args.connections))
                    files[name] = tmp / f"{name}-{kind}.txt"
                    dataset.write_lines(files[name], lines)
                scenario = _pair(f"figures-{kind}-10", "PATCH", files, args,
                                 expected=204 if kind == "heartbeat" else 200)
                if kind == "patch":
                    scenario.mode = "writer"
                fresh_database()
                found[kind] = measure(scenario, others={FIGURES_OFF: off})
                for participant in found[kind].values():
                    participant.pop("wrk_threads", None)
            found["log_problems"] = procs.log_problems(off.log)
        return found

    def students_pages():
        course = data.summary_courses["10k"]
        figures_ready(ours, data, course, log, dataset.SUMMARY_STUDENTS["10k"])
        near_end = cursor_near_end(ours, data, course, dataset.SUMMARY_STUDENTS["10k"])
        files = {"students-first": tmp / "students-first.txt", "students-near-end": tmp / "students-near-end.txt"}
        dataset.write_lines(files["students-first"], [line(students_path(course, limit=PAGE), token)])
        dataset.write_lines(files["students-near-end"],
                            [line(students_path(course, limit=PAGE, after=near_end), token)])
        fresh_database()
        return measure(_pair("students-pages", "GET", files, args))

    def dashboard():
        files = {}
        for label, user in data.dashboard_users.items():
            files[f"dashboard-{label}"] = tmp / f"dashboard-{label}.txt"
            dataset.write_lines(files[f"dashboard-{label}"], [line(f"{PREFIX}?page=1", data.token(user))])
        fresh_database()
        return measure(_pair("dashboard", "GET", files, args))

    attempt("summary", summary)
    attempt("figures", write_cost)
    attempt("students-pages", students_pages)
    attempt("dashboard", dashboard)
    return results


def summarize(views, export):
    """The keys of bench/results.json for the instructor's views (None where not measured)."""
    views = views or {}

    def ratio(a, b, digits=2):
        return round(a / b, digits) if a is not None and b else None

    def figures(scenario, name, key="p50_ms"):
        found = (views.get(scenario) or {}).get(name) or {}
        return found.get(key) if found.get("requests") else None  # no answer: no latency

    summary = {"p50_ms_100": figures("summary", "summary-100"), "p50_ms_10k": figures("summary", "summary-10k")}
    summary["ratio"] = ratio(summary["p50_ms_10k"], summary["p50_ms_100"])
    summary["figures_counted_s"] = (views.get("summary") or {}).get("figures_counted_s")
    write = views.get("figures") or {}
    for kind in ("patch", "heartbeat"):
        found = write.get(kind) or {}
        on, none, off = found.get("figures-on"), found.get("figures-none"), found.get(FIGURES_OFF)
        if on and off:
            sides = {"on": on, "off": off, **({"none": none} if none else {})}
            summary[f"{kind}_cpu_ms"] = {side: r["cpu_ms_per_request"] for side, r in sides.items()}
            summary[f"{kind}_cpu_ratio"] = ratio(on["cpu_ms_per_request"], off["cpu_ms_per_request"], 3)
            summary[f"{kind}_db_commands"] = {side: r["db_commands_per_request"] for side, r in sides.items()}
            summary[f"{kind}_commands_added"] = round(on["db_commands_per_request"]
                                                      - off["db_commands_per_request"], 2)
            summary[f"{kind}_commands_on"] = on["db_commands_by_collection"]
            if none:
                summary[f"{kind}_commands_none"] = none["db_commands_by_collection"]
    pages = {"p50_ms_first": figures("students-pages", "students-first"),
             "p50_ms_near_end": figures("students-pages", "students-near-end")}
    pages["ratio"] = ratio(pages["p50_ms_near_end"], pages["p50_ms_first"])
    board = {"p50_ms_10": figures("dashboard", "dashboard-10"), "p50_ms_1000": figures("dashboard", "dashboard-1000")}
    board["ratio"] = ratio(board["p50_ms_1000"], board["p50_ms_10"])
    errors = {name: found["error"] for name, found in views.items() if isinstance(found, dict) and "error" in found}
    errors.update({f"{scenario}/{name}": "no answer within a round" for scenario, name, found in raw_rows(views)
                   if not found["requests"]})
    if export and "error" in export:
        errors[EXPORT] = export["error"]
    measured = bool(views or export)
    export = export or {}
    return {"summary": summary, "students_pages": pages, "dashboard_1000": board,
            "csv_100k": {key: export.get(key) for key in ("seconds", "rows", "rss_growth_mb",
                                                          "figures_counted_s", "runs", "error")},
            "instructor_errors": errors if measured else None}


def raw_rows(views):
    """(scenario, participant, figures) of every measured participant, for the printed table."""
    for scenario, found in (views or {}).items():
        groups = [(k, v) for k, v in found.items() if k != "log_problems"] if scenario == "figures" else [(None, found)]
        for kind, participants in groups:
            for name, figures in (participants or {}).items():
                if isinstance(figures, dict) and "rps" in figures:
                    yield (f"figures-{kind}-10" if kind else scenario), name, figures

