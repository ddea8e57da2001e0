"""The results: headline figures (ours relative to the reference), a table, bench/results.json."""
import json
import os


def compare_answers(answers):
    """Differences between the apps' GET answers on the keys the reference returns (ours may add)."""
    ours, reference = answers["ours"], answers["reference"]
    differences = []
    for key, expected in reference.items():
        for field, value in expected.items():
            if ours[key].get(field) != value:
                differences.append({"record": key, "field": field,
                                    "ours": ours[key].get(field), "reference": value})
    return {"records": len(reference), "differences": len(differences), "examples": differences[:5]}


def summarize(args, apps, raw, answers):
    """The keys the project tracks, the configuration, notes on method, and every raw figure."""
    ours, ref = raw["ours"], raw["reference"]

    def cpu_ratio(label):
        pair = lambda r: r[f"get-{label}"]["cpu_ms_per_request"] + r[f"patch-{label}"]["cpu_ms_per_request"]
        return round(pair(ours) / pair(ref), 2)

    writers = ours[f"writers-{args.writers}"]
    large = f"get-{large_label(args)}"
    return {
        "apps": apps,
        "cpu_per_request_ratio": {"10": cpu_ratio("10"), "200": cpu_ratio("200")},
        "db_commands": {"GET": ours["get-10"]["db_commands_per_request"],
                        "PATCH": ours["patch-10"]["db_commands_per_request"]},
        "latency_p50_ratio_100k_vs_1k":
            round(ours[large]["p50_ms"] / ours["get-10"]["p50_ms"], 2) if large in ours else None,
        "contention": {"lost_updates": writers["lost_updates"],
                       "throughput_ratio": round(writers["rps"] / ours["patch-10"]["rps"], 2),
                       "conditional_misses": writers["conditional_misses"],
                       "write_errors": writers["write_errors"],
                       "statuses": writers["statuses"]},
        "worker_rss_mb": ours["peak_rss_mb"],
        "answers_compared": answers,
        "max_other_cpu_share": max(r["other_cpu_share"] for app in raw.values()
                                   for r in app.values() if isinstance(r, dict)),
        "config": {"duration_s": args.duration, "rounds": args.rounds, "warmup_s": args.warmup,
                   "connections": args.connections, "writers": args.writers,
                   "gunicorn_workers": args.workers, "large_records": args.large,
                   "lms_index_precreated": args.lms_index,
                   "cpu_count": os.cpu_count()},
        "notes": {
            "cpu_per_request_ratio": "ours / reference of (GET + PATCH) worker CPU ms per request",
            "cpu": "utime+stime of the gunicorn workers over the requests they served; the "
                   "database's CPU is db_cpu_ms_per_request; other_cpu_share is the machine's busy "
                   "time not spent by the workers, the database or wrk (other jobs: noise)",
            "latency": "wrk percentiles, mean over the rounds; rounds alternate the apps (ABBA)",
            "contention": "throughput_ratio = writers' PATCH req/s over patch-10 req/s; "
                          "conditional_misses = conditional writes that matched nothing (retries); "
                          "write_errors = e.g. duplicate keys of concurrent first PATCHes",
        },
        "raw": raw,
    }


def large_label(args):
    return f"10@{args.large // 1000}k"


def print_report(results):
    """A readable table of every scenario for both apps, then the headline figures."""
    header = (f"{'scenario':14} {'app':10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10}"
              f" {'db ms/req':>9} {'cmds/req':>8} {'misses':>6} {'other':>5}  statuses")
    print("\n" + header + "\n" + "-" * len(header))
    for scenario, mine in results["raw"]["ours"].items():
        if not isinstance(mine, dict):
            continue
        for app in ("ours", "reference"):
            r = results["raw"][app][scenario]
            print(f"{scenario:14} {app:10} {r['rps']:7.1f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f}"
                  f" {r['cpu_ms_per_request']:10.2f} {r['db_cpu_ms_per_request']:9.2f}"
                  f" {r['db_commands_per_request']:8.2f} {r['conditional_misses']:6}"
                  f" {r['other_cpu_share']:5.0%}  {r['statuses']}")
    print("(other: share of the machine's CPU used by processes outside the benchmark)")
    headline = {k: results[k] for k in ("cpu_per_request_ratio", "db_commands",
                                        "latency_p50_ratio_100k_vs_1k", "contention",
                                        "worker_rss_mb", "answers_compared")}
    print("\n" + json.dumps(headline, indent=2))


def write_json(path, results):
    """Write atomically: an interrupted run leaves the previous results intact."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)
