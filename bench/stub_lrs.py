"""A stand-in Learning Record Store for the xAPI row of the benchmark: it takes every POST of
statements, answers 200 with their ids as an LRS does, and counts them.

The benchmark measures what xAPI adds to OUR worker (the outbox write in the same
transaction, the relay thread's sends), not an LRS: the tests use a real one (Ralph).
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubLrs:
    """Serves /xAPI/statements on 127.0.0.1 on a thread; `received` counts statement ids."""

    def __init__(self):
        self.ids = set()
        self.posts = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/xAPI/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self):
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                statements = json.loads(body or b"[]")
                statements = statements if isinstance(statements, list) else [statements]
                ids = [statement.get("id") for statement in statements]
                with lrs.lock:
                    lrs.posts += 1
                    lrs.ids.update(ids)
                answer = json.dumps(ids).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        return Handler

    @property
    def received(self):
        with self.lock:
            return len(self.ids)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
