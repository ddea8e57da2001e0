"""The relay: sends the outbox's statements to the LRS, oldest first, one fenced sender at a time.

A daemon thread in each worker process, started after the fork (gunicorn's post_worker_init,
or the mount's first request); only the worker holding the lease sends, the others stand by
and take over when a lease runs out (a worker killed mid-batch). Requests never wait for the
LRS: they only write to the outbox. Contract sections 10 and 12:

- Fenced: the lease is renewed before every POST and checked after it, and a POST ends (its
  whole exchange, lrs.py) before the lease it was sent under runs out; a sender that lost the
  lease sends nothing more and leaves the outbox as it is for the new holder.
- No head-of-line stall: a failed batch is sent again one statement at a time until the one
  that fails is found; that statement waits (its own back-off, `retryAt`) and holds back only
  its record's later statements, while the other records' go on. It is parked after
  PARK_AFTER_STRIKES failures, or PARK_AFTER_SECONDS, counted only while the LRS took other
  statements; while the LRS takes nothing, nothing is parked and the relay backs off.
- A redirect is never followed (lrs.py): it is a failed delivery, logged with where it points.
"""
import logging
import os
import random
import socket
import threading
import uuid
from collections import Counter

from pymongo.errors import PyMongoError

from .lrs import Lrs
from .outbox import NoTransactions
from .rule import as_utc, now_ms

log = logging.getLogger("progress_service")

BATCH = 50
SEND_DEADLINE = 10      # seconds one POST may take in all (connect, send, the whole answer)
LEASE_SECONDS = 15      # renewed before every POST: longer than one, with LEASE_MARGIN to spare
LEASE_MARGIN = 2        # a POST ends this long before the lease it was sent under runs out
IDLE_SECONDS = 0.5      # nothing due: look again soon (statements should arrive quickly)
STANDBY_SECONDS = 5     # another worker sends: check whether it still does
BACKOFF_SECONDS = (1, 60)
PARK_AFTER_STRIKES = 5      # failures of one statement while the LRS took others...
PARK_AFTER_SECONDS = 120    # ...or this long since its first such failure, whichever comes first
# Answers that say "not now" rather than "never this statement": the LRS is overloaded,
# moving, or the service's credentials or endpoint are wrong (an operator must act).
TRANSIENT = frozenset({401, 403, 404, 405, 407, 408, 425, 429})


def transient(answer):
    """Whether an Answer means "try again later": no answer, a 2xx other than 200/204 (not the
    answer to a POST of statements), a redirect, a 5xx, TRANSIENT."""
    status = answer.status
    return status is None or status < 400 or status >= 500 or status in TRANSIENT


def backoff(failures):
    """Exponential back-off with jitter, capped: the wait after `failures` failures in a row."""
    low, high = BACKOFF_SECONDS
    return min(high, low * 2 ** min(failures - 1, 10)) * random.uniform(0.8, 1.0)


