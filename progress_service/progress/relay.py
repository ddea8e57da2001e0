"""The relay: sends the outbox's statements to the LRS, oldest first, one sender at a time.

A daemon thread in each worker process, started after the fork (gunicorn's post_worker_init,
or the mount's first request); only the worker holding the lease sends, the others stand by
and take over when a lease runs out (a worker killed mid-batch). Requests never wait for the
LRS: they only write to the outbox. While the LRS is down or slow the relay backs off; a
statement the LRS refuses for good is parked so the record's later statements still flow.
"""
import base64
import logging
import os
import random
import socket
import threading
import uuid
from urllib import error as urlerror, request as urlrequest
from urllib.parse import urljoin

log = logging.getLogger("progress_service")

BATCH = 50
SEND_TIMEOUT = 10       # seconds a hung LRS holds the relay (never a request)
LEASE_SECONDS = 15      # renewed before every POST, and longer than one (SEND_TIMEOUT)
IDLE_SECONDS = 0.5      # nothing due: look again soon (statements should arrive quickly)
STANDBY_SECONDS = 5     # another worker sends: check whether it still does
BACKOFF_SECONDS = (1, 60)
# Answers that say "not now" rather than "never this statement": the LRS is overloaded,
# moving, or the service's credentials or endpoint are wrong (an operator must act).
TRANSIENT = frozenset({401, 403, 404, 405, 407, 408, 425, 429})


def statements_url(endpoint):
    """POST target: the endpoint's `statements` resource (`.../xAPI/` or `.../xAPI/statements`)."""
    if endpoint.rstrip("/").endswith("/statements"):
        return endpoint.rstrip("/")
    return urljoin(endpoint if endpoint.endswith("/") else endpoint + "/", "statements")


class Relay:
    """One mount's sender, per process."""

    def __init__(self, outbox, settings):
        """Deliver `outbox` to the LRS of `settings` (an XapiSettings)."""
        self.outbox = outbox
        self.url = statements_url(settings.endpoint)
        token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
        self.headers = {"Content-Type": "application/json", "X-Experience-API-Version": "1.0.3",
                        "Authorization": f"Basic {token}"}
        self._lock = threading.Lock()
        self._pid = None
        self._thread = None
        self._stopping = threading.Event()
        self.failures = 0
        self.owner = None

    # --- the thread ---------------------------------------------------------------------------

    def ensure_started(self):
        """Start this process's thread once (a forked worker starts its own; cheap to call again)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self._stopping = threading.Event()
            self._thread = threading.Thread(target=self.run, name="progress-xapi-relay", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    @property
    def running(self):
        """Whether this process's thread is alive."""
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def stop(self, timeout=15):
        """Stop the thread after its current step and give the lease up."""
        self._stopping.set()
        if self.running:
            self._thread.join(timeout)
        try:
            self.outbox.release_lease(self.owner)
        except Exception:  # noqa: BLE001  (the database may be gone: the lease runs out anyway)
            pass

    def run(self):
        """Step until stopped; nothing it meets may end the thread."""
        log.info("xAPI relay started (%s)", self.owner)
        while not self._stopping.is_set():
            try:
                delay = self.step()
            except Exception:  # noqa: BLE001  (the database down, a bug: log, wait, go on)
                log.exception("xAPI relay step failed")
                delay = self._backoff()
            self._stopping.wait(delay)

    def step(self):
        """Send one batch if this worker holds the lease; returns the seconds to wait."""
        if not self.outbox.hold_lease(self.owner, LEASE_SECONDS):
            return STANDBY_SECONDS
        batch = self.outbox.due(BATCH)
        if not batch:
            return IDLE_SECONDS
        return self.deliver(batch)

    def send_due(self, owner, rounds=1000):
        """Deliver what is due now, in this thread (the CLI); returns the last step's wait."""
        self.owner = owner
        delay = 0
        for _ in range(rounds):
            delay = self.step()
            if delay:
                break
        self.outbox.release_lease(owner)
        return delay

    # --- one delivery -------------------------------------------------------------------------

    def deliver(self, batch):
        """POST the batch; on a refusal, one by one to park only the refused. Returns the wait."""
        status, detail = self.post([document["body"] for document in batch])
        if status in (200, 204):
            self.failures = 0
            self.outbox.acknowledge([document["_id"] for document in batch])
            return 0
        if self.transient(status):
            return self._failed(batch, status, detail)
        for document in batch:  # order kept: a transient failure stops here
            if len(batch) > 1:
                if not self.outbox.hold_lease(self.owner, LEASE_SECONDS):
                    return STANDBY_SECONDS
                status, detail = self.post([document["body"]])
            if status in (200, 204):
                self.outbox.acknowledge([document["_id"]])
            elif self.transient(status):
                return self._failed([document], status, detail)
            else:
                self.outbox.park(document["_id"], f"HTTP {status}: {detail}")
        self.failures = 0
        return 0

    @staticmethod
    def transient(status):
        """Whether an answer (None: no answer at all) means "try again later"."""
        return status is None or status >= 500 or status in TRANSIENT

    def _failed(self, batch, status, detail):
        """Note a failed delivery; returns the back-off wait."""
        self.outbox.note_attempt([document["_id"] for document in batch])
        wait = self._backoff()
        log.warning("xAPI delivery failed (%s: %s); %d statement(s) wait, next try in %.0f s",
                    status if status is not None else "no answer", detail[:200], len(batch), wait)
        return wait

    def _backoff(self):
        """Exponential back-off with jitter, capped."""
        self.failures += 1
        low, high = BACKOFF_SECONDS
        return min(high, low * 2 ** min(self.failures - 1, 10)) * random.uniform(0.8, 1.0)

    def post(self, bodies):
        """(HTTP status or None, detail) of POSTing the statements as a JSON array."""
        data = ("[" + ",".join(bodies) + "]").encode("utf-8")
        request = urlrequest.Request(self.url, data=data, headers=self.headers, method="POST")
        try:
            with urlrequest.urlopen(request, timeout=SEND_TIMEOUT) as response:
                return response.status, ""
        except urlerror.HTTPError as answer:
            try:
                detail = answer.read(2000).decode("utf-8", "replace")
            except OSError:
                detail = ""
            return answer.code, detail
        except (urlerror.URLError, OSError, ValueError) as failure:
            return None, str(getattr(failure, "reason", failure))
