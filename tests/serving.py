"""The service as operators run it, for the fault tests: gunicorn in a subprocess, and /proc."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .support import PREFIX, SECRET, Lms, free_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "scripts" / "gunicorn.conf.py"


def children(pid):
    """Pids whose parent is `pid` (gunicorn's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def _socket_inodes(pid):
    """Inodes of the sockets process `pid` holds open."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _tcp_table(pid):
    """(local port, remote port, state, inode) of every TCP socket in the process's namespace."""
    rows = []
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            parts = line.split()
            local, remote, state, inode = parts[1], parts[2], parts[3], int(parts[9])
            rows.append((int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), state, inode))
    return rows


ESTABLISHED = "01"


def connections_to(pid, port):
    """Established TCP connections of process `pid` to a remote `port` (e.g. the database)."""
    mine = _socket_inodes(pid)
    return [row for row in _tcp_table(pid)
            if row[3] in mine and row[1] == port and row[2] == ESTABLISHED]


def serving_worker(master, server_port, client_port):
    """The worker of `master` that holds the server side of the client's connection."""
    inodes = {row[3] for row in _tcp_table(master)
              if row[0] == server_port and row[1] == client_port and row[2] == ESTABLISHED}
    for worker in children(master):
        if _socket_inodes(worker) & inodes:
            return worker
    return None


class Gunicorn:
    """`gunicorn -c scripts/gunicorn.conf.py wsgi:app` on a free port, stdout/stderr in files."""

    def __init__(self, tmp_path, mongodb_uri, workers=2, preload=False, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = tmp_path / f"gunicorn-{self.port}.out"
        self.stderr_path = tmp_path / f"gunicorn-{self.port}.err"
        self.workers = workers
        command = [str(Path(sys.executable).with_name("gunicorn")), "-c", str(GUNICORN_CONF),
                   "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)]
        if preload:
            command.append("--preload")
        self.command = command + ["wsgi:app"]
        self.env = {**os.environ, "MONGODB_URI": mongodb_uri, "JWT_SECRET_KEY": SECRET,
                    "PROGRESS_ENV": "production", **(env or {})}
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self, timeout=30):
        """Start gunicorn and wait until every worker is up and /healthz answers."""
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.stderr_path.read_text()}{self.stdout_path.read_text()}")
            try:
                if (len(self.worker_pids()) == self.workers
                        and requests.get(self.url + "/healthz", timeout=2).status_code == 200):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def worker_pids(self):
        """The current workers."""
        return children(self.process.pid)

    def signal(self, signum):
        """Send a signal to the master."""
        os.kill(self.process.pid, signum)

    def stop(self, timeout=30):
        """SIGTERM (graceful), then SIGKILL of the whole group if it lingers; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def log_lines(self):
        """Every JSON line gunicorn and the app wrote to stdout."""
        return [json.loads(line) for line in self.stdout_path.read_text().splitlines() if line.strip()]

    def stderr(self):
        """What went to stderr (nothing is expected there)."""
        return self.stderr_path.read_text()

    def call(self, method, path, token=None, body=None, timeout=15, **kwargs):
        """One HTTP request to the server; `path` is under the API prefix unless it starts with /."""
        url = self.url + (path if path.startswith("/") else f"{PREFIX}/{path}")
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, url, json=body, headers=headers, timeout=timeout, **kwargs)


class SlowRequest:
    """A PATCH whose body is sent in two halves: a worker is busy with it in between."""

    def __init__(self, server, path, token, body):
        raw = json.dumps(body).encode()
        self.server = server
        self.half = len(raw) // 2
        self.body = raw
        self.head = (f"PATCH {PREFIX}/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n").encode()
        self.sock = None

    def begin(self, settle=0.5):
        """Send the head and half the body; returns the pid of the worker now waiting for the rest."""
        self.sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=15)
        self.sock.sendall(self.head + self.body[:self.half])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            worker = serving_worker(self.server.process.pid, self.server.port, self.sock.getsockname()[1])
            if worker:
                time.sleep(settle)  # let the worker get past auth into reading the body
                return worker
            time.sleep(0.05)
        raise RuntimeError("no worker picked up the request")

    def finish(self):
        """Send the rest of the body; returns (status, parsed JSON body), or raises on a dead worker."""
        try:
            self.sock.sendall(self.body[self.half:])
            data = b""
            while chunk := self.sock.recv(65536):
                data += chunk
        finally:
            self.sock.close()
        if not data:
            raise ConnectionError("the connection closed without a response")
        head, _, payload = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(payload)
