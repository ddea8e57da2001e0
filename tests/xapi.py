"""The xAPI statements the progress service will send, and their strict check (main venv side).

Contract (xAPI 1.0.3), HOMEPAGE being the LMS's base URL:
- actor `{"objectType": "Agent", "account": {"homePage": HOMEPAGE, "name": "<24-hex user id>"}}`,
  no mbox, no person's name;
- `id` a UUID chosen by the service (so a resend is the same statement: the LRS answers 204),
  `timestamp` ISO 8601 UTC with `Z`, `version` "1.0.3" (Ralph stores what it is given and adds
  none when it is absent);
- verb `completed`, object the lecture activity (HOMEPAGE/lectures/<id>), and
  `context.contextActivities.parent` = [the course activity];
- verb `progressed`, object the course activity (HOMEPAGE/courses/<id>, `definition.name`
  `{"en-US": title}`), `result.extensions[PROGRESS]` an integer percentage;
- verb `completed`, object the course activity, `result.completion` true.
"""
import json
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bson import ObjectId

from .lrs import ralph_executable

HOMEPAGE = "https://lms.example.com"
VERBS = "http://adlnet.gov/expapi/verbs/"
COMPLETED = VERBS + "completed"
PROGRESSED = VERBS + "progressed"
PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
CHECK_SCRIPT = Path(__file__).with_name("xapi_check.py")


def validate_statements(statements, contract=True):
    """Problems of `statements` (dicts) by Ralph's strict models and our rules; [] if valid.

    Runs tests/xapi_check.py under .venv-ralph's Python (one process per call: pass a batch).
    `contract=False` checks xAPI and the general rules only, not the service's three shapes.
    """
    command = [ralph_executable("python"), str(CHECK_SCRIPT)]
    if not contract:
        command.append("--no-contract")
    done = subprocess.run(command, input=json.dumps(list(statements)), capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"xapi_check.py failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def now_z():
    """The current UTC time as xAPI likes it: ISO 8601, milliseconds, `Z`."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def agent(user_id, homepage=HOMEPAGE):
    """The actor of a student: an account on the LMS, nothing personal."""
    return {"objectType": "Agent", "account": {"homePage": homepage, "name": str(user_id)}}


def course_activity(course_id, title=None, homepage=HOMEPAGE):
    """The course as an activity (with its title as definition.name when given)."""
    activity = {"objectType": "Activity", "id": f"{homepage}/courses/{course_id}"}
    if title is not None:
        activity["definition"] = {"name": {"en-US": title}}
    return activity


def lecture_activity(lecture_id, homepage=HOMEPAGE):
    """A lecture as an activity."""
    return {"objectType": "Activity", "id": f"{homepage}/lectures/{lecture_id}"}


def _statement(user_id, verb, target, homepage, **extra):
    """The common part: UUID id, timestamp, version, actor, verb, object."""
    return {"id": str(uuid.uuid4()), "timestamp": now_z(), "version": "1.0.3",
            "actor": agent(user_id, homepage), "verb": {"id": verb}, "object": target, **extra}


def lecture_completed(user_id, course_id, lecture_id, homepage=HOMEPAGE):
    """`completed` a lecture, its course as the parent activity."""
    parent = course_activity(course_id, homepage=homepage)
    return _statement(user_id, COMPLETED, lecture_activity(lecture_id, homepage), homepage,
                      context={"contextActivities": {"parent": [parent]}})


def course_progressed(user_id, course_id, title, progress, homepage=HOMEPAGE):
    """`progressed` in a course, the percentage as cmi5's progress extension."""
    return _statement(user_id, PROGRESSED, course_activity(course_id, title, homepage), homepage,
                      result={"extensions": {PROGRESS: progress}})


def course_completed(user_id, course_id, homepage=HOMEPAGE):
    """`completed` a course."""
    return _statement(user_id, COMPLETED, course_activity(course_id, homepage=homepage), homepage,
                      result={"completion": True})


def sample_statements(user_id=None, homepage=HOMEPAGE):
    """One statement of each contract shape, one user and course: [lecture, progress, course]."""
    user_id = str(user_id or ObjectId())
    course_id, lecture_id = str(ObjectId()), str(ObjectId())
    return [lecture_completed(user_id, course_id, lecture_id, homepage),
            course_progressed(user_id, course_id, "Course", 50, homepage),
            course_completed(user_id, course_id, homepage)]
