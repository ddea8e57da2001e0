"""The transactional outbox of xAPI statements (contract sections 10 and 12).

A write and its statements are stored in one MongoDB transaction: the record's conditional
update, and one document per statement in a collection of its own (`progressxapioutbox`),
each holding the statement's JSON text exactly as built. The progress documents get nothing
(the original app returns them whole). The relay (relay.py) sends what is due, deletes what
the LRS acknowledged, holds back a statement that keeps failing (and its record's later ones)
and parks what it refused for good. Everything here reads from the primary, whatever the
mount's read preference: a secondary's stale copy would hand out statements already delivered.
"""
import logging
import threading
from datetime import timedelta

from pymongo import ASCENDING, ReadPreference, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import store, xapi
from .exceptions import Unavailable
from .metrics import DELIVERED, FAILED, OFF, PARKED
from .rule import as_utc, now_ms

log = logging.getLogger("progress_service")

COLLECTION = "progressxapioutbox"
LEASES = "progressxapileases"
PENDING, PARKED = "pending", "parked"
# Oldest first; one record's statements in the order of its writes, then of the contract.
ORDER = [("createdAt", ASCENDING), ("record", ASCENDING), ("version", ASCENDING), ("seq", ASCENDING)]
# What the relay reads of a waiting statement.
DUE_FIELDS = {"body": 1, "record": 1, "attempts": 1, "strikes": 1, "firstStrikeAt": 1, "triedAt": 1}
RETRY_SECONDS = (1, 60)  # a statement that failed alone waits this long, doubling, before its next try
NO_TRANSACTIONS = ("xAPI is configured (PROGRESS_XAPI_ENDPOINT) but the database has no transactions: "
                   "statements are stored in the same transaction as the change, which needs a replica "
                   "set (a single-node replica set is enough) or a sharded cluster")


class LostRace(Exception):
    """The record changed since it was read: the transaction is abandoned and the write redone."""


class NoTransactions(Unavailable):
    """The database answered that it takes no transactions (not that it is unreachable)."""


