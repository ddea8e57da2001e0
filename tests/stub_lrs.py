"""A programmable stand-in LRS for the delivery tests: it answers each request as the test says
(accept, fail, redirect, dribble, hang) and records everything it saw.

Ralph (tests/lrs.py) is the real LRS the other xAPI tests use; this one exists for the answers a
real LRS gives only when something is wrong (a redirect, a 500 for one statement, an answer that
trickles in), and to see what a real one cannot show: every request's headers, how long it
lasted, and how many were in flight at once.
"""
import json
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """How to answer one request: a status, headers, a body; `dribble` seconds between its bytes;
    `hang` seconds to say nothing at all first."""

    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    dribble: float = 0
    hang: float = 0


@dataclass
class Seen:
    """One request as it arrived, and how it ended."""

    method: str
    path: str
    headers: dict
    ids: list
    started: float
    ended: float = None
    status: int = None
    answered: bool = False  # the whole reply was written (the client did not hang up first)

    @property
    def seconds(self):
        """How long the exchange lasted, as the server saw it."""
        return (self.ended or time.monotonic()) - self.started


def accept(seen):
    """200 with the statement ids, as an LRS answers a POST."""
    return Reply(200, body=json.dumps(seen.ids).encode())


class StubLrs:
    """Serves on 127.0.0.1 in a thread; `behave(seen) -> Reply` decides each answer (default: accept)."""

    def __init__(self):
        self.behave = accept
        self.seen = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.endpoint = f"{self.base}/xAPI/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def posts(self):
        """The POSTs seen so far."""
        with self.lock:
            return [seen for seen in self.seen if seen.method == "POST"]

    def delivered(self):
        """Counter of statement ids by how many times the LRS took them (a 2xx it finished writing)."""
        return Counter(i for seen in self.posts() if seen.answered and 200 <= seen.status < 300 for i in seen.ids)

    def close(self):
        """Stop serving (a request still hanging is cut)."""
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802  (a followed redirect arrives as a GET)
                self._serve(b"")

            def do_POST(self):  # noqa: N802
                self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _serve(self, body):
                try:
                    statements = json.loads(body) if body else []
                except ValueError:
                    statements = []
                ids = [s.get("id") for s in (statements if isinstance(statements, list) else [statements])
                       if isinstance(s, dict)]
                seen = Seen(self.command, self.path, dict(self.headers), ids, time.monotonic())
                with lrs.lock:
                    lrs.seen.append(seen)
                    lrs.in_flight += 1
                    lrs.most_in_flight = max(lrs.most_in_flight, lrs.in_flight)
                try:
                    reply = lrs.behave(seen)
                    seen.status = reply.status
                    self._wait(reply.hang)
                    self._write(reply)
                    seen.answered = True
                except OSError:
                    pass  # the client hung up
                finally:
                    seen.ended = time.monotonic()
                    with lrs.lock:
                        lrs.in_flight -= 1
                    self.close_connection = True

            def _write(self, reply):
                head = [f"HTTP/1.1 {reply.status} Stub", f"Content-Length: {len(reply.body)}",
                        "Content-Type: application/json", "Connection: close",
                        *(f"{key}: {value}" for key, value in reply.headers.items())]
                raw = ("\r\n".join(head) + "\r\n\r\n").encode() + reply.body
                if not reply.dribble:
                    self.wfile.write(raw)
                    return
                for index in range(len(raw)):
                    self.wfile.write(raw[index:index + 1])
                    self.wfile.flush()
                    self._wait(reply.dribble)

            def _wait(self, seconds):
                """Say nothing for `seconds`, or until the client hangs up (then raise, as a write would)."""
                if seconds and select.select([self.connection], [], [], seconds)[0]:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        raise ConnectionResetError("the client hung up")
                    time.sleep(seconds)

        return Handler
