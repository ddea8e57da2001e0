"""The results: headline figures (ours relative to the reference), a table, bench/results.json.

    .venv/bin/python -m bench.report [bench/results.json] [--markdown]

prints the table of a stored run again (the targets as a Markdown table with --markdown).
"""
import argparse
import json
import os
from pathlib import Path

from bench import instructor

# bench.run's raw results: the reference's PATCH-200 served in the heartbeats' rounds.
BESIDE_HEARTBEATS = "patch-200-beside-heartbeats"
# The scenarios whose throughput and database CPU are compared with the reference's.
SHARED_SCENARIOS = ("get-10", "patch-10", "get-200", "patch-200", "get-1000", "patch-1000",
                    "complete-reset-1000", "writers-16", "get-enrolled-100k")
# bench.run's raw results: ours serving the player module's heartbeats (played, at) in those rounds.
PLAYED_HEARTBEATS = "heartbeat-played-200"


def _agrees(ours, reference):
    """Whether `ours` holds everything `reference` does: the same values under the reference's
    keys, at any depth (ours may add keys, e.g. `watchedSeconds` in each lecture entry)."""
    if isinstance(reference, dict):
        return isinstance(ours, dict) and all(key in ours and _agrees(ours[key], value)
                                              for key, value in reference.items())
    if isinstance(reference, list):
        return (isinstance(ours, list) and len(ours) == len(reference)
                and all(_agrees(mine, theirs) for mine, theirs in zip(ours, reference)))
    return ours == reference


def compare_answers(answers):
    """Differences between the apps' GET answers on the keys the reference returns (ours may add)."""
    ours, reference = answers["ours"], answers["reference"]
    differences = []
    for key, expected in reference.items():
        for field, value in expected.items():
            if not _agrees(ours[key].get(field), value):
                differences.append({"record": key, "field": field,
                                    "ours": ours[key].get(field), "reference": value})
    return {"records": len(reference), "differences": len(differences), "examples": differences[:5]}


def compare_behaviours(behaviours):
    """The functional checks of both apps side by side; messages only where the contract
    pins them (403 enrollment, the complete/reset messages), not for 400s and 404s."""
    ours, reference = behaviours["ours"], behaviours["reference"]

    def pinned(answer):
        if isinstance(answer, dict) and answer.get("status") in (400, 404):
            return {k: v for k, v in answer.items() if k != "message"}
        return answer

    differences = {name: {"ours": ours.get(name), "reference": answer}
                   for name, answer in reference.items() if pinned(ours.get(name)) != pinned(answer)}
    return {"checks": len(reference), "differences": differences, "ours": ours}


