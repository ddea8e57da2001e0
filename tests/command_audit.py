"""Pytest plugin: every command the service sends to courseprogresses is checked for the shard key.

A sharded cluster with the shard key (user, course) routes a command to one shard only when
its filter names both fields. This plugin registers a pymongo CommandListener before any
client exists, so it sees every command of the wire-server runs (mongomock emits no events),
keeps the ones the service's own code sent, and fails the session on any single-record
command whose filter lacks `user` or `course`.

Exempt, and named with their routing on a cluster:
- the dashboard: find (sorted by lastAccessed), count and distinct by `user` (alone, or with
  `course: {$in: [...]}`), a shard-key prefix, so still sent to one shard;
- the instructor views: find (sorted by createdAt), count and aggregation by `course`
  alone, sent to every shard (scatter-gather);
- the upkeep of the instructor's figures (progress/upkeep.py), by `course` too: a build's
  finds by a window of createdAt (or none), a sweep's by a window of updatedAt, and its
  re-read of a batch (`_id: {$in: [...]}`), sent to every shard;
- the operator's `rebuild-summaries` without --course: distinct `course` over every record;
- index management (createIndexes, listIndexes, dropIndexes);
- `progress doctor`'s search for duplicate (user, course) records (an aggregation that groups
  by the shard key), run by hand, sent to every shard.
"""
import os
import sys
import sysconfig
import threading
from collections import Counter
from contextlib import contextmanager

import pytest
from pymongo import monitoring

import progress_service

COLLECTION = "courseprogresses"
SHARD_KEY = ("user", "course")
SINGLE_RECORD = "single record (user and course: one shard)"
LIST_QUERIES = {
    "dashboard": "by user, a shard-key prefix: targeted to one shard",
    "instructor views": "by course alone: scatter-gather to every shard",
    "instructor figures": "by course, updatedAt or a batch of _id: scatter-gather to every shard",
    "operator": "every course (rebuild-summaries): scatter-gather to every shard",
}
DUPLICATES_CHECK = "duplicates check"
ROUTING = {**LIST_QUERIES, DUPLICATES_CHECK: "the doctor's, by hand: scatter-gather to every shard"}
INDEX_MANAGEMENT = "index management"
INDEX_COMMANDS = frozenset({"createIndexes", "listIndexes", "dropIndexes"})
# A cursor's follow-ups belong to the find or aggregate already audited.
CURSOR_COMMANDS = frozenset({"getMore", "killCursors"})
WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify"})
SERVICE_DIR = os.path.dirname(progress_service.__file__) + os.sep
# Frames of these packages (and the standard library) are skipped to find the code that
# asked for the command.
LIBRARY_DIRS = tuple(os.path.dirname(__import__(name).__file__) + os.sep
                     for name in ("pymongo", "mongoengine", "bson")) + (sysconfig.get_paths()["stdlib"] + os.sep,)


def _is_equality(value):
    """A plain value or {"$eq": x}: the only conditions a router can target a shard with."""
    if isinstance(value, dict):
        return set(value) == {"$eq"} or not any(str(key).startswith("$") for key in value)
    return True


def _conditions(query):
    """Top-level equality conditions of a filter, through a top-level $and."""
    found = {}
    for key, value in (query or {}).items():
        if key == "$and":
            for part in value:
                found.update(_conditions(part))
        elif not key.startswith("$") and _is_equality(value):
            found[key] = value
    return found


def _has_shard_key(query):
    """True when the filter pins both user and course by equality."""
    return all(field in _conditions(query) for field in SHARD_KEY)


def _first_match(pipeline):
    """The filter of an aggregation's leading $match, or {}."""
    return pipeline[0].get("$match", {}) if pipeline else {}


def _sort_fields(command):
    """The find's sort keys, in order."""
    return list((command.get("sort") or {}).keys())


def _filters(name, command):
    """Every filter (or inserted document) of a command, one per statement."""
    if name == "insert":
        return command.get("documents", [])
    if name in ("update", "delete"):
        return [statement.get("q", {}) for statement in command.get(name + "s", [])]
    if name == "findAndModify":
        return [command.get("query", {})]
    if name == "aggregate":
        return [_first_match(command.get("pipeline", []))]
    if name in ("count", "distinct"):
        return [command.get("query", {})]
    return [command.get("filter", {})]


def _by_user(query):
    """The user's records, or those of some of their courses (course: {$in: [...]})."""
    keys = set((query or {}).keys())
    if keys == {"user"}:
        return True
    course = query.get("course") if keys == {"user", "course"} else None
    return isinstance(course, dict) and set(course) == {"$in"}


