"""One scenario measured on both apps: wrk runs between snapshots of CPU and command counts."""
import json
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.load import run_wrk

FLUSH_WAIT = 0.8  # > 3 flushes of the workers' stats files (gunicorn_bench.FLUSH_INTERVAL)
NOISY_SHARE = 0.10  # other processes used more than this share of the machine: say so


@dataclass
class Scenario:
    """One load: a request list, the method the server-side counts are read for, a concurrency."""
    name: str
    method: str
    list_file: Path
    connections: int
    mode: str = "random"
    warmup: bool = True


@dataclass
class Server:
    """A running gunicorn serving one app."""
    name: str
    url: str
    proc: object
    stats_dir: Path
    log: Path
    peak_rss_mb: float = 0.0


def compare(servers, scenario, db_pid, args, log):
    """Both apps on one scenario, rounds in ABBA order so drift (of the machine, of the
    database as writes pile up) weighs on both alike; returns {app: figures}."""
    names = list(servers)
    if scenario.warmup and args.warmup:
        for name in names:
            _wrk(servers[name], scenario, args.warmup)
        time.sleep(FLUSH_WAIT)  # the warm-up's last requests must not land in the first round
    runs = {name: [] for name in names}
    for round_number in range(args.rounds):
        for name in names if round_number % 2 == 0 else names[::-1]:
            runs[name].append(measure_once(servers[name], scenario, db_pid, args.duration))
    results = {}
    for name in names:
        results[name] = per_request(scenario, combine(runs[name]))
        log_result(log, name, scenario, results[name])
    return results


def measure_once(server, scenario, db_pid, duration):
    """One measured wrk run; returns totals (summable over rounds)."""
    before = snapshot(server, db_pid)
    out = _wrk(server, scenario, duration)
    time.sleep(FLUSH_WAIT)  # requests in flight when wrk stopped finish and get counted
    after = snapshot(server, db_pid)
    server.peak_rss_mb = max([server.peak_rss_mb] + [procs.peak_rss_mb(p) or 0 for p in after["cpu"]])
    return totals(scenario, before, after, out)


def _wrk(server, scenario, duration):
    threads = scenario.connections if scenario.mode == "writer" else None  # writer: one per thread
    return run_wrk(server.url, scenario.list_file, duration=duration, mode=scenario.mode,
                   connections=scenario.connections, threads=threads)


def snapshot(server, db_pid):
    """CPU seconds of each worker, the database, this script's children (wrk) and the whole
    machine, and the workers' command counts."""
    workers = procs.children_of(server.proc.pid)
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has been waited for
    return {"cpu": {pid: procs.cpu_seconds(pid) for pid in workers},
            "db_cpu": procs.cpu_seconds(db_pid), "machine": procs.machine_busy_seconds(),
            "harness": own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime,
            "counts": read_counts(server.stats_dir), "wall": time.monotonic()}


def read_counts(stats_dir):
    """The workers' stats files summed: {method: Counter}."""
    summed = {}
    for path in stats_dir.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):  # replaced atomically, but a worker may exit mid-read
            continue
        for method, counts in data.items():
            summed.setdefault(method, Counter()).update(counts)
    return summed


def totals(scenario, before, after, out):
    """What one run cost, as sums: the server-side counts for the scenario's method, CPU seconds."""
    counts = after["counts"].get(scenario.method, Counter())
    counts.subtract(before["counts"].get(scenario.method, Counter()))
    workers = sum(after["cpu"][pid] - before["cpu"].get(pid, 0) for pid in after["cpu"]
                  if after["cpu"][pid] is not None)
    database = after["db_cpu"] - before["db_cpu"]
    harness = after["harness"] - before["harness"]
    machine = after["machine"] - before["machine"]
    return {
        "seconds": out["duration_us"] / 1e6, "requests": out["requests"],
        "counts": counts, "statuses": Counter(out["statuses"]),
        "socket_errors": Counter({k: v for k, v in out["errors"].items() if k != "status" and v}),
        "worker_cpu": workers, "db_cpu": database,
        "other_cpu": max(0.0, machine - workers - database - harness),
        "wall": after["wall"] - before["wall"],
        "latency": [out["latency_us"]],
        "worker_restarted": set(before["cpu"]) != set(after["cpu"]),
        "wrk_threads": out["threads"],
    }


def combine(runs):
    """Totals of several rounds added up (latency percentiles are kept per round)."""
    combined = dict(runs[0])
    for run in runs[1:]:
        for key, value in run.items():
            if key == "worker_restarted":
                combined[key] = combined[key] or value
            elif key != "wrk_threads":
                combined[key] = combined[key] + value
    return combined


def per_request(scenario, total):
    """The figures reported: per second, per request, latency in ms (mean over the rounds)."""
    counts = total["counts"]
    served = counts["requests"] or 1  # the server's count includes requests cut off at the end
    rounds = len(total["latency"])
    latency = {k: sum(r[k] for r in total["latency"]) / rounds / 1000
               for k in ("p50", "p90", "p99", "mean")}
    cores = os.cpu_count() or 1
    result = {
        "rps": round(total["requests"] / total["seconds"], 1), "requests": total["requests"],
        "server_requests": counts["requests"], "rounds": rounds,
        **{f"{k}_ms": round(v, 2) for k, v in latency.items()},
        "statuses": dict(total["statuses"]), "socket_errors": dict(total["socket_errors"]),
        "cpu_ms_per_request": round(total["worker_cpu"] / served * 1000, 3),
        "db_cpu_ms_per_request": round(total["db_cpu"] / served * 1000, 3),
        "db_commands_per_request": round(counts["commands"] / served, 2),
        "db_commands_by_name": {k[4:]: round(v / served, 2) for k, v in sorted(counts.items())
                                if k.startswith("cmd:") and v},
        "conditional_misses": counts["misses"], "write_errors": counts["write_errors"],
        "other_cpu_share": round(total["other_cpu"] / (total["wall"] * cores), 3),
        "worker_restarted": total["worker_restarted"],
    }
    if scenario.mode == "writer":
        result["wrk_threads"] = total["wrk_threads"]
    return result


def log_result(log, name, scenario, r):
    noisy = f"  NOISY: other processes took {r['other_cpu_share']:.0%} of the machine" \
        if r["other_cpu_share"] > NOISY_SHARE else ""
    log(f"{name:9} {scenario.name:14} {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms"
        f"  p99 {r['p99_ms']:6.1f} ms  cpu {r['cpu_ms_per_request']:5.2f} ms/req"
        f"  {r['db_commands_per_request']:.2f} db cmds/req  {r['statuses']}{noisy}")