def summarize(args, apps, raw, answers, behaviours=None, extra=None):
    """The keys the project tracks, the configuration, notes on method, and every raw figure."""
    ours, ref = raw["ours"], raw["reference"]
    extra = extra or {}

    def ratio(a, b, digits=2):
        return round(a / b, digits) if a is not None and b else None

    def cpu(side, scenario):
        return side[scenario]["cpu_ms_per_request"] if scenario in side else None

    cpu_ratios = {}
    for size in ("10", "200", "1000"):
        for method in ("GET", "PATCH"):
            scenario = f"{method.lower()}-{size}"
            cpu_ratios[f"{method}{size}"] = ratio(cpu(ours, scenario), cpu(ref, scenario))

    heartbeat = ours.get("heartbeat-200", {})
    heartbeat_key = {
        "cpu_vs_reference_patch": ratio(cpu(ours, "heartbeat-200"), cpu(ref, BESIDE_HEARTBEATS)),
        "db_commands": heartbeat.get("db_commands_per_request"),
        "commands": heartbeat.get("db_commands_by_collection"),
        "reads_record": bool(heartbeat.get("db_commands_by_collection", {}).get("find.courseprogresses")),
        "statuses": heartbeat.get("statuses"),
        "reference_cpu_vs_its_patch": ratio(cpu(ref, "heartbeat-200"), cpu(ref, BESIDE_HEARTBEATS)),
        # As before: over the reference's PATCH of the patch-200 scenario, run minutes earlier.
        "cpu_vs_reference_patch_across_scenarios": ratio(cpu(ours, "heartbeat-200"), cpu(ref, "patch-200")),
        "reference_cpu_vs_its_patch_across_scenarios": ratio(cpu(ref, "heartbeat-200"), cpu(ref, "patch-200")),
        "with_played": played_row(ours),
    }
    pairs = ours.get("complete-reset-1000", {})
    complete_reset = {"cpu_ratio": ratio(cpu(ours, "complete-reset-1000"), cpu(ref, "complete-reset-1000")),
                      "db_commands": pairs.get("db_commands_per_request"),
                      "statuses": pairs.get("statuses")}

    def enrollment(side):
        crowd, few = side.get("get-enrolled-100k"), side.get("get-enrolled-10")
        mixed = side.get("get-enrolled-mixed", {}).get("label_cpu_ms", {})
        if not crowd or not few:
            return {}
        reply = lambda r: r["reply_bytes_per_command"].get("aggregate.courses") \
            or r["reply_bytes_per_command"].get("find.courses")
        return {"cpu_ratio": ratio(mixed.get("100k"), mixed.get("10-heavy")),
                "reply_bytes_ratio": ratio(reply(crowd), reply(few), 3),
                "p50_ratio": ratio(crowd["p50_ms"], few["p50_ms"]),
                "cpu_ms": mixed,
                "cpu_ratio_vs_light_course": ratio(mixed.get("100k"), mixed.get("10")),
                "cpu_ratio_separate_runs": ratio(crowd["cpu_ms_per_request"], few["cpu_ms_per_request"]),
                "reply_bytes": {"100k": reply(crowd), "10": reply(few)}}

    threaded = {}
    if "threaded" in extra:
        servers = extra["threaded"]["servers"]
        bad = lambda r: sum(n for status, n in r["statuses"].items() if int(status) >= 500)
        threaded = {
            "throughput_ratio": ratio(servers["ours-threads"]["rps"], servers["ours-sync"]["rps"]),
            "reference_throughput_ratio": ratio(servers["reference-threads"]["rps"],
                                                servers["reference-sync"]["rps"]),
            "lost_updates": servers["ours-threads"]["lost_updates"] + servers["ours-sync"]["lost_updates"],
            "errors_5xx": bad(servers["ours-threads"]) + bad(servers["ours-sync"]),
            "threads": extra["threaded"]["threads"], "writers": extra["threaded"]["writers"],
            "statuses": {name: r["statuses"] for name, r in servers.items()},
            "socket_errors": {name: r["socket_errors"] for name, r in servers.items() if r["socket_errors"]},
            "reference_lost_updates": servers["reference-threads"]["lost_updates"]
            + servers["reference-sync"]["lost_updates"],
        }

    writers = ours.get(f"writers-{args.writers}")
    large = f"get-{large_label(args)}"
    at_1k = extra.get("latency") or {}

    def p50(side, scenario=None):
        figures = (side or {}).get(scenario) if scenario else side
        return figures["p50_ms"] if figures else None

    get10, patch10 = ours.get("get-10", {}), ours.get("patch-10", {})
    unexpected = {f"{app}/{scenario}": r["unexpected_statuses"] for app, side in raw.items()
                  for scenario, r in side.items() if isinstance(r, dict) and "rps" in r and r.get("unexpected_statuses")}
    for name, r in extra.get("threaded", {}).get("servers", {}).items():
        if r.get("unexpected_statuses"):
            unexpected[f"{name}/threaded"] = r["unexpected_statuses"]
    def side_ratio(scenario, key):
        return ratio(ours[scenario][key], ref[scenario][key]) if scenario in ours and scenario in ref else None

    views = instructor.summarize(extra.get("views"), extra.get("export"))
    results = {
        "apps": apps,
        "xapi": xapi_row(extra.get("xapi")),
        "metrics": metrics_row(extra.get("metrics")),
        "cpu_per_request_ratio": cpu_ratios,
        # Users feel throughput and latency: ours over the reference's in the same run, and
        # the database's share of each request (its CPU per request), ours over the reference's.
        "throughput_ratio": {scenario: side_ratio(scenario, "rps") for scenario in SHARED_SCENARIOS},
        "db_cpu_ratio": {scenario: side_ratio(scenario, "db_cpu_ms_per_request") for scenario in SHARED_SCENARIOS},
        **views,
        "views_checked": extra.get("views_checked"),
        "heartbeat": heartbeat_key,
        "complete_reset_1000": complete_reset,
        "enrollment_100k": {**enrollment(ours), "reference": enrollment(ref)},
        "threaded": threaded,
        "db_commands": {"GET": get10.get("db_commands_per_request"),
                        "PATCH": patch10.get("db_commands_per_request")},
        # Both in the same rounds: the 100k GETs against get-10's on a copy of the 1k data.
        "latency_p50_ratio_100k_vs_1k": ratio(p50(ours, large), p50(at_1k.get("ours"))),
        "latency_p50_ratio_100k_vs_1k_reference": ratio(p50(ref, large), p50(at_1k.get("reference"))),
        # As before: get-10@100k over the first phase's get-10, measured minutes apart.
        "latency_p50_ratio_100k_vs_1k_across_phases": ratio(p50(ours, large), get10.get("p50_ms")),
        "contention": {"lost_updates": writers["lost_updates"],
                       "throughput_ratio": ratio(writers["rps"], patch10.get("rps")),
                       "conditional_misses": writers["conditional_misses"],
                       "write_errors": writers["write_errors"],
                       "statuses": writers["statuses"]} if writers else {},
        "worker_rss_mb": ours["peak_rss_mb"],
        "unexpected_statuses": unexpected,
        "server_log_problems": {name: side["log_problems"] for name, side in
                                {**raw, **extra.get("threaded", {}).get("servers", {})}.items()
                                if side.get("log_problems", {}).get("count")},
        "answers_compared": answers,
        "behaviours_compared": behaviours,
        "max_other_cpu_share": max((r["other_cpu_share"] for app in raw.values()
                                    for r in app.values() if isinstance(r, dict) and "rps" in r), default=None),
        "config": {"duration_s": args.duration, "rounds": args.rounds, "warmup_s": args.warmup,
                   "slow_factor": args.slow_factor,
                   "connections": args.connections, "writers": args.writers,
                   "gunicorn_workers": args.workers,
                   "threaded": {"worker_class": "gthread", "workers": 1, "threads": args.threads,
                                "baseline": "sync, 1 worker", "rounds": max(args.rounds, args.threaded_rounds),
                                "command": f"gunicorn --workers 1 --worker-class gthread --threads "
                                           f"{args.threads} wsgi:app"} if args.threads else None,
                   "large_records": args.large, "only": args.only or None,
                   "database_restarted_before_each_scenario": args.restart_db,
                   "lms_index_precreated": args.lms_index,
                   "cpu_count": os.cpu_count()},
        "notes": {
            "cpu_per_request_ratio": "ours / reference worker CPU ms per request, per scenario "
                                     "(GET or PATCH {isCompleted} at 10, 200, 1,000 lectures)",
            "cpu": "CPU time of the gunicorn workers' serving threads (/proc/<pid>/task/<tid>/schedstat, "
                   "ns: a sync worker's main thread, every thread of a gthread worker) over the requests "
                   "they served; cpu_ms_per_request_all_threads adds a sync worker's background threads "
                   "(pymongo's monitors, the stats flusher), cpu_ms_per_request_ticks is that from "
                   "/proc/<pid>/stat's clock ticks; "
                   "the database's CPU is db_cpu_ms_per_request; other_cpu_share is the machine's busy "
                   "time not spent by the workers, the database or wrk (other jobs: noise)",
            "latency": "wrk percentiles, mean over the rounds; rounds alternate the apps (ABBA)",
            "heartbeat": "PATCH {watchTime} with Prefer: return=minimal at 200 lectures (ours), CPU per "
                         "request over the reference's full PATCH at 200 (patch-200's requests), served "
                         "in the same rounds (ABCD DCBA: ours, the reference's heartbeats, its PATCHes, "
                         "ours with played); "
                         "*_across_scenarios: over the reference's PATCH of the patch-200 scenario; "
                         "db_commands: ours per heartbeat; with_played: ours serving heartbeats that "
                         "carry played and at (the player module's) in the same rounds, over its plain "
                         "heartbeats",
            "complete_reset_1000": "each wrk thread alternates POST complete and POST reset (full "
                                   "answers) on its own 1,000-lecture record, reset before every run",
            "enrollment_100k": "GET of the callers' records on a course with 100,000 enrolled students "
                               "(callers first) over one with 10. cpu_ratio: the serving thread's CPU per "
                               "GET, from one run mixing three kinds (get-enrolled-mixed, label_cpu_ms): "
                               "100k over 10-heavy, the control course with 10 enrolled and a 100,000-id "
                               "list nobody reads, whose query takes the database as long; "
                               "cpu_ratio_vs_light_course: 100k over the plain 10 course (includes the "
                               "cost of waiting for a slower database); cpu_ratio_separate_runs: worker "
                               "CPU of the two separate runs; reply_bytes_ratio: the course query's reply "
                               "(aggregate on courses); p50 of the separate runs; `reference`: the same "
                               "for it",
            "threaded": "16 writers on different records: one gthread process (threads in config) "
                        "over one sync worker, req/s; lost_updates/errors_5xx: ours, both servers",
            "contention": "throughput_ratio = writers' PATCH req/s over patch-10 req/s; "
                          "conditional_misses = conditional writes that matched nothing (retries); "
                          "write_errors = e.g. duplicate keys of concurrent first PATCHes",
            "throughput_ratio": "ours / reference req/s (wrk) per scenario, same run",
            "db_cpu_ratio": "ours / reference database CPU ms per request (the SecantusDB process, "
                            "/proc) per scenario, same run",
            "summary": "p50 of the instructor's summary of a 200-lecture course with 10,000 students "
                       "over one with 100 (every record holding all entries), same rounds; "
                       "patch_*: a flag PATCH (each flips a flag) on a 10-lecture course whose "
                       "figures are kept (on), on its twin whose figures nobody asked for (none), "
                       "and on that twin by a server of ours with the figures' update switched off "
                       "(off, a switch of the benchmark only), same rounds; ratios on over off; "
                       "heartbeat_*: the same for position-only heartbeats",
            "students_pages": "p50 of the student list's page near the end of the 10,000-student "
                              "course by cursor (?after=) over its first page, limit 20, same rounds",
            "dashboard_1000": "p50 of page 1 of the dashboard of a student with 1,000 courses over "
                              "one with 10, same rounds",
            "csv_100k": "GET students.csv of a course with 100,000 students, streamed to the end: "
                        "seconds, rows, and the largest growth of a worker's peak resident memory "
                        "(VmHWM reset before it)",
        },
        "raw": {**raw, **({"threaded": extra["threaded"]["servers"]} if "threaded" in extra else {}),
                **({"at_1k": at_1k} if at_1k else {}),
                **({"xapi": extra["xapi"]} if extra.get("xapi") else {}),
                **({"metrics": extra["metrics"]} if extra.get("metrics") else {}),
                **({"views": extra["views"]} if extra.get("views") else {}),
                **({"export": extra["export"]} if extra.get("export") else {})},
    }
    results["targets"] = targets(results)
    return results