def _list_query(name, command, query):
    """The named list query this read is, or None: only exact, known shapes are exempt."""
    keys = set((query or {}).keys())
    sort = _sort_fields(command)
    if _by_user(query):
        if (name == "find" and sort[:1] == ["lastAccessed"]) or name in ("aggregate", "count", "distinct"):
            return "dashboard"
    if keys == {"course"}:
        if (name == "find" and sort[:1] == ["createdAt"]) or name in ("aggregate", "count"):
            return "instructor views"
    if name == "distinct" and not keys and command.get("key") == "course":
        return "operator"
    if name == "find" and keys in ({"course", "createdAt"}, {"course", "updatedAt"}, {"course", "_id"}):
        batch = isinstance(query.get("_id"), dict) and set(query["_id"]) == {"$in"}
        if "_id" not in keys or batch:
            return "instructor figures"
    return None


def _groups_by_shard_key(name, command):
    """An aggregation whose first stage groups every record by (user, course)."""
    if name != "aggregate" or not command.get("pipeline"):
        return False
    group = command["pipeline"][0].get("$group", {})
    return group.get("_id") == {"user": "$user", "course": "$course"}


def classify(name, command):
    """(kind, problem) of one command on courseprogresses; problem is None when it is fine."""
    if name in INDEX_COMMANDS:
        return INDEX_MANAGEMENT, None
    if _groups_by_shard_key(name, command):
        return DUPLICATES_CHECK, None
    filters = _filters(name, command)
    if filters and all(_has_shard_key(query) for query in filters):
        return SINGLE_RECORD, None
    if name not in WRITE_COMMANDS and len(filters) == 1:
        kind = _list_query(name, command, filters[0])
        if kind:
            return kind, None
    missing = [field for query in filters for field in SHARD_KEY if field not in _conditions(query)]
    return "violation", f"{name} without {' and '.join(sorted(set(missing))) or 'a filter'}: {filters!r}"


def _collection(name, command):
    """The collection a command addresses."""
    target = command.get(name)
    return target if isinstance(target, str) else None


def _caller():
    """'path:line' of the innermost frame outside the driver, the ODM, the stdlib and this plugin."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(LIBRARY_DIRS + ("<",)) and filename != __file__:
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


class CommandAudit(monitoring.CommandListener):
    """Records the service's commands on courseprogresses, by kind, and the violations."""

    def __init__(self):
        self.kinds = Counter()
        self.examples = {}
        self.violations = []
        self.lock = threading.Lock()
        self._captures = []

    @contextmanager
    def capture(self):
        """Collect every command started meanwhile (any collection, any caller), for a test."""
        seen = []
        self._captures.append(seen)
        try:
            yield seen
        finally:
            self._captures.remove(seen)

    def started(self, event):
        """Classify a command the service's own code sent to courseprogresses."""
        name = event.command_name
        for seen in self._captures:
            seen.append((name, _collection(name, event.command), dict(event.command)))
        if name in CURSOR_COMMANDS or _collection(name, event.command) != COLLECTION:
            return
        caller = _caller()
        if caller.startswith(SERVICE_DIR):
            self.record(name, event.command, caller)

    def record(self, name, command, caller):
        """Count one command; keep it as a violation when it breaks the rule."""
        kind, problem = classify(name, command)
        with self.lock:
            self.kinds[kind] += 1
            self.examples.setdefault(kind, f"{name} from {os.path.relpath(caller)}")
            if problem:
                self.violations.append(f"{problem} (from {os.path.relpath(caller)})")

    def succeeded(self, event):
        """Nothing to check in replies."""

    def failed(self, event):
        """Nothing to check in failures."""

    def report(self):
        """Lines for the terminal summary: kinds seen, with their routing."""
        lines = []
        for kind, count in sorted(self.kinds.items()):
            routing = ROUTING.get(kind, "")
            lines.append(f"{count:6d}  {kind}{' - ' + routing if routing else ''}  e.g. {self.examples[kind]}")
        return lines


AUDIT = CommandAudit()
# Registered at import, before any test creates a MongoClient: clients made later report here.
monitoring.register(AUDIT)


@pytest.fixture(scope="session", autouse=True)
def shard_key_audit():
    """Fail the session (as an error in teardown) on any un-targeted single-record command."""
    yield AUDIT
    if AUDIT.violations:
        shown = "\n  ".join(AUDIT.violations[:20])
        pytest.fail(f"{len(AUDIT.violations)} command(s) on {COLLECTION} without the shard key "
                    f"(user, course):\n  {shown}", pytrace=False)


def pytest_terminal_summary(terminalreporter):
    """Show what the audit saw, so a run that audited nothing is visible too."""
    terminalreporter.section(f"shard-key audit of {COLLECTION} (wire-server runs)")
    for line in AUDIT.report() or ["no service command on the wire server in this run"]:
        terminalreporter.write_line(line)
    if AUDIT.violations:
        terminalreporter.write_line(f"{len(AUDIT.violations)} VIOLATION(S): see the error above")
