"""The transactional outbox of xAPI statements (contract section 10).

A write and its statements are stored in one MongoDB transaction: the record's conditional
update, and one document per statement in a collection of its own (`progressxapioutbox`),
each holding the statement's JSON text exactly as built. The progress documents get nothing
(the original app returns them whole). The relay (relay.py) sends what is due, deletes what
the LRS acknowledged and parks what it refused for good.
"""
import logging
import threading
from datetime import timedelta

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import store, xapi
from .exceptions import Unavailable
from .metrics import DELIVERED, FAILED, OFF, PARKED
from .rule import now_ms

log = logging.getLogger("progress_service")

COLLECTION = "progressxapioutbox"
LEASES = "progressxapileases"
PENDING, PARKED = "pending", "parked"
# Oldest first; one record's statements in the order of its writes, then of the contract.
ORDER = [("createdAt", ASCENDING), ("record", ASCENDING), ("version", ASCENDING), ("seq", ASCENDING)]
NO_TRANSACTIONS = ("xAPI is configured (PROGRESS_XAPI_ENDPOINT) but the database has no transactions: "
                   "statements are stored in the same transaction as the change, which needs a replica "
                   "set (a single-node replica set is enough) or a sharded cluster")


class LostRace(Exception):
    """The record changed since it was read: the transaction is abandoned and the write redone."""


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
        """The outbox collection."""
        return self.database.db()[COLLECTION]

    # --- the deployment -----------------------------------------------------------------------

    def check_deployment(self):
        """Raise Unavailable unless the database takes transactions; create the outbox's index.

        Checked once per process (and database), on first use, never at mount time.
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
                raise Unavailable(NO_TRANSACTIONS)
            outbox = db[COLLECTION]
            # Created before the first transaction: a collection cannot always be created inside one.
            if COLLECTION not in db.list_collection_names(filter={"name": COLLECTION}):
                try:
                    db.create_collection(COLLECTION)
                except PyMongoError:
                    pass  # another worker made it
            outbox.create_index([("state", ASCENDING), *ORDER], name="state_1_order")
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
        """The oldest pending statements, in order."""
        return list(self.collection().find({"state": PENDING}, {"body": 1, "record": 1, "attempts": 1})
                    .sort(ORDER).limit(limit))

    def acknowledge(self, ids):
        """The LRS has them: they leave the outbox."""
        if ids:
            self.collection().delete_many({"_id": {"$in": list(ids)}, "state": PENDING})
            self.metrics.statements_sent(DELIVERED, len(ids))

    def park(self, statement_id, reason):
        """The LRS refused it for good: kept and counted, no longer sent, so later ones flow."""
        self.collection().update_one({"_id": statement_id}, {
            "$set": {"state": PARKED, "parkedAt": now_ms(), "reason": reason[:1000]}, "$inc": {"attempts": 1}})
        self.metrics.statements_sent(PARKED, 1)
        log.error("xAPI statement %s parked: the LRS refused it: %s", statement_id, reason[:300])

    def note_attempt(self, ids):
        """A failed delivery of these (the LRS was down or refused the batch for a time)."""
        if ids:
            self.collection().update_many({"_id": {"$in": list(ids)}}, {"$inc": {"attempts": 1}})
            self.metrics.statements_sent(FAILED, len(ids))

    def status(self):
        """{"waiting", "parked", "oldest_waiting_seconds"} for operators."""
        outbox = self.collection()
        waiting = outbox.count_documents({"state": PENDING})
        parked = outbox.count_documents({"state": PARKED})
        oldest = outbox.find_one({"state": PENDING}, {"createdAt": 1}, sort=ORDER)
        age = None
        if oldest is not None:
            created = oldest["createdAt"]
            if created.tzinfo is None:
                created = created.replace(tzinfo=now_ms().tzinfo)
            age = round((now_ms() - created).total_seconds(), 1)
        return {"waiting": waiting, "parked": parked, "oldest_waiting_seconds": age}

    def unpark(self):
        """Every parked statement pending again (xapi-retry); returns how many."""
        return self.collection().update_many(
            {"state": PARKED}, {"$set": {"state": PENDING}, "$unset": {"parkedAt": "", "reason": ""}}).modified_count

    # --- one sender at a time -----------------------------------------------------------------

    def hold_lease(self, owner, seconds):
        """Take or renew the relay's lease; True while `owner` holds it (one sender at a time).

        Times are the workers' own clocks: keep them in sync (NTP); the lease is much longer
        than any one delivery, so a small skew only delays a takeover.
        """
        leases = self.database.db()[LEASES]
        now = now_ms()
        try:
            held = leases.find_one_and_update(
                {"_id": "relay", "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": owner, "until": now + timedelta(seconds=seconds)}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return False  # someone else holds a lease that has not run out
        return held is not None and held.get("owner") == owner

    def release_lease(self, owner):
        """Give the lease up (a relay that stops)."""
        self.database.db()[LEASES].delete_one({"_id": "relay", "owner": owner})