def targets(results):
    """Every target the project tracks: [{key, target, value, met}], `met` None when the
    scenario did not run."""
    rows = []

    def add(key, target, value, test):
        rows.append({"key": key, "target": target, "value": value,
                     "met": None if value is None else bool(test(value))})

    def at_most(key, limit, value):
        add(key, f"<= {limit}", value, lambda v: v <= limit)

    def at_least(key, limit, value):
        add(key, f">= {limit}", value, lambda v: v >= limit)

    def get(path):
        value = results
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    for key, value in (results.get("cpu_per_request_ratio") or {}).items():
        at_most(f"cpu_per_request_ratio.{key}", 1.3, value)
    for scenario in SHARED_SCENARIOS:
        at_least(f"throughput_ratio.{scenario}", 0.85, get(f"throughput_ratio.{scenario}"))
        at_most(f"db_cpu_ratio.{scenario}", 1.15, get(f"db_cpu_ratio.{scenario}"))
    at_most("heartbeat.cpu_vs_reference_patch", 0.65, get("heartbeat.cpu_vs_reference_patch"))
    at_most("heartbeat.db_commands", 3, get("heartbeat.db_commands"))
    at_most("heartbeat.with_played.cpu_ratio", 1.1, get("heartbeat.with_played.cpu_ratio"))
    played = get("heartbeat.with_played.db_commands") or {}
    at_most("heartbeat.with_played.db_commands_ratio", 1.1,
            round(played["played"] / played["plain"], 2) if played.get("plain") else None)
    add("heartbeat.reads_record", "false", get("heartbeat.reads_record") if get("heartbeat.db_commands") else None,
        lambda v: v is False)
    for scenario in ("metrics-get-10", "metrics-patch-10"):
        at_most(f"metrics.{scenario}.cpu_ms_per_request.ratio", 1.05,
                get(f"metrics.{scenario}.cpu_ms_per_request.ratio"))
    at_most("complete_reset_1000.cpu_ratio", 1.5, get("complete_reset_1000.cpu_ratio"))
    at_most("complete_reset_1000.db_commands", 4, get("complete_reset_1000.db_commands"))
    at_most("enrollment_100k.cpu_ratio", 1.1, get("enrollment_100k.cpu_ratio"))
    at_most("enrollment_100k.reply_bytes_ratio", 1.1, get("enrollment_100k.reply_bytes_ratio"))
    at_least("threaded.throughput_ratio", 1.2, get("threaded.throughput_ratio"))
    at_most("threaded.lost_updates", 0, get("threaded.lost_updates"))
    at_most("threaded.errors_5xx", 0, get("threaded.errors_5xx"))
    at_most("db_commands.GET", 3, get("db_commands.GET"))
    at_most("db_commands.PATCH", 4, get("db_commands.PATCH"))
    at_most("latency_p50_ratio_100k_vs_1k", 1.2, get("latency_p50_ratio_100k_vs_1k"))
    at_most("contention.lost_updates", 0, get("contention.lost_updates"))
    at_least("contention.throughput_ratio", 0.5, get("contention.throughput_ratio"))
    at_most("worker_rss_mb", 100, get("worker_rss_mb"))
    at_most("summary.ratio", 1.5, get("summary.ratio"))
    at_most("summary.patch_cpu_ratio", 1.1, get("summary.patch_cpu_ratio"))
    at_most("summary.patch_commands_added", 1, get("summary.patch_commands_added"))
    at_most("summary.heartbeat_commands_added", 0, get("summary.heartbeat_commands_added"))
    at_most("students_pages.ratio", 1.5, get("students_pages.ratio"))
    at_most("csv_100k.rss_growth_mb", 100, get("csv_100k.rss_growth_mb"))
    add("csv_100k.rows", "== 100000", get("csv_100k.rows"), lambda v: v == 100_000)
    at_most("dashboard_1000.ratio", 1.5, get("dashboard_1000.ratio"))
    answers = results.get("answers_compared") or {}
    at_most("answers_compared.differences", 0, answers.get("differences"))
    behaviours = results.get("behaviours_compared") or {}
    at_most("behaviours_compared.differences", 0,
            len(behaviours["differences"]) if "differences" in behaviours else None)
    checked = results.get("views_checked")
    add("views_checked", "all ok", None if checked is None else
        sorted(name for name, found in checked.items() if not found.get("ok")) or "all ok",
        lambda v: v == "all ok")
    errors = results.get("instructor_errors")
    add("instructor_errors", "none", None if errors is None else sorted(errors) or "none", lambda v: v == "none")
    at_most("unexpected_statuses", 0, len(results.get("unexpected_statuses") or {}))
    at_most("server_log_problems", 0, len(results.get("server_log_problems") or {}))
    return rows


