"""Real Mongoose 8 (the original LMS's CourseProgress model) driven from pytest over a pipe.

`tests/mongoose/driver.js` runs in one Node process per test session and answers one JSON line
per command (see its header for the protocol). This module installs its node modules on first
use (`ensure_installed`), wraps the process (`Mongoose`), and provides the fixtures:

- `mongoose`: the session's driver switched to a fresh database for this test;
- `mongoose_db`: a pymongo Database on that same database, to write as our service does and
  read back what Mongoose stored.

Register it with `pytest_plugins` (tests/conftest.py does) or import the fixtures.
"""
import fcntl
import hashlib
import json
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pymongo
import pytest
from bson import ObjectId, json_util
from bson.json_util import JSONOptions

PACKAGE_DIR = Path(__file__).resolve().parent / "mongoose"
DRIVER = PACKAGE_DIR / "driver.js"
NODE_MODULES = PACKAGE_DIR / "node_modules"
# Inside node_modules on purpose: `npm ci` deletes that directory first, so a failed or
# interrupted install can never leave a stamp that claims success.
STAMP = NODE_MODULES / ".harness-installed"
# Outside node_modules, which `npm ci` deletes (and gitignored): serialises concurrent sessions.
INSTALL_LOCK = PACKAGE_DIR / ".install.lock"
INSTALL_TIMEOUT = 600
CALL_TIMEOUT = 60
START_TIMEOUT = 60
COLLECTION = "courseprogresses"
# Commands come back as canonical Extended JSON; decoded with these, ObjectIds, aware datetimes
# and int/float stay distinguishable in assertions.
JSON_OPTIONS = JSONOptions(tz_aware=True, tzinfo=timezone.utc)


class MongooseHarnessError(RuntimeError):
    """The Node side could not be installed, started or reached."""


def _lock_digest():
    """A digest of what `npm ci` installs from: the manifest and its lock file."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PACKAGE_DIR / name).read_bytes())
    return digest.hexdigest()


def _installed(digest):
    """True when node_modules holds mongoose, installed from this very lock file."""
    return ((NODE_MODULES / "mongoose" / "package.json").exists()
            and STAMP.exists() and STAMP.read_text().strip() == digest)


def _require(tool):
    """The path of `tool` on PATH, or a clear error naming what is missing."""
    found = shutil.which(tool)
    if not found:
        raise MongooseHarnessError(
            f"`{tool}` is not on PATH: the Mongoose harness needs Node.js 20+ and npm "
            f"(it runs {DRIVER.relative_to(PACKAGE_DIR.parent.parent)})")
    return found


def ensure_installed():
    """Run `npm ci` in tests/mongoose when mongoose is missing or the lock file changed."""
    _require("node")
    npm = _require("npm")
    digest = _lock_digest()
    if _installed(digest):
        return False
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(digest):  # another session installed it while we waited
            return False
        command = [npm, "ci", "--prefix", str(PACKAGE_DIR), "--no-audit", "--no-fund"]
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=INSTALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as error:
            raise MongooseHarnessError(f"`{' '.join(command)}` took over {INSTALL_TIMEOUT}s") from error
        if result.returncode != 0 or not (NODE_MODULES / "mongoose").exists():
            output = (result.stdout + result.stderr).strip().splitlines()[-20:]
            raise MongooseHarnessError(
                f"`{' '.join(command)}` failed (exit {result.returncode}); is the npm registry "
                f"reachable?\n" + "\n".join(output))
        STAMP.write_text(digest + "\n")
    return True


def to_wire(value):
    """Arguments as the driver expects them: ObjectIds as hex, datetimes as ISO (UTC, ms)."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:  # naive means UTC, as pymongo stores it
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    return value


