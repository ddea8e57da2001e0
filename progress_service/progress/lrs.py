"""One POST of statements to the LRS: to the configured endpoint only, never redirected, within a deadline.

http.client rather than urllib: urllib follows a 301/302/303 by sending a GET (which an LRS
answers 200, as a query, so a batch was counted delivered and lost) and takes the Basic
credentials along to whatever host the Location names. Here a redirect is an answer like any
other, the credentials go to the endpoint's host and port only, and environment proxies are not
used. The deadline bounds the whole exchange (connect, send, the complete answer), not each
socket read: an LRS that dribbles its answer cannot keep a send alive past the sender's lease.
"""
import base64
import http.client
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

DELIVERED = frozenset({200, 204})
DETAIL_BYTES = 2000


def statements_url(endpoint):
    """POST target: the endpoint's `statements` resource (`.../xAPI/` or `.../xAPI/statements`)."""
    if endpoint.rstrip("/").endswith("/statements"):
        return endpoint.rstrip("/")
    return urljoin(endpoint if endpoint.endswith("/") else endpoint + "/", "statements")


@dataclass(frozen=True)
class Answer:
    """What the LRS said to one POST: `status` None when it said nothing in time (or could not be
    reached); `detail` its words or what went wrong; `location` where a 3xx points."""

    status: int = None
    detail: str = ""
    location: str = None

    @property
    def delivered(self):
        """Whether the LRS itself took the statements (200 or 204 to this very POST)."""
        return self.status in DELIVERED

    @property
    def redirect(self):
        """Whether the LRS points elsewhere (never followed)."""
        return self.status is not None and 300 <= self.status < 400


class Lrs:
    """The configured LRS: where statements go and the credentials that go with them."""

    def __init__(self, settings):
        """From an XapiSettings (endpoint, username, password)."""
        self.url = statements_url(settings.endpoint)
        parts = urlsplit(self.url)  # an http(s) URL with a host: settings.xapi_settings checked it
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
        self._headers = {"Content-Type": "application/json", "X-Experience-API-Version": "1.0.3",
                         "Authorization": f"Basic {token}"}

    def post(self, bodies, deadline):
        """The Answer to POSTing the statements (JSON texts) as one array, within `deadline` seconds."""
        data = ("[" + ",".join(bodies) + "]").encode("utf-8")
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=deadline)
        cut = _Cut(connection, deadline)
        try:
            connection.request("POST", self._path, body=data, headers=self._headers)
            response = connection.getresponse()
            detail = "" if response.status in DELIVERED else response.read(DETAIL_BYTES).decode("utf-8", "replace")
            return Answer(response.status, detail, response.getheader("Location"))
        except (OSError, http.client.HTTPException) as failure:
            if cut.done:
                return Answer(None, f"no complete answer within {deadline:.0f} s")
            return Answer(None, str(failure) or type(failure).__name__)
        finally:
            cut.cancel()
            connection.close()


class _Cut:
    """Shuts the connection's socket down when the deadline passes: a read blocked in it returns."""

    def __init__(self, connection, deadline):
        self.connection = connection
        self.done = False
        self._timer = threading.Timer(deadline, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self):
        """The deadline passed: end the exchange whatever it is doing."""
        self.done = True
        sock = self.connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self):
        """The exchange ended in time."""
        self._timer.cancel()
