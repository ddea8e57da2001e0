"""The strict statement check (tests/xapi_check.py under .venv-ralph) refuses what it must.

All cases go through one validate_statements call (a subprocess each): a module fixture
checks the batch once and each test reads its statement's problems.
"""
import copy

import pytest

from .xapi import PROGRESS, sample_statements, validate_statements

LECTURE, PROGRESS_STATEMENT, COURSE = range(3)


def _without(key):
    """A mutation removing a top-level property."""
    return lambda statement: statement.pop(key)


def _set(value, *path):
    """A mutation setting statement[path...] = value."""
    def mutate(statement):
        """Walk down `path` and set its last key."""
        for key in path[:-1]:
            statement = statement[key]
        statement[path[-1]] = value
    return mutate


# name: (which sample, mutation, a fragment the problems must contain)
REFUSED = {
    "missing id": (COURSE, _without("id"), "id: missing"),
    "id not a UUID": (COURSE, _set("1234", "id"), "id: Input should be a valid UUID"),
    "id a UUID without hyphens": (COURSE, _set("3f1f0d5c2d5e4a4e9c1e2b9b8f6f3c11", "id"),
                                  "not a lowercase hyphenated UUID"),
    "actor with mbox": (COURSE, _set("mailto:ada@example.com", "actor", "mbox"),
                        "only objectType and account allowed"),
    "actor by mbox only": (COURSE, _set({"objectType": "Agent", "mbox": "mailto:ada@example.com"},
                                        "actor"), "only objectType and account allowed"),
    "actor with a person's name": (COURSE, _set("Ada Lovelace", "actor", "name"),
                                   "only objectType and account allowed"),
    "actor without objectType": (COURSE, lambda s: s["actor"].pop("objectType"),
                                 "objectType 'Agent'"),
    "homePage not an IRL": (COURSE, _set("lms.example.com", "actor", "account", "homePage"),
                            "actor.account.homePage: not an http(s) IRL"),
    "account name a number": (COURSE, _set(42, "actor", "account", "name"),
                              "actor.account.name: must be a non-empty string"),
    "verb id not an IRI": (COURSE, _set("completed", "verb", "id"), "verb.id: not an IRI"),
    "object id not an IRI": (COURSE, _set("course 12", "object", "id"), "object.id: not an IRI"),
    "extra top-level property": (COURSE, _set(1, "score"), "score: Extra inputs are not permitted"),
    "extra nested property": (PROGRESS_STATEMENT, _set("red", "object", "definition", "color"),
                              "color: Extra inputs are not permitted"),
    "missing timestamp": (COURSE, _without("timestamp"), "timestamp: missing"),
    "timestamp a number": (COURSE, _set(1714557600, "timestamp"),
                           "timestamp: Input should be a valid datetime"),
    "timestamp a bare date": (COURSE, _set("2024-05-01", "timestamp"), "timestamp"),
    "timestamp without Z": (COURSE, _set("2024-05-01T10:00:00.000+02:00", "timestamp"),
                            "not ISO 8601 UTC with Z"),
    "version 2.0.0": (COURSE, _set("2.0.0", "version"), "version: String should match pattern"),
    "version 1.0.0": (COURSE, _set("1.0.0", "version"), "version must be '1.0.3'"),
    "empty context": (COURSE, _set({}, "context"),
                      "context: Statements may not contain empty values"),
    "completion as a string": (COURSE, _set("true", "result", "completion"),
                               "result.completion: Input should be a valid boolean"),
    "completed course without completion": (COURSE, _without("result"), "result.completion true"),
    "progress as a string": (PROGRESS_STATEMENT, _set({PROGRESS: "50"}, "result", "extensions"),
                             "must be an integer 0-100"),
    "progress as a float": (PROGRESS_STATEMENT, _set({PROGRESS: 50.0}, "result", "extensions"),
                            "must be an integer 0-100"),
    "progress above 100": (PROGRESS_STATEMENT, _set({PROGRESS: 101}, "result", "extensions"),
                           "must be an integer 0-100"),
    "progress without the course title": (PROGRESS_STATEMENT,
                                          lambda s: s["object"].pop("definition"),
                                          "definition.name['en-US']"),
    "completed lecture without its course": (LECTURE, _without("context"),
                                             "contextActivities.parent"),
    "another verb": (COURSE, _set("http://adlnet.gov/expapi/verbs/experienced", "verb", "id"),
                     "not one of completed lecture, progressed course, completed course"),
}


@pytest.fixture(scope="module")
def problems_by_case():
    """Every REFUSED case checked in one call: {case name: its problems}."""
    names, statements = [], []
    for name, (which, mutate, _fragment) in REFUSED.items():
        statement = copy.deepcopy(sample_statements()[which])
        mutate(statement)
        names.append(name)
        statements.append(statement)
    found = {name: [] for name in names}
    for problem in validate_statements(statements):
        index, _, text = problem.removeprefix("statement ").partition(": ")
        found[names[int(index)]].append(text)
    return found


def test_the_three_contract_statements_are_valid():
    """A lecture completion, a progress and a course completion pass every check."""
    assert validate_statements(sample_statements()) == []
    assert validate_statements([]) == []


@pytest.mark.parametrize("case", REFUSED)
def test_refused(problems_by_case, case):
    """Each bad statement is refused, with a problem naming what is wrong."""
    fragment = REFUSED[case][2]
    assert any(fragment in problem for problem in problems_by_case[case]), problems_by_case[case]


def test_other_statements_pass_without_the_contract():
    """contract=False checks xAPI and the general rules only: another verb passes, a bad id not."""
    other = sample_statements()[COURSE]
    other["verb"]["id"] = "http://adlnet.gov/expapi/verbs/experienced"
    bad = copy.deepcopy(other)
    bad["id"] = "not-a-uuid"
    assert validate_statements([other], contract=False) == []
    assert validate_statements([bad], contract=False) != []


def test_problems_name_the_statement():
    """Problems start with the index of their statement; valid ones contribute none."""
    good, bad = sample_statements()[:2]
    bad.pop("id")
    problems = validate_statements([good, bad])
    assert problems and all(problem.startswith("statement 1: ") for problem in problems)
