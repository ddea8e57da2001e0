"""`flask --app wsgi progress ...`: tokens, demo data, indexes, xAPI and a person's data, for
operators and QA."""
import json
import shlex
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit, urlunsplit

import click
from bson import ObjectId
from flask import current_app
from flask.cli import AppGroup
from flask_jwt_extended import create_access_token
from pymongo.errors import PyMongoError

from ..progress import mount_of, upkeep
from ..progress.commands import doctor_command
from ..progress.envelope import UNAVAILABLE
from ..progress.models import now_ms

progress_cli = AppGroup("progress", help="Course-progress service helpers.")
progress_cli.add_command(doctor_command)
# Ten years: a longer lifetime overflows the expiry date (and no QA token needs it).
MAX_EXPIRES_SECONDS = 10 * 365 * 86400


def _redacted(uri):
    """The URI without user:password, safe to print."""
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def needs_database(command):
    """Turn an unreachable database into one clear line instead of a traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UNAVAILABLE as exc:
            uri = _redacted(current_app.config["MONGODB_URI"])
            hint = ("start it with `make run` (or set MONGODB_URI)"
                    if current_app.config.get("MONGODB_URI_IS_DEFAULT") else "check MONGODB_URI")
            raise click.ClickException(f"cannot reach the database at {uri}: {hint}") from exc
        except PyMongoError as exc:
            # Reachable but refusing (authentication, permissions, a full disk): its reason.
            uri = _redacted(current_app.config["MONGODB_URI"])
            raise click.ClickException(f"the database at {uri} refused: {exc}") from exc

    return wrapper


def _token(user_id, expires):
    """A JWT for user_id signed with the running configuration's secret."""
    return create_access_token(identity=str(user_id), expires_delta=timedelta(seconds=expires))


@progress_cli.command("token")
@click.argument("user_id")
@click.option("--expires", default=86400, show_default=True,
              type=click.IntRange(1, MAX_EXPIRES_SECONDS),
              help="Lifetime in seconds.")
def token_command(user_id, expires):
    """Print a JWT for USER_ID (an id as the mount's catalog reads it: 24 hex digits by default)."""
    given_id(user_id, "USER_ID")
    click.echo(_token(user_id, expires))


def given_id(text, hint):
    """An id given on the command line, as the mount's catalog reads ids (its parse_id)."""
    try:
        return mount_of(current_app).parse_id(text)
    except ValueError as exc:
        raise click.BadParameter(f"not an id of this service: {exc}", param_hint=hint) from exc


# seed-demo's keys as the QA curl scripts (scripts/qa/) read them from the environment.
SHELL_NAMES = {"userId": "USER_ID", "courseId": "COURSE_ID", "lectureIds": "LECTURE_IDS",
               "token": "TOKEN", "instructorId": "INSTRUCTOR_ID", "instructorToken": "INSTRUCTOR_TOKEN"}


def shell_exports(seeded):
    """`export NAME=value` lines for `eval`, lists space-separated, every value quoted."""
    lines = []
    for key, name in SHELL_NAMES.items():
        value = seeded[key]
        value = " ".join(value) if isinstance(value, list) else value
        lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join(lines)


@progress_cli.command("seed-demo")
@click.option("--lectures", default=3, show_default=True, type=click.IntRange(1, 500),
              help="How many lectures the demo course has.")
@click.option("--format", "output", type=click.Choice(["json", "shell"]), default="json",
              show_default=True,
              help="shell: `export` lines for eval (TOKEN, COURSE_ID, LECTURE_IDS, ...).")