def played_row(ours):
    """The player module's heartbeat (played and at: one pipeline update) against the plain one,
    served by ours in the same rounds."""
    plain, played = ours.get("heartbeat-200"), ours.get(PLAYED_HEARTBEATS)
    if not plain or not played:
        return None
    return {
        "cpu_ratio": round(played["cpu_ms_per_request"] / plain["cpu_ms_per_request"], 2),
        "db_commands": {"plain": plain["db_commands_per_request"], "played": played["db_commands_per_request"]},
        "commands": played.get("db_commands_by_collection"),
        "db_cpu_ms": {"plain": plain["db_cpu_ms_per_request"], "played": played["db_cpu_ms_per_request"]},
        "statuses": played.get("statuses"),
    }


def xapi_row(figures):
    """What the xAPI sender adds to a PATCH: ours with it on over ours with it off, one run."""
    if not figures:
        return None
    off, on = figures["ours"], figures["ours-xapi"]

    def pair(key):
        return {"off": off[key], "on": on[key],
                "ratio": round(on[key] / off[key], 2) if off[key] else None}

    return {
        "scenario": "xapi-patch-10: the PATCHes of patch-10, rounds alternating",
        "cpu_ms_per_patch": pair("cpu_ms_per_request"),
        # The relay runs on a thread of each worker: its sends show only with every thread counted.
        "cpu_ms_per_patch_all_threads": pair("cpu_ms_per_request_all_threads"),
        "db_commands_per_patch": pair("db_commands_per_request"),
        "db_commands_on": on["db_commands_by_collection"],
        "rps": pair("rps"),
        "p50_ms": pair("p50_ms"),
        "statements": figures["statements"],
        "statuses": {"off": off["statuses"], "on": on["statuses"]},
    }


