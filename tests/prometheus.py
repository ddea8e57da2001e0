"""A real Prometheus (Debian's 2.42 binary) scraping a test's server, and its HTTP query API.

Never the packaged service: the binary on a free port, with a temporary config and storage
directory, scraping every second; stopped (its process group) when the test ends.
"""
import re
import shutil
import signal
import subprocess
import time

import requests

from .support import free_port

BINARY = "/usr/bin/prometheus"
HEX_ID = re.compile(r"[0-9a-fA-F]{24}")
CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: progress
    static_configs:
      - targets: ["{target}"]
"""


def assert_no_ids_in(label_values, *ids):
    """No label value looks like an id (24 hex digits) or contains one of `ids`."""
    assert label_values, "there are label values to check"
    for value in label_values:
        assert not HEX_ID.search(value), value
        assert not any(str(known) in value for known in ids), value


def binary():
    """The Prometheus binary; fails with the fix when it is missing."""
    found = shutil.which("prometheus") or BINARY
    if not shutil.which(found):
        raise RuntimeError("prometheus is missing: run scripts/system_deps.sh (`make test` does)")
    return found


class Prometheus:
    """Prometheus scraping `target` ("host:port", path /metrics) every second."""

    def __init__(self, home, target):
        """Its files under `home`; nothing runs until start()."""
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)
        (home / "prometheus.yml").write_text(CONFIG.format(target=target))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "prometheus.log"
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self, timeout=30):
        """Start it and wait until it is ready."""
        command = [binary(), f"--config.file={self.home / 'prometheus.yml'}",
                   f"--storage.tsdb.path={self.home / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("prometheus did not get ready")

    def stop(self):
        """Stop it (its process group)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, promql):
        """An instant query: {frozenset(labels.items()): value} of the vector it answers."""
        answer = requests.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10).json()
        assert answer["status"] == "success", answer
        return {frozenset(row["metric"].items()): float(row["value"][1]) for row in answer["data"]["result"]}

    def value(self, promql):
        """The single value an instant query answers, or None when it answers nothing."""
        found = self.query(promql)
        assert len(found) <= 1, found
        return next(iter(found.values()), None)

    def wait_for_value(self, promql, expected, timeout=20):
        """Poll until the query answers `expected`; returns the last value seen."""
        deadline = time.monotonic() + timeout
        seen = self.value(promql)
        while seen != expected and time.monotonic() < deadline:
            time.sleep(0.25)
            seen = self.value(promql)
        return seen
