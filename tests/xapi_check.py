"""Strict xAPI 1.0.3 check of statements with Ralph's models; runs under .venv-ralph/bin/python.

stdin: a JSON list of statements. stdout: a JSON list of problems, as strings, `[]` when all
are valid. `--no-contract` leaves out the checks of the service's own statement shapes.
tests/xapi.py (`validate_statements`) runs it from the main venv.

Three layers:
1. Ralph's `BaseXapiStatement` (ralph.models.xapi.base.statements), the model of any xAPI
   statement, as Ralph defines it: every nested model forbids unknown properties
   (`extra="forbid"`), IRIs are checked against RFC 3987, language tags against RFC 5646, ids
   parsed as UUIDs, no empty values outside extensions. Ralph's LRS endpoint does NOT use it
   (it accepts anything with an actor, verb id and object id), which is why this exists.
2. The same fields in pydantic strict mode (JSON input): no coercion, so a timestamp given as
   a number or a bare date, or a version given as a number, is refused.
3. Our own rules: see `general_problems` and `contract_problems`.
"""
import json
import re
import sys

from pydantic import ValidationError, create_model
from ralph.models.xapi.base.statements import BaseXapiStatement
from ralph.models.xapi.config import BaseModelWithConfig
from rfc3987 import match as rfc3987_match

# BaseXapiStatement's fields without its "before" model validator: pydantic runs the fields
# of a model that has one in Python mode, where strict mode refuses an ISO timestamp string.
# Ralph's validator (empty values, context platform/revision) still runs in layer 1.
StrictXapiStatement = create_model(
    "StrictXapiStatement", __base__=BaseModelWithConfig,
    **{name: (field.annotation, field) for name, field in BaseXapiStatement.model_fields.items()})

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP_Z_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
OBJECT_ID_RE = re.compile(r"^[0-9a-f]{24}$")
VERBS = "http://adlnet.gov/expapi/verbs/"
COMPLETED, PROGRESSED = VERBS + "completed", VERBS + "progressed"
PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
# At most this many pydantic errors per statement: a refused union member lists them all.
MAX_MODEL_ERRORS = 4


def is_iri(value):
    """An absolute IRI (RFC 3987: a scheme, then the rest)."""
    return isinstance(value, str) and rfc3987_match(value, rule="IRI") is not None


def is_irl(value):
    """An IRI one can fetch: http(s) with a host."""
    return is_iri(value) and re.match(r"^https?://[^/?#\s]+", value) is not None


def dig(value, *path):
    """value[path[0]][path[1]]..., or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def model_problems(statement):
    """Ralph's model (layer 1), then the same fields without coercion (layer 2)."""
    try:
        BaseXapiStatement.model_validate(statement)
        StrictXapiStatement.model_validate_json(json.dumps(statement), strict=True)
    except ValidationError as error:
        found = [f"{'.'.join(map(str, item['loc'])) or '(statement)'}: {item['msg']}"
                 for item in error.errors()]
        more = len(found) - MAX_MODEL_ERRORS
        if more > 0:
            found[MAX_MODEL_ERRORS:] = [f"... and {more} more model errors"]
        return found
    return []


def general_problems(statement):
    """Rules for every statement we send: UUID id, timestamp, account-only Agent, IRI ids."""
    problems = []
    statement_id = statement.get("id")
    if statement_id is None:
        problems.append("id: missing (needed so that a resend is recognised as the same statement)")
    elif not (isinstance(statement_id, str) and UUID_RE.match(statement_id)):
        problems.append(f"id: not a lowercase hyphenated UUID: {statement_id!r}")
    if "timestamp" not in statement:
        problems.append("timestamp: missing (the LRS would put its storing time there)")
    actor = statement.get("actor")
    if not isinstance(actor, dict) or actor.get("objectType") != "Agent":
        problems.append("actor: must be an object with objectType 'Agent'")
    else:
        extra = sorted(set(actor) - {"objectType", "account"})
        if extra:
            problems.append("actor: only objectType and account allowed (no person data),"
                            f" got {extra}")
        account = actor.get("account")
        if not isinstance(account, dict) or set(account) != {"homePage", "name"}:
            problems.append("actor.account: must have exactly homePage and name")
        else:
            if not is_irl(account["homePage"]):
                problems.append("actor.account.homePage: not an http(s) IRL:"
                                f" {account['homePage']!r}")
            if not isinstance(account["name"], str) or not account["name"]:
                problems.append("actor.account.name: must be a non-empty string")
    verb_id = dig(statement, "verb", "id")
    if not is_iri(verb_id):
        problems.append(f"verb.id: not an IRI: {verb_id!r}")
    object_id = dig(statement, "object", "id")
    if not is_iri(object_id):
        problems.append(f"object.id: not an IRI: {object_id!r}")
    return problems