def metrics_row(figures):
    """What metrics cost a worker: ours (on, as deployed) over ours with PROGRESS_METRICS=off, per
    scenario, measured in the same rounds; the target is at most 5 % more CPU per request."""
    if not figures:
        return None
    row = {"scenarios": "get-10 and patch-10's requests, rounds alternating on/off"}
    for name, pair in figures.items():
        if name == "log_problems":
            continue
        on, off = pair["on"], pair["off"]
        row[name] = {key: {"off": off[key], "on": on[key],
                           "ratio": round(on[key] / off[key], 3) if off[key] else None}
                     for key in ("cpu_ms_per_request", "rps", "p50_ms")}
    return row


def large_label(args):
    return f"10@{args.large // 1000}k"


def print_report(results):
    """A readable table of every scenario for both apps, then the headline figures."""
    header = (f"{'scenario':19} {'app':17} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10}"
              f" {'db ms/req':>9} {'cmds/req':>8} {'misses':>6} {'other':>5}  statuses")
    print("\n" + header + "\n" + "-" * len(header))
    rows = []
    for scenario, mine in results["raw"]["ours"].items():
        if isinstance(mine, dict) and "rps" in mine:
            rows += [(scenario, app, results["raw"][app][scenario]) for app in ("ours", "reference")
                     if scenario in results["raw"][app]]
    beside = results["raw"].get("reference", {}).get(BESIDE_HEARTBEATS)
    rows += [("heartbeat-200", "reference PATCH", beside)] if beside else []
    rows += [("get-10 on the 1k copy", f"{name} (same rounds)", r)
             for name, r in results["raw"].get("at_1k", {}).items()]
    rows += [("threaded", name, r) for name, r in results["raw"].get("threaded", {}).items()]
    rows += [("xapi-patch-10", name, r) for name, r in (results["raw"].get("xapi") or {}).items()
             if isinstance(r, dict) and "rps" in r]
    rows += [(scenario, f"ours metrics {side}", r) for scenario, pair in (results["raw"].get("metrics") or {}).items()
             if scenario != "log_problems" for side, r in pair.items()]
    rows += list(instructor.raw_rows(results["raw"].get("views")))
    for scenario, app, r in rows:
        print(f"{scenario[:19]:19} {app[:17]:17} {r['rps']:7.1f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f}"
              f" {r['cpu_ms_per_request']:10.2f} {r['db_cpu_ms_per_request']:9.2f}"
              f" {r['db_commands_per_request']:8.2f} {r['conditional_misses']:6}"
              f" {r['other_cpu_share']:5.0%}  {r['statuses']}")
    print("(other: share of the machine's CPU used by processes outside the benchmark)")
    headline = {k: results.get(k) for k in ("cpu_per_request_ratio", "throughput_ratio", "db_cpu_ratio",
                                        "heartbeat", "complete_reset_1000", "xapi", "metrics",
                                        "enrollment_100k", "threaded", "db_commands",
                                        "latency_p50_ratio_100k_vs_1k",
                                        "latency_p50_ratio_100k_vs_1k_reference",
                                        "latency_p50_ratio_100k_vs_1k_across_phases", "contention",
                                        "summary", "students_pages", "dashboard_1000", "csv_100k",
                                        "views_checked", "worker_rss_mb", "unexpected_statuses",
                                        "server_log_problems", "answers_compared")}
    headline["behaviours_compared"] = {k: v for k, v in (results.get("behaviours_compared") or {}).items()
                                       if k != "ours"}
    print("\n" + json.dumps(headline, indent=2, default=str))
    print_targets(results["targets"])