class Mongoose:
    """One driver.js process: `call(op, **fields)` sends a command and returns its answer."""

    def __init__(self, uri, node=None):
        """Start the driver on `uri` and wait for its ready line."""
        self.uri = uri
        self.database = None
        self.stderr = tempfile.TemporaryFile(mode="w+", prefix="mongoose-driver-")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [node or _require("node"), str(DRIVER), uri], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1, cwd=PACKAGE_DIR)
        # A reader thread, so a hung or dead driver becomes a timeout here, not a hung test run.
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="mongoose-driver-stdout").start()
        self.ready = self._answer(START_TIMEOUT)
        if not self.ready.get("ok"):
            self.close()
            raise MongooseHarnessError(f"driver.js did not connect to {uri}: {self.ready}")
        self.start_seconds = time.monotonic() - started

    def _read(self):
        """Forward stdout lines to the queue; None marks the end of the stream."""
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _stderr_tail(self):
        """The last lines the driver wrote to stderr, for error messages."""
        self.stderr.seek(0)
        return "".join(self.stderr.readlines()[-20:])

    def _answer(self, timeout):
        """The next answer line, parsed; raises if the driver died or went silent."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise MongooseHarnessError(f"driver.js gave no answer in {timeout}s\n{self._stderr_tail()}")
        if line is None:
            raise MongooseHarnessError(f"driver.js exited ({self.process.poll()})\n{self._stderr_tail()}")
        return json.loads(line)

    def call(self, op, timeout=CALL_TIMEOUT, **fields):
        """Send `{"op": op, **fields}` and return the answer (ok false included, not raised)."""
        command = {"op": op, **to_wire(fields)}
        try:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise MongooseHarnessError(f"driver.js is gone\n{self._stderr_tail()}") from error
        return self._answer(timeout)

    def ok(self, op, **fields):
        """Like call, but an answer with ok false raises."""
        answer = self.call(op, **fields)
        if not answer.get("ok"):
            raise MongooseHarnessError(f"{op} failed: {answer}")
        return answer

    def use(self, database):
        """Switch the driver to another database (a useDb connection with its own model)."""
        self.ok("use", db=database)
        self.database = database

    def commands(self):
        """The commands Mongoose sent since the last call, decoded with their BSON types."""
        raw = self.ok("commands")["commands"]
        return json_util.loads(json.dumps(raw), json_options=JSON_OPTIONS)

    def close(self):
        """Ask the driver to exit (kill it if it does not), and release its files."""
        if self.process.poll() is None:
            try:
                self.call("close", timeout=10)
            except MongooseHarnessError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def sent(commands, name, collection=COLLECTION):
    """The commands named `name` on `collection`, in order (the bodies only)."""
    return [entry["command"] for entry in commands
            if entry["name"] == name and entry["command"].get(name) == collection]


def updates(commands, collection=COLLECTION):
    """Every update statement ({"q": filter, "u": update, ...}) sent to `collection`."""
    return [statement for command in sent(commands, "update", collection)
            for statement in command["updates"]]


@pytest.fixture(scope="session")
def mongoose_session(wire_server):
    """One driver.js for the session, on the session's wire server (npm ci on first use)."""
    try:
        ensure_installed()
    except MongooseHarnessError as error:
        pytest.fail(str(error), pytrace=False)
    driver = Mongoose(wire_server.uri("mongoose_harness"))
    yield driver
    driver.close()


@pytest.fixture(scope="session")
def mongoose_client(wire_server):
    """A pymongo client on the wire server (aware datetimes, as the service configures it)."""
    client = pymongo.MongoClient(wire_server.uri(), tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def mongoose(mongoose_session):
    """The session's driver on a fresh database, with the setup's commands drained."""
    mongoose_session.use(f"mongoose_{uuid.uuid4().hex[:12]}")
    mongoose_session.commands()  # the model's createCollection/createIndexes: not the test's
    return mongoose_session


@pytest.fixture
def mongoose_db(mongoose, mongoose_client):
    """pymongo's view of the database the `mongoose` fixture is on."""
    return mongoose_client[mongoose.database]