class Relay:
    """One mount's sender, per process."""

    def __init__(self, outbox, settings):
        """Deliver `outbox` to the LRS of `settings` (an XapiSettings)."""
        self.outbox = outbox
        self.lrs = Lrs(settings)
        self._lock = threading.Lock()
        self._pid = None
        self._thread = None
        self._stopping = threading.Event()
        self.failures = 0
        self.owner = None
        self.accepted_at = None  # when the LRS last took a POST (wall clock, as stored times)
        # For operators (metrics): POSTs by outcome, and the last one's (outcome, HTTP status).
        self.sends = Counter()
        self.last_outcome = None

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
        """Step until stopped; nothing it meets may end the thread (a database away included)."""
        log.info("xAPI relay started (%s)", self.owner)
        while not self._stopping.is_set():
            try:
                delay = self.step()
            except NoTransactions:
                delay = self._backoff()  # check_deployment logged why; writes answer 503 meanwhile
            except PyMongoError as exc:
                delay = self._backoff()
                log.warning("xAPI relay waits for the database (%s); next try in %.0f s", type(exc).__name__, delay)
            except Exception:  # noqa: BLE001  (a bug: log, wait, go on)
                log.exception("xAPI relay step failed")
                delay = self._backoff()
            self._stopping.wait(delay)

    def step(self):
        """Send what is due if this worker holds the lease; returns the seconds to wait."""
        self.outbox.check_deployment()
        if self.outbox.hold_lease(self.owner, LEASE_SECONDS) is None:
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

    # --- one pass -----------------------------------------------------------------------------

    def deliver(self, batch):
        """Send the batch; when it fails, find the statements that fail and hold back only their
        records. Returns the wait before the next pass."""
        # A statement that failed before goes first, alone: the likeliest to fail again. It is the
        # oldest waiting one of its record, so its record's order is kept.
        pending = sorted(batch, key=lambda document: document.get("triedAt") is None)
        failed, accepted, alone = [], False, False
        while pending:
            group = pending[:1] if alone or pending[0].get("triedAt") is not None else pending
            answer = self._send(group)
            if answer is None:
                return STANDBY_SECONDS  # the lease is gone: the new holder sends
            if answer.delivered:
                self.outbox.acknowledge([document["_id"] for document in group])
                accepted = True
                pending = pending[len(group):]
                continue
            if len(group) > 1:
                alone = True  # one of them fails the batch: one at a time until it is found
                continue
            document, pending, alone = group[0], pending[1:], False
            if transient(answer):
                failed.append((document, answer))
                pending = [other for other in pending if other["record"] != document["record"]]
                if len(failed) >= 2 and not accepted:
                    break  # the LRS takes nothing
            else:
                self.outbox.park(document["_id"], f"the LRS refused it: HTTP {answer.status}: {answer.detail}")
        return self._settle(failed, accepted)

    def _send(self, group):
        """The Answer to POSTing the group under a renewed lease, or None when the lease is lost."""
        until = self.outbox.hold_lease(self.owner, LEASE_SECONDS)
        deadline = min(SEND_DEADLINE, (until - now_ms()).total_seconds() - LEASE_MARGIN) if until else 0
        if deadline <= 0:
            return None
        answer = self.lrs.post([document["body"] for document in group], deadline)
        if self.outbox.hold_lease(self.owner, LEASE_SECONDS) is None:
            log.warning("xAPI relay lost its lease during a send; the worker holding it now sends")
            self._count("lease lost", answer)
            return None
        self._count("delivered" if answer.delivered else "redirected" if answer.redirect
                    else "failed" if transient(answer) else "refused", answer)
        return answer

    def _count(self, outcome, answer):
        """Keep the outcome of a POST for operators."""
        self.sends[outcome] += 1
        self.last_outcome = (outcome, answer.status)

    def _settle(self, failed, accepted):
        """Record this pass's failures on their statements; returns the wait before the next pass."""
        now = now_ms()
        if accepted:
            self.accepted_at, self.failures = now, 0
        for document, answer in failed:
            # Held against the statement only when the LRS took others meanwhile: in this pass,
            # or since the statement's previous try.
            tried = as_utc(document.get("triedAt"))
            strike = accepted or (tried is not None and self.accepted_at is not None and self.accepted_at > tried)
            self.outbox.failed(document, _reason(answer), strike, now, PARK_AFTER_STRIKES, PARK_AFTER_SECONDS)
        if not failed:
            return 0
        if accepted:
            wait = 0
        elif len(failed) >= 2:
            wait = self._backoff()  # the LRS takes nothing: wait before asking it again
        else:
            wait = IDLE_SECONDS  # one statement failed: it waits on its own (retryAt), the rest go on
        last = failed[-1][1]
        if last.redirect:
            log.warning("xAPI LRS answered HTTP %s pointing to %s: redirects are not followed (the credentials "
                        "would go along); set PROGRESS_XAPI_ENDPOINT to where the LRS now is",
                        last.status, last.location or "nowhere (no Location)")
        else:
            log.warning("xAPI delivery failed (%s); %d statement(s) held back with their records, next pass in "
                        "%.0f s", _reason(last), len(failed), wait)
        return wait

    def _backoff(self):
        """The next wait after one more failure in a row."""
        self.failures += 1
        return backoff(self.failures)


def _reason(answer):
    """A failed Answer in a few words, for the log and the outbox."""
    if answer.status is None:
        return f"no answer: {answer.detail[:200]}"
    if answer.redirect:
        return f"HTTP {answer.status} to {answer.location}"
    return f"HTTP {answer.status}: {answer.detail[:200]}"
