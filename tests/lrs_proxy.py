"""A recording proxy in front of the LRS: forwards, refuses, rejects or holds, as a test asks.

The service's relay is pointed at it; it forwards to the real LRS (Ralph) and records what
arrived, in order, so a test can check the order of delivery and simulate an LRS that is
down (the connection is dropped), refuses (an HTTP error) or hangs mid-delivery.
"""
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin


class LrsProxy:
    """An HTTP proxy for `target` (an xAPI endpoint such as http://h:p/xAPI/)."""

    def __init__(self, target):
        """Serve on a free port, forwarding."""
        self.target = target
        self.mode = "forward"
        self.reject_status = 400
        self.received = []      # each batch the LRS accepted (2xx), as parsed statements
        self.raw_bodies = []    # the bodies of those batches, as bytes
        self.attempts = 0
        self.release = threading.Event()
        self.holding = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                proxy.attempts += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode == "refuse":
                    self.close_connection = True
                    self.connection.close()
                    return
                if proxy.mode == "reject":
                    self._answer(proxy.reject_status, b'{"detail": "rejected by the test proxy"}')
                    return
                status, answer = proxy.forward_to_lrs(self.path, body, self.headers)
                if 200 <= status < 300:
                    proxy.received.append(json.loads(body))
                    proxy.raw_bodies.append(body)
                if proxy.mode == "hold":
                    proxy.holding.set()
                    proxy.release.wait(60)
                self._answer(status, answer)

            def _answer(self, status, answer):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/xAPI/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forward_to_lrs(self, path, body, headers):
        """(status, body) of the same POST sent to the real LRS."""
        url = urljoin(self.target, path.split("/xAPI/", 1)[-1])
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type",
                                                                 "x-experience-api-version")}
        request = urllib.request.Request(url, data=body, headers=keep, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def forward(self):
        """Pass everything to the LRS."""
        self.mode = "forward"

    def refuse(self):
        """Drop every request unanswered (the LRS is down)."""
        self.mode = "refuse"

    def reject(self, status):
        """Answer every request with an HTTP error."""
        self.reject_status, self.mode = status, "reject"

    def hold(self):
        """Forward, then keep the answer back until release() (to kill the sender mid-delivery)."""
        self.release.clear()
        self.holding.clear()
        self.mode = "hold"

    def close(self):
        """Stop serving."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