def print_targets(rows):
    """One line per target: its key, the target, the value and whether it is met."""
    mark = {True: "pass", False: "FAIL", None: "-"}
    print(f"\n{'target':42} {'wanted':>10} {'value':>12}  met")
    for row in rows:
        value = row["value"]
        shown = "not run" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))
        print(f"{row['key']:42} {row['target']:>10} {shown[:40]:>12}  {mark[row['met']]}")
    failed = sum(1 for row in rows if row["met"] is False)
    skipped = sum(1 for row in rows if row["met"] is None)
    print(f"{len(rows) - failed - skipped} met, {failed} not met, {skipped} not run")


def markdown_targets(rows):
    """The targets as a Markdown table (for docs/performance.md)."""
    mark = {True: "yes", False: "**no**", None: "not run"}
    lines = ["| key | target | value | met |", "|---|---|---|---|"]
    for row in rows:
        value = row["value"]
        shown = "" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))
        lines.append(f"| `{row['key']}` | {row['target'].replace('<=', '≤').replace('>=', '≥')} | {shown} "
                     f"| {mark[row['met']]} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print the table of a stored benchmark run.")
    parser.add_argument("results", nargs="?", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--markdown", action="store_true", help="only the targets, as a Markdown table")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    results.setdefault("targets", targets(results))
    if args.markdown:
        print(markdown_targets(results["targets"]))
    else:
        print_report(results)


def write_json(path, results):
    """Write atomically: an interrupted run leaves the previous results intact."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