@needs_database
def seed_demo_command(lectures, output):
    """Create a demo student, instructor, course and lectures; print their ids and tokens."""
    db = mount_of(current_app).database.db()
    now = now_ms()
    student, instructor = ObjectId(), ObjectId()
    suffix = str(student)[-6:]
    # In the original LMS's shape; the password is a placeholder hash, never served.
    db.users.insert_many([
        {"_id": student, "name": "Demo Student", "email": f"student-{suffix}@example.com",
         "password": "$2b$10$demo.placeholder.not.a.real.hash", "role": "student",
         "createdAt": now, "updatedAt": now, "__v": 0},
        {"_id": instructor, "name": "Demo Instructor", "email": f"instructor-{suffix}@example.com",
         "password": "$2b$10$demo.placeholder.not.a.real.hash", "role": "instructor",
         "createdAt": now, "updatedAt": now, "__v": 0},
    ])
    lecture_ids = [ObjectId() for _ in range(lectures)]
    db.lectures.insert_many([
        {"_id": lecture, "title": f"Lecture {index + 1}", "duration": 600, "order": index + 1,
         "isPreview": index == 0, "videoUrl": None, "createdAt": now, "updatedAt": now, "__v": 0}
        for index, lecture in enumerate(lecture_ids)
    ])
    course = ObjectId()
    db.courses.insert_one({
        "_id": course, "title": "Demo Course", "subtitle": "Seeded for QA",
        "description": "A course created by `flask progress seed-demo`.", "thumbnail": None,
        "instructor": instructor, "lectures": lecture_ids, "enrolledStudents": [student],
        "createdAt": now, "updatedAt": now, "__v": 0,
    })
    seeded = {
        "userId": str(student),
        "courseId": str(course),
        "lectureIds": [str(lecture) for lecture in lecture_ids],
        "token": _token(student, 86400),
        "instructorId": str(instructor),
        "instructorToken": _token(instructor, 86400),
    }
    click.echo(json.dumps(seeded) if output == "json" else shell_exports(seeded))


@progress_cli.command("ensure-indexes")
@needs_database
def ensure_indexes_command():
    """Create the courseprogresses indexes (unique user+course, dashboard, instructor views)."""
    database = mount_of(current_app).database
    database.ensure_indexes(wait=None)  # an operator waits for the build, however long
    if database.indexes.problem:
        raise click.ClickException(database.indexes.problem.detail)
    click.echo("indexes ensured on courseprogresses")


def _xapi_mount():
    """This app's mount, or a clear error when xAPI is not configured (no outbox)."""
    mount = mount_of(current_app)
    if mount.outbox is None:
        raise click.ClickException("xAPI is not configured: set PROGRESS_XAPI_ENDPOINT (docs/xapi.md)")
    return mount


@progress_cli.command("xapi-status")
@needs_database
def xapi_status_command():
    """How many statements wait for the LRS, how many are parked, and the oldest one's age."""
    status = _xapi_mount().outbox.status()
    age = status["oldest_waiting_seconds"]
    click.echo(json.dumps(status))
    click.echo(f"{status['waiting']} waiting (oldest {age if age is not None else '-'} s), "
               f"{status['parked']} parked", err=True)


@progress_cli.command("xapi-retry")
@needs_database
def xapi_retry_command():
    """Send the parked statements again (now, from this process, then by the service's relay)."""
    mount = _xapi_mount()
    retried = mount.outbox.unpark()
    mount.relay.send_due(owner=f"cli:{ObjectId()}")
    status = mount.outbox.status()
    click.echo(json.dumps({"retried": retried, **status}))


# --- a person's data (contract section 13) -------------------------------------------------

@progress_cli.command("export-user")
@click.argument("user_id")
@needs_database
def export_user_command(user_id):
    """Print USER_ID's progress records and their statements still waiting for the LRS, as JSON."""
    click.echo(json.dumps(mount_of(current_app).export_user(given_id(user_id, "USER_ID")), indent=2))


def _erased_line(erased):
    """The one line an erase prints: counts only, nothing about the person."""
    return f"erased {erased.records} progress records and {erased.statements} statements waiting for the LRS"


@progress_cli.command("erase-user")
@click.argument("user_id")
@needs_database
def erase_user_command(user_id):
    """Delete USER_ID's progress records and their waiting statements (running again is harmless)."""
    click.echo(_erased_line(mount_of(current_app).erase_user(given_id(user_id, "USER_ID"))))


@progress_cli.command("erase-course")
@click.argument("course_id")
@needs_database
def erase_course_command(course_id):
    """Delete COURSE_ID's progress records and their waiting statements (running again is harmless)."""
    click.echo(_erased_line(mount_of(current_app).erase_course(given_id(course_id, "COURSE_ID"))))


@progress_cli.command("rebuild-summaries")
@click.option("--course", "course", default=None, metavar="ID",
              help="Only this course; default every course with records or figures.")
@needs_database
def rebuild_summaries_command(course):
    """Count the instructors' figures anew from the records (writes go on meanwhile)."""
    course_id = None if course is None else given_id(course, "--course")
    for report in upkeep.rebuild_summaries(mount_of(current_app), course_id):
        click.echo(json.dumps(report))
