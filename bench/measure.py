"""One scenario measured on both apps: wrk runs between snapshots of CPU and command counts."""
import json
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench import procs
from bench.load import run_wrk

FLUSH_WAIT = 0.8  # > 3 flushes of the workers' stats files (gunicorn_bench.FLUSH_INTERVAL)
NOISY_SHARE = 0.10  # other processes used more than this share of the machine: say so


@dataclass
class Scenario:
    """One load: a request list, the method the server-side counts are read for, a concurrency.

    `mode`: how wrk_requests.lua walks the list ("random", "writer", "pair"). `prepare`, when
    given, is called with the server before every wrk run of the scenario on it (warm-up
    included), before the CPU snapshot, to put the database back in the state each run starts
    from. `duration_factor` lengthens the rounds of a scenario whose requests are few per
    second; `rounds`, when not 0, replaces --rounds. `expected` is the status every answer
    should have (anything else is reported). `list_file` and `expected` may be a dict by
    server name: then one scenario can put different requests side by side in its rounds.
    """
    name: str
    method: str
    list_file: object  # a Path, or {server name: Path}
    connections: int
    mode: str = "random"
    warmup: bool = True
    prepare: Callable = None
    duration_factor: float = 1.0
    expected: object = 200  # a status, or {server name: status}
    rounds: int = 0

    def for_server(self, field, name):
        """The scenario's `list_file` or `expected` for the server called `name`."""
        value = getattr(self, field)
        return value[name] if isinstance(value, dict) else value


@dataclass
class Server:
    """A running gunicorn serving one app."""
    name: str
    url: str
    proc: object
    stats_dir: Path
    log: Path
    peak_rss_mb: float = 0.0
    threads: int = 0  # gthread workers' threads; 0: sync workers


def compare(servers, scenario, db_pid, args, log):
    """Both apps on one scenario, rounds in ABBA order so drift (of the machine, of the
    database as writes pile up) weighs on both alike; returns {app: figures}. `db_pid`: a
    function giving the database's pid (a prepare step may restart it)."""
    names = list(servers)
    if scenario.warmup and args.warmup:
        for name in names:
            _prepare(scenario, servers[name])
            _wrk(servers[name], scenario, args.warmup)
        time.sleep(FLUSH_WAIT)  # the warm-up's last requests must not land in the first round
    db_idle = idle_share(db_pid())
    runs = {name: [] for name in names}
    duration = max(1, round(args.duration * scenario.duration_factor))
    for round_number in range(scenario.rounds or args.rounds):
        for name in names if round_number % 2 == 0 else names[::-1]:
            _prepare(scenario, servers[name])
            runs[name].append(measure_once(servers[name], scenario, db_pid(), duration))
    results = {}
    for name in names:
        results[name] = per_request(scenario, combine(runs[name]), scenario.for_server("expected", name))
        results[name]["db_idle_cpu_share"] = db_idle
        log_result(log, name, scenario, results[name])
    return results


def idle_share(pid, seconds=1.0):
    """The share of one core a process uses while nothing is asked of it (the database's own
    background work, which slows what it serves)."""
    before = procs.cpu_seconds(pid)
    time.sleep(seconds)
    after = procs.cpu_seconds(pid)
    return None if before is None or after is None else round((after - before) / seconds, 2)


def _prepare(scenario, server):
    if scenario.prepare is not None:
        scenario.prepare(server)


def measure_once(server, scenario, db_pid, duration):
    """One measured wrk run; returns totals (summable over rounds)."""
    before = snapshot(server, db_pid)
    out = _wrk(server, scenario, duration)
    wait_idle(server)  # requests in flight when wrk stopped finish and get counted
    after = snapshot(server, db_pid)
    server.peak_rss_mb = max([server.peak_rss_mb] + [procs.peak_rss_mb(p) or 0 for p in after["cpu"]])
    return totals(scenario, before, after, out, main_thread_only=not server.threads)