def _activity_under(activity, homepage, kind):
    """The <id> of `{"objectType": "Activity", "id": homepage + "/<kind>/<id>"}`, else None."""
    if not isinstance(activity, dict) or activity.get("objectType") != "Activity":
        return None
    prefix = f"{homepage.rstrip('/')}/{kind}/"
    activity_id = activity.get("id")
    if isinstance(activity_id, str) and activity_id.startswith(prefix):
        rest = activity_id[len(prefix):]
        return rest if OBJECT_ID_RE.match(rest) else None
    return None


def contract_problems(statement):
    """The three statement shapes the progress service sends (see tests/xapi.py)."""
    problems = []
    homepage = dig(statement, "actor", "account", "homePage")
    name = dig(statement, "actor", "account", "name")
    if not (isinstance(homepage, str) and isinstance(name, str)):
        return ["contract: actor.account with homePage and name needed"]
    if not OBJECT_ID_RE.match(name):
        problems.append(f"contract: actor.account.name is not a 24-hex user id: {name!r}")
    timestamp = statement.get("timestamp")
    if not (isinstance(timestamp, str) and TIMESTAMP_Z_RE.match(timestamp)):
        problems.append(f"contract: timestamp is not ISO 8601 UTC with Z: {timestamp!r}")
    if "version" in statement and statement["version"] != "1.0.3":
        problems.append(f"contract: version must be '1.0.3' when present: {statement['version']!r}")
    verb = dig(statement, "verb", "id")
    target = statement.get("object")
    lecture = _activity_under(target, homepage, "lectures")
    course = _activity_under(target, homepage, "courses")
    if verb == COMPLETED and lecture:
        parents = dig(statement, "context", "contextActivities", "parent")
        if not (isinstance(parents, list) and len(parents) == 1
                and _activity_under(parents[0], homepage, "courses")):
            problems.append("contract: a completed lecture needs context.contextActivities.parent"
                            " = [the course activity]")
    elif verb == COMPLETED and course:
        if dig(statement, "result", "completion") is not True:
            problems.append("contract: a completed course needs result.completion true")
    elif verb == PROGRESSED and course:
        title = dig(target, "definition", "name", "en-US")
        if not (isinstance(title, str) and title):
            problems.append("contract: the course needs definition.name['en-US'] (its title)")
        progress = dig(statement, "result", "extensions", PROGRESS)
        if not (type(progress) is int and 0 <= progress <= 100):
            problems.append(f"contract: result.extensions[{PROGRESS!r}] must be an integer 0-100,"
                            f" got {progress!r}")
    else:
        problems.append("contract: not one of completed lecture, progressed course, completed"
                        f" course (verb {verb!r}, object {dig(target, 'id')!r})")
    return problems


def statement_problems(statement, contract=True):
    """All problems of one statement."""
    if not isinstance(statement, dict):
        return [f"not a JSON object: {type(statement).__name__}"]
    problems = model_problems(statement) + general_problems(statement)
    return problems + (contract_problems(statement) if contract else [])


def main():
    """Read statements on stdin, print their problems as JSON, each prefixed by its index."""
    statements = json.load(sys.stdin)
    if not isinstance(statements, list):
        statements = [statements]
    contract = "--no-contract" not in sys.argv[1:]
    problems = [f"statement {index}: {problem}"
                for index, statement in enumerate(statements)
                for problem in statement_problems(statement, contract)]
    json.dump(problems, sys.stdout)


if __name__ == "__main__":
    main()
