"""A real xAPI LRS for the tests: Ralph (`ralph runserver`) on a SecantusDB database.

Ralph lives in its own venv, `.venv-ralph` (`make ralph`; `make test` installs it): its `cli`
extra pins click<8.2.1, which clashes with .venv. This module only starts its commands.

`RalphLRS.endpoint` is the xAPI base URL, `http://127.0.0.1:PORT/xAPI/` (trailing slash):
the LRS endpoint of the xAPI spec, under which resources live, so the service configured with
it POSTs to `urljoin(endpoint, "statements")`. Mind the slash: urljoin drops a last segment
that has none (`.../xAPI` + `statements` is `.../statements`).

Fixtures (registered for every module by tests/conftest.py):
- `ralph_lrs`: one LRS for the session on `wire_server`; never stop it. Tests share it, so
  each filters by its own actor (`statements(agent=...)`).
- `own_ralph_lrs`: an LRS of the test's own (own database, port, credentials) that it may
  `stop()` and `start()` again on the same data and port (the LRS down, then up).
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin

import pymongo
import pytest
import requests

from .support import free_port

ROOT = Path(__file__).resolve().parents[1]
RALPH_VENV = ROOT / ".venv-ralph"
XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3"}
# Ralph's largest page (RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT's default).
PAGE_SIZE = 100
# Ralph's pymongo client waits this long for an unreachable MongoDB before its 500; pymongo's
# default (30 s) would make the "database down" tests crawl.
MONGO_TIMEOUT_MS = 2000
# Query parameters whose filter statements() can redo on the collection to check the count.
CHECKABLE = {"agent", "verb", "activity", "limit", "ascending"}


class LRSPagingError(AssertionError):
    """Ralph's paging returned a statement twice or left some out."""