def wait_idle(server, timeout=120):
    """Wait until every request the workers started has been answered, as their stats files
    say twice in a row, FLUSH_WAIT apart. When wrk stops, requests are still being served
    (and more wait in the listen queue): at 1,000 lectures or on the 100,000-student course
    one takes longer than FLUSH_WAIT, and its CPU and commands must not be cut off from the
    request the workers already counted."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        time.sleep(FLUSH_WAIT)
        counts = read_counts(server.stats_dir)
        started = sum(c["requests"] for c in counts.values())
        answered = sum(v for c in counts.values() for k, v in c.items() if k.startswith("status:"))
        if started == answered and started == previous:
            return
        if time.monotonic() > deadline:  # a worker killed mid-request never answers it
            print(f"{server.name}: {started - answered} requests still unanswered after {timeout}s",
                  flush=True)
            return
        previous = started if started == answered else None


def _wrk(server, scenario, duration):
    # writer and pair: each thread owns its own lines, over one connection
    threads = scenario.connections if scenario.mode in ("writer", "pair") else None
    # A dict of list files: each server has its own (e.g. its own writers' records).
    return run_wrk(server.url, scenario.for_server("list_file", server.name), duration=duration,
                   mode=scenario.mode, connections=scenario.connections, threads=threads)


def snapshot(server, db_pid):
    """CPU seconds of each worker, the database, this script's children (wrk) and the whole
    machine, and the workers' command counts."""
    workers = procs.children_of(server.proc.pid)
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has been waited for
    return {"cpu": {pid: procs.cpu_seconds(pid) for pid in workers},
            "threads": {pid: procs.thread_cpu_seconds(pid) for pid in workers},
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


def totals(scenario, before, after, out, main_thread_only=True):
    """What one run cost, as sums: the server-side counts for the scenario's method, CPU seconds.

    Worker CPU is that of the threads that serve requests: a sync worker's main thread (it
    parses, runs the app, talks to the database and writes the answer), or every thread of a
    gthread worker. A sync worker's other threads (pymongo's monitors, the stats flusher) spend
    about 1 ms a second whatever the load: nothing at 300 requests a second, a third of a GET
    at 2 a second; `worker_cpu_all_threads` includes them.
    """
    counts = after["counts"].get(scenario.method, Counter())
    counts.subtract(before["counts"].get(scenario.method, Counter()))
    ticks = sum(after["cpu"][pid] - before["cpu"].get(pid, 0) for pid in after["cpu"]
                if after["cpu"][pid] is not None)
    workers = every_thread = 0.0
    for pid, now in after["threads"].items():
        then = before["threads"].get(pid)
        if now is None or (then is None and pid in before["threads"]):
            workers = every_thread = ticks  # no schedstat here: clock ticks it is
            break
        then = then or {}
        every_thread += sum(seconds - then.get(tid, 0.0) for tid, seconds in now.items())
        workers += now.get(pid, 0.0) - then.get(pid, 0.0) if main_thread_only else \
            sum(seconds - then.get(tid, 0.0) for tid, seconds in now.items())
    database = after["db_cpu"] - before["db_cpu"]
    harness = after["harness"] - before["harness"]
    machine = after["machine"] - before["machine"]
    return {
        "seconds": out["duration_us"] / 1e6, "requests": out["requests"],
        "counts": counts, "statuses": Counter(out["statuses"]),
        "socket_errors": Counter({k: v for k, v in out["errors"].items() if k != "status" and v}),
        "worker_cpu": workers, "worker_cpu_all_threads": every_thread, "worker_cpu_ticks": ticks,
        "db_cpu": database,
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
            elif key == "wrk_threads":
                combined[key] = value  # the last round's: what the database shows afterwards
            else:
                combined[key] = combined[key] + value
    return combined


def per_request(scenario, total, expected=200):
    """The figures reported: per second, per request, latency in ms (mean over the rounds);
    answers whose status is not `expected` are listed."""
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
        "cpu_ms_per_request_all_threads": round(total["worker_cpu_all_threads"] / served * 1000, 3),
        "request_cpu_ms": round(counts["request_cpu_us"] / served / 1000, 3),
        "label_cpu_ms": {k[13:]: round(v / counts[f"label_requests:{k[13:]}"] / 1000, 3)
                         for k, v in sorted(counts.items())
                         if k.startswith("label_cpu_us:") and counts[f"label_requests:{k[13:]}"]},
        "label_requests": {k[15:]: v for k, v in sorted(counts.items()) if k.startswith("label_requests:")},
        "cpu_ms_per_request_ticks": round(total["worker_cpu_ticks"] / served * 1000, 3),
        "db_cpu_ms_per_request": round(total["db_cpu"] / served * 1000, 3),
        "db_commands_per_request": round(counts["commands"] / served, 2),
        "db_commands_by_name": {k[4:]: round(v / served, 2) for k, v in sorted(counts.items())
                                if k.startswith("cmd:") and v},
        "db_commands_by_collection": {k[5:]: round(v / served, 2) for k, v in sorted(counts.items())
                                      if k.startswith("coll:") and v},
        "db_wait_ms_per_command": {k[8:]: round(v / counts[f"coll:{k[8:]}"] / 1000, 2)
                                   for k, v in sorted(counts.items())
                                   if k.startswith("wait_us:") and counts[f"coll:{k[8:]}"] > 0},
        "reply_bytes_per_command": {k[6:]: round(v / counts[f"replies:{k[6:]}"], 1)
                                    for k, v in sorted(counts.items())
                                    if k.startswith("bytes:") and counts[f"replies:{k[6:]}"] > 0},
        "server_statuses": {k[7:]: v for k, v in sorted(counts.items()) if k.startswith("status:") and v},
        "unexpected_statuses": {status: n for status, n in total["statuses"].items()
                                if str(status) != str(expected) and n},
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
