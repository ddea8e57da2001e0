"""Driving HTTP load: wrk for throughput and latency, a small client for single requests."""
import http.client
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_requests.lua"


def ensure_wrk():
    """The wrk executable, installed with bench/setup.sh (apt-get) if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not on PATH: running bench/setup.sh to install it", flush=True)
    subprocess.run(["bash", str(HERE / "setup.sh")], check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("The benchmark needs wrk (https://github.com/wg/wrk) and it could not be "
                         "installed here. Install it (Debian/Ubuntu: `sudo apt-get install wrk`, "
                         "macOS: `brew install wrk`) and run the benchmark again.")
    return found


def run_wrk(base_url, list_file, *, duration, connections, threads=None, mode="random"):
    """Run wrk with bench/wrk_requests.lua over `list_file`; return the script's JSON summary."""
    threads = threads or min(2, connections)  # two cores: more wrk threads only steal CPU
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
           "-s", str(WRK_SCRIPT), base_url, "--", str(list_file), mode]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk gave no summary (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def http_json(base_url, method, path, token, body=None, timeout=15):
    """One request with a Bearer token; returns (status, parsed JSON or raw text)."""
    status, parsed, _ = http_call(base_url, method, path, token, body, timeout=timeout)
    return status, parsed


def http_call(base_url, method, path, token, body=None, headers=None, timeout=15):
    """One request with a Bearer token (and extra headers); returns (status, parsed JSON or
    raw text, response headers as a dict with lower-case names)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        sent = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=sent)
        response = conn.getresponse()
        raw = response.read().decode("utf-8", "replace")
        received = {name.lower(): value for name, value in response.getheaders()}
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw), received
    except ValueError:
        return response.status, raw, received