def ralph_executable(name):
    """A program of .venv-ralph (`ralph`, `python`); fails with the fix when it is missing."""
    path = RALPH_VENV / "bin" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make ralph` (installs .venv-ralph)")
    return str(path)


class RalphLRS:
    """`ralph runserver` on its own database of a MongoDB-wire server; can stop and start."""

    def __init__(self, mongo_port, mongo_host="127.0.0.1", database=None, workdir=None,
                 homepage="https://lms.example.com", mongo_timeout_ms=MONGO_TIMEOUT_MS):
        """Choose port, database and credentials; nothing runs until start()."""
        self.mongo_uri = (f"mongodb://{mongo_host}:{mongo_port}/?directConnection=true"
                          f"&serverSelectionTimeoutMS={mongo_timeout_ms}")
        self.database = database or f"lrs_{uuid.uuid4().hex[:12]}"
        self.collection = "statements"
        self.homepage = homepage
        self.username = "progress-service"
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.base_url}/xAPI/"
        self.statements_url = urljoin(self.endpoint, "statements")
        self._own_workdir = workdir is None
        self.app_dir = Path(workdir or tempfile.mkdtemp(prefix="ralph-"))
        self.app_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.app_dir / "ralph.log"
        self.process = None
        self.session = requests.Session()
        self.session.auth = (self.username, self.password)
        self.session.headers.update(XAPI_HEADERS)

    @property
    def auth(self):
        """The (username, password) pair for HTTP basic auth."""
        return (self.username, self.password)

    def _env(self):
        """Ralph's environment: its app dir and backend, none of our Ralph or Python settings."""
        # A stray RALPH_* or PYTHONPATH/PYTHONHOME would configure or break the other venv.
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("RALPH_") and key not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(RALPH_APP_DIR=str(self.app_dir), RALPH_RUNSERVER_BACKEND="mongo")
        return env

    def _write_credentials(self):
        """`ralph auth ... -w`: our user, all scopes, its agent an account on our homepage."""
        subprocess.run(
            [ralph_executable("ralph"), "auth", "-u", self.username, "-p", self.password,
             "-s", "all", "-A", self.username, self.homepage, "-w"],
            cwd=self.app_dir, env=self._env(), check=True, capture_output=True, timeout=120)

    def start(self, timeout=60):
        """Start the server (credentials on the first start) and wait for /__lbheartbeat__."""
        if not (self.app_dir / "auth.json").exists():
            self._write_credentials()
        command = [ralph_executable("ralph"), "runserver", "-b", "mongo",
                   "--mongo-connection-uri", self.mongo_uri,
                   "--mongo-default-database", self.database,
                   "--mongo-default-collection", self.collection,
                   "-h", "127.0.0.1", "-p", str(self.port)]
        with open(self.log_path, "ab") as log:
            # runserver is uvicorn with reload=True: a reloader and a server process. Its own
            # session lets stop() end both by process group. The cwd is the app dir because the
            # reloader watches the cwd and Ralph's settings read a `.env` there.
            self.process = subprocess.Popen(command, cwd=self.app_dir, env=self._env(),
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.base_url}/__lbheartbeat__", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Ralph did not start; its log:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout=15):
        """Stop the server (SIGTERM to its process group, SIGKILL if it lingers); data stays."""
        if self.process is None:
            return
        self.session.close()  # keep-alive connections would reach a later server on the port
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        # The reloader may exit before its server child: SIGKILL what is left of our group.
        self._signal_group(signal.SIGKILL)
        self.process = None

    def _signal_group(self, sig):
        """Send `sig` to the process group this object started (its pid is the group id)."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def close(self):
        """Stop the server and remove the temp app dir (if we made it)."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.app_dir, ignore_errors=True)

    def log_tail(self, lines=40):
        """The end of Ralph's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def post(self, statements, **kwargs):
        """POST one statement (a dict) or a batch (a list) to the statements resource."""
        return self.session.post(self.statements_url, json=statements, timeout=30, **kwargs)

    def get(self, **params):
        """GET the statements resource with query `params` (dicts are sent as JSON)."""
        return self.session.get(self.statements_url, params=_query(params), timeout=30)

    def pages(self, **params):
        """Every page of a statements query, following the `more` links (list of bodies)."""
        params.setdefault("limit", PAGE_SIZE)
        response = self.get(**params)
        bodies = []
        while True:
            response.raise_for_status()
            body = response.json()
            bodies.append(body)
            if not body.get("more"):
                return bodies
            # `more` is a path plus query (`/xAPI/statements?...`), relative to the server.
            response = self.session.get(urljoin(self.base_url, body["more"]), timeout=30)

    def statements(self, **params):
        """ALL statements of a query, paged through `more`; raises LRSPagingError on a bad page.

        Ralph's mongo backend sorts by (timestamp, _id) but pages on `_id` alone, and its
        `_id` is the timestamp's whole second plus a hash of the statement id: across a page
        boundary, statements whose timestamps differ within one second come twice or not at
        all (tests/test_lrs_harness.py pins it). So a repeated id raises, and for the filters
        we can redo (agent, verb, activity) the count is checked against the collection.
        """
        found = [statement for body in self.pages(**params) for statement in body["statements"]]
        repeated = [key for key, count in Counter(s["id"] for s in found).items() if count > 1]
        if repeated:
            raise LRSPagingError(f"Ralph's paging returned {repeated} more than once")
        if set(params) <= CHECKABLE:
            stored = self.count_stored(_mongo_filter(params))
            if stored != len(found):
                raise LRSPagingError(f"Ralph's paging returned {len(found)} statements,"
                                     f" the collection holds {stored}")
        return found

    def count_stored(self, query=None):
        """How many documents the LRS's collection holds (read directly, not through Ralph)."""
        client = pymongo.MongoClient(self.mongo_uri)
        try:
            return client[self.database][self.collection].count_documents(query or {})
        finally:
            client.close()


def _query(params):
    """Query parameters for Ralph: dicts (agent) as JSON, booleans as `true`/`false`."""
    encoded = {}
    for key, value in params.items():
        if isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        encoded[key] = value
    return encoded


def _mongo_filter(params):
    """The collection filter of Ralph's mongo backend for agent (by account), verb and activity."""
    query = {}
    agent = params.get("agent")
    if isinstance(agent, str):
        agent = json.loads(agent)
    if agent:
        # Ralph filters an agent by its account only; the harness's agents all have one.
        query["_source.actor.account.name"] = agent["account"]["name"]
        query["_source.actor.account.homePage"] = agent["account"]["homePage"]
    if params.get("verb"):
        query["_source.verb.id"] = params["verb"]
    if params.get("activity"):
        query["_source.object.id"] = params["activity"]
    return query


@pytest.fixture(scope="session")
def ralph_lrs(wire_server, tmp_path_factory):
    """One Ralph LRS for the session on the session's wire server: never stop it."""
    lrs = RalphLRS(wire_server.port, workdir=tmp_path_factory.mktemp("ralph")).start()
    yield lrs
    lrs.close()


@pytest.fixture
def own_ralph_lrs(wire_server, tmp_path):
    """A Ralph LRS of the test's own (database, port, credentials): stop() and start() it."""
    lrs = RalphLRS(wire_server.port, workdir=tmp_path / "ralph").start()
    yield lrs
    lrs.close()