class Outbox:
    """One mount's outbox: statements stored with their change, handed to the relay in order."""

    def __init__(self, settings, database, metrics=OFF):
        """Where statements go (settings.xapi), the mount's database, and what counts the sends."""
        self.settings = settings
        self.database = database
        self.metrics = metrics
        self._checked = None
        self._lock = threading.Lock()

    def collection(self):
        """The outbox collection, read from the primary."""
        return self.database.db().get_collection(COLLECTION, read_preference=ReadPreference.PRIMARY)

    # --- the deployment -----------------------------------------------------------------------

    def check_deployment(self):
        """Raise NoTransactions unless the database takes transactions; create the outbox's indexes.

        Checked once per process (and database), on first use, never at mount time. A database
        that does not answer raises the driver's error (retried by the caller, never fatal).
        """
        db = self.database.db()
        if self._checked is db:
            return
        with self._lock:
            if self._checked is db:
                return
            hello = db.client.admin.command("hello")
            if not (hello.get("setName") or hello.get("msg") == "isdbgrid"):
                log.error(NO_TRANSACTIONS)
                raise NoTransactions(NO_TRANSACTIONS)
            outbox = db[COLLECTION]
            # Created before the first transaction: a collection cannot always be created inside one.
            if COLLECTION not in db.list_collection_names(filter={"name": COLLECTION}):
                try:
                    db.create_collection(COLLECTION)
                except PyMongoError:
                    pass  # another worker made it
            outbox.create_index([("state", ASCENDING), *ORDER], name="state_1_order")
            outbox.create_index([("state", ASCENDING), ("retryAt", ASCENDING)], name="state_1_retryAt_1")
            self._checked = db

    # --- at write time ------------------------------------------------------------------------

    def statements_for(self, done):
        """The outbox documents of a stored write (none for a write that changes no figure)."""
        built = xapi.statements_for(self.settings.xapi.homepage, done)
        record = done.record
        # `user` and `course` let an erase find statements whose record is already gone (privacy.py).
        return [{"_id": statement["id"], "record": record.id, "user": record.user, "course": record.course,
                 "version": record.version, "seq": seq,
                 "kind": kind, "createdAt": done.now, "state": PENDING, "attempts": 0,
                 "body": xapi.encode(statement)}
                for seq, (kind, _lecture, statement) in enumerate(built)]

    def store_with(self, records, record, documents):
        """The record's write and its statements in one transaction; False when the record had changed."""
        self.check_deployment()
        outbox = records.database[COLLECTION]

        def both(session):
            """Inside the transaction: the conditional write, then the statements."""
            if not store.write(records, record, session=session):
                raise LostRace()
            outbox.insert_many(documents, ordered=True, session=session)

        with records.database.client.start_session() as session:
            try:
                # with_transaction retries transient errors and an unknown commit result.
                session.with_transaction(both)
            except LostRace:
                return False
            except DuplicateKeyError:
                # The record was created by a simultaneous first write inside our transaction.
                return False
        return True

    # --- for the relay and the operators ------------------------------------------------------

    def due(self, limit):
        """The oldest pending statements, in order, but none of a record whose oldest one waits
        after failing (its retryAt is still ahead): that record's later ones wait behind it."""
        outbox = self.collection()
        waiting = outbox.distinct("record", {"state": PENDING, "retryAt": {"$gt": now_ms()}})
        query = {"state": PENDING, "record": {"$nin": waiting}} if waiting else {"state": PENDING}
        return list(outbox.find(query, DUE_FIELDS).sort(ORDER).limit(limit))

    def acknowledge(self, ids):
        """The LRS has them: they leave the outbox."""
        if ids:
            self.collection().delete_many({"_id": {"$in": list(ids)}, "state": PENDING})
            self.metrics.statements_sent(DELIVERED, len(ids))

    def park(self, statement_id, reason):
        """Kept and counted, no longer sent, so the record's later ones flow (xapi-retry sends it again)."""
        self.collection().update_one({"_id": statement_id}, {
            "$set": {"state": PARKED, "parkedAt": now_ms(), "reason": reason[:1000]}, "$inc": {"attempts": 1}})
        self.metrics.statements_sent(PARKED, 1)
        log.error("xAPI statement %s parked: %s", statement_id, reason[:300])

    def failed(self, document, reason, strike, now, park_after_strikes, park_after_seconds):
        """Sent alone, it failed for now: it waits (and its record with it) before the next try.

        `strike`: the LRS took other statements meanwhile, so the failure is held against this one;
        after `park_after_strikes` of those, or `park_after_seconds` since the first, it is parked.
        """
        strikes = document.get("strikes", 0) + strike
        first = document.get("firstStrikeAt") or (now if strike else None)
        if strike and (strikes >= park_after_strikes or (now - as_utc(first)).total_seconds() >= park_after_seconds):
            self.park(document["_id"], f"failed {strikes} times while the LRS took other statements; last: {reason}")
            return
        attempts = document.get("attempts", 0) + 1
        low, high = RETRY_SECONDS
        wait = min(high, low * 2 ** min(attempts - 1, 10))
        self.collection().update_one({"_id": document["_id"], "state": PENDING}, {"$set": {
            "attempts": attempts, "strikes": strikes, "firstStrikeAt": first, "triedAt": now,
            "retryAt": now + timedelta(seconds=wait), "reason": reason[:1000]}})
        self.metrics.statements_sent(FAILED, 1)

    def status(self):
        """{"waiting", "parked", "oldest_waiting_seconds"} for operators."""
        outbox = self.collection()
        waiting = outbox.count_documents({"state": PENDING})
        parked = outbox.count_documents({"state": PARKED})
        oldest = outbox.find_one({"state": PENDING}, {"createdAt": 1}, sort=ORDER)
        age = None
        if oldest is not None:
            age = round((now_ms() - as_utc(oldest["createdAt"])).total_seconds(), 1)
        return {"waiting": waiting, "parked": parked, "oldest_waiting_seconds": age}

    def unpark(self):
        """Every parked statement pending again, its failures forgotten (xapi-retry); returns how many."""
        forget = dict.fromkeys(("parkedAt", "reason", "strikes", "firstStrikeAt", "triedAt", "retryAt"), "")
        return self.collection().update_many(
            {"state": PARKED}, {"$set": {"state": PENDING}, "$unset": forget}).modified_count

    # --- one sender at a time -----------------------------------------------------------------

    def hold_lease(self, owner, seconds):
        """Take or renew the relay's lease: when it runs out (a datetime) while `owner` holds it, else None.

        One sender at a time: the relay sends only within the time this returns. Times are the
        workers' own clocks: keep them in sync (NTP); a skew of more than the relay's margin
        between two workers could let a takeover overlap a send.
        """
        leases = self.database.db()[LEASES]
        now = now_ms()
        try:
            held = leases.find_one_and_update(
                {"_id": "relay", "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": owner, "until": now + timedelta(seconds=seconds)}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return None  # someone else holds a lease that has not run out
        return as_utc(held["until"]) if held is not None and held.get("owner") == owner else None

    def release_lease(self, owner):
        """Give the lease up (a relay that stops)."""
        self.database.db()[LEASES].delete_one({"_id": "relay", "owner": owner})

