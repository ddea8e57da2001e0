"""`flask progress ...`: token, seed-demo and ensure-indexes, their output, the data they
write, and one clear line (no traceback) when the input or the database is wrong."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from bson import ObjectId
from pymongo.errors import OperationFailure

from progress_service import create_app
from progress_service.progress import mount_of
from progress_service.progress.database import Database

from .support import BOTH, PREFIX, SECRET, free_port

ROOT = Path(__file__).resolve().parent.parent
USER_ID = "0123456789abcdef01234567"


@pytest.fixture
def runner(app):
    """Flask's CLI runner for the app fixture."""
    return app.test_cli_runner()


def invoke(runner, *args):
    """Run `flask progress ARGS...`; returns the click Result."""
    return runner.invoke(args=["progress", *args])


def decode(token, **options):
    """The claims of a token, verified with the test secret."""
    return jwt.decode(token, SECRET, algorithms=["HS256"], **options)


def assert_clean_failure(result, *fragments):
    """Non-zero exit, an `Error:` line naming the problem, and no traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "Error:" in result.output
    for fragment in fragments:
        assert fragment in result.output


# --- token ---------------------------------------------------------------------------------

def test_token_is_valid_for_the_running_configuration(runner, client):
    """HS256 with the app's secret, sub = the user id, exp one day out by default."""
    result = invoke(runner, "token", USER_ID)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    claims = decode(token)
    assert claims["sub"] == USER_ID
    assert claims["exp"] - claims["iat"] == 86400
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    # The service itself accepts it: past the 401, to "course not found".
    response = client.get(f"{PREFIX}/{ObjectId()}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert response.get_json()["message"] == "Course not found"


def test_token_expires_option(runner):
    """--expires sets the lifetime in seconds."""
    result = invoke(runner, "token", USER_ID, "--expires", "120")
    assert result.exit_code == 0, result.output
    claims = decode(result.output.strip())
    assert claims["exp"] - claims["iat"] == 120
    assert claims["exp"] <= time.time() + 121


@pytest.mark.parametrize("app_config", [{"JWT_IDENTITY_CLAIM": "userId"}])
def test_token_uses_the_configured_identity_claim(runner, client):
    """With JWT_IDENTITY_CLAIM=userId the token carries userId, as the LMS's do, and works."""
    result = invoke(runner, "token", USER_ID)
    token = result.output.strip()
    claims = decode(token)
    assert claims["userId"] == USER_ID and "sub" not in claims
    client.set_cookie("token", token)
    response = client.get(f"{PREFIX}/{ObjectId()}")
    assert response.status_code == 404
    assert response.get_json()["message"] == "Course not found"


@pytest.mark.parametrize("user_id", ["abc", "0123456789abcdef0123456z", "0123456789abcdef012345678", ""])
def test_token_refuses_a_malformed_user_id(runner, user_id):
    """Not a 24-hex ObjectId: a usage error naming the argument, no token printed."""
    result = invoke(runner, "token", user_id)
    assert result.exit_code == 2
    assert_clean_failure(result, "USER_ID", "24 hex digits")
    assert "eyJ" not in result.output


@pytest.mark.parametrize("expires", ["0", "-5", "soon", "1000000000000"])
def test_token_refuses_a_bad_lifetime(runner, expires):
    """Zero, negative, not a number, or so long the expiry date overflows."""
    result = invoke(runner, "token", USER_ID, "--expires", expires)
    assert result.exit_code == 2
    assert_clean_failure(result, "--expires")


# --- seed-demo -----------------------------------------------------------------------------

@BOTH
def test_seed_demo_prints_ids_and_a_token(runner, app):
    """JSON on stdout: userId, courseId, lectureIds (as many as asked) and a working token."""
    result = invoke(runner, "seed-demo", "--lectures", "4")
    assert result.exit_code == 0, result.output
    seeded = json.loads(result.output)
    assert {"userId", "courseId", "lectureIds", "token"} <= set(seeded)
    assert len(seeded["lectureIds"]) == 4
    for value in [seeded["userId"], seeded["courseId"], *seeded["lectureIds"]]:
        assert ObjectId.is_valid(value) and len(value) == 24
    claims = decode(seeded["token"])
    assert claims["sub"] == seeded["userId"] and "exp" in claims


@BOTH
def test_seed_demo_writes_the_original_lms_shape(runner, app):
    """A student with a password hash, a course listing its lectures in order, the lectures."""
    seeded = json.loads(invoke(runner, "seed-demo", "--lectures", "3").output)
    with app.app_context():
        db = mount_of(app).database.db()
        user = db.users.find_one({"_id": ObjectId(seeded["userId"])})
        course = db.courses.find_one({"_id": ObjectId(seeded["courseId"])})
        lectures = {raw["_id"]: raw for raw in db.lectures.find({"_id": {"$in": course["lectures"]}})}
    assert user["role"] == "student" and user["name"] and user["email"]
    assert user["password"]
    assert [str(lecture) for lecture in course["lectures"]] == seeded["lectureIds"]
    assert course["title"] and isinstance(course["instructor"], ObjectId)
    assert [lectures[lecture]["order"] for lecture in course["lectures"]] == [1, 2, 3]
    assert all(raw["title"] for raw in lectures.values())


@BOTH
def test_seeded_data_works_through_the_api_without_leaking_the_password(runner, client):
    """The printed token and ids drive the API: 404 before a record, then a PATCH creates it."""
    seeded = json.loads(invoke(runner, "seed-demo").output)
    course, lectures = seeded["courseId"], seeded["lectureIds"]
    client.set_cookie("token", seeded["token"])
    assert client.get(f"{PREFIX}/{course}").status_code == 404
    response = client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", data='{"isCompleted": true}')
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["user"]["_id"] == seeded["userId"]
    assert data["user"]["name"] == "Demo Student"
    assert [entry["lecture"] for entry in data["lectureProgress"]] == lectures
    assert data["completionPercentage"] == 33
    assert "password" not in response.get_data(as_text=True)


def test_seed_demo_twice_gives_two_independent_demos(runner):
    """Each run makes new ids (emails do not collide), so smoke runs never share a record."""
    first = json.loads(invoke(runner, "seed-demo").output)
    second = json.loads(invoke(runner, "seed-demo").output)
    assert first["userId"] != second["userId"] and first["courseId"] != second["courseId"]


@pytest.mark.parametrize("lectures", ["0", "-1", "501", "three"])
def test_seed_demo_refuses_a_bad_lecture_count(runner, app, lectures):
    """Out of range or not a number: a usage error, nothing written."""
    result = invoke(runner, "seed-demo", "--lectures", lectures)
    assert result.exit_code == 2
    assert_clean_failure(result, "--lectures")
    with app.app_context():
        assert mount_of(app).database.db().users.count_documents({}) == 0


def test_seed_demo_reports_a_refusing_database_in_one_line(runner, monkeypatch):
    """Reachable but refusing (e.g. not authorized): its reason, not a traceback."""

    class Refusing:
        def __getattr__(self, name):
            return self

        def insert_many(self, *args, **kwargs):
            raise OperationFailure("not authorized on lms to execute command insert", code=13)

    monkeypatch.setattr(Database, "db", lambda self: Refusing())
    result = invoke(runner, "seed-demo")
    assert result.exit_code == 1
    assert_clean_failure(result, "refused", "not authorized")


# --- ensure-indexes ------------------------------------------------------------------------

@BOTH
def test_ensure_indexes_creates_the_unique_index(runner, app):
    """The (user, course) unique index the original LMS has, under the same name."""
    result = invoke(runner, "ensure-indexes")
    assert result.exit_code == 0, result.output
    assert "indexes ensured" in result.output
    with app.app_context():
        indexes = mount_of(app).database.db().courseprogresses.index_information()
    assert indexes["user_1_course_1"]["unique"] is True
    assert indexes["user_1_course_1"]["key"] == [("user", 1), ("course", 1)]


# --- the database is down ------------------------------------------------------------------

@pytest.fixture
def offline_runner():
    """The CLI of an app whose MONGODB_URI points at a port nobody listens on."""
    uri = f"mongodb://127.0.0.1:{free_port()}/lms?directConnection=true"
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": uri})
    yield app.test_cli_runner()
    mount_of(app).database.close()


@pytest.mark.parametrize("command", [["seed-demo"], ["ensure-indexes"]])
def test_unreachable_database_is_one_clear_line(offline_runner, command):
    """Names the (redacted) URI and what to check; exit 1; no traceback."""
    result = invoke(offline_runner, *command)
    assert result.exit_code == 1
    assert_clean_failure(result, "cannot reach the database at mongodb://127.0.0.1:", "MONGODB_URI")
    assert "directConnection" not in result.output


def test_token_needs_no_database(offline_runner):
    """A token is only signed, so it works while the database is down."""
    result = invoke(offline_runner, "token", USER_ID)
    assert result.exit_code == 0
    assert decode(result.output.strip())["sub"] == USER_ID


def test_redacted_uri_hides_credentials():
    """user:password and options never reach the terminal."""
    from progress_service.standalone.cli import _redacted

    assert _redacted("mongodb://ada:s3cret@db.example:27017/lms?authSource=admin") == \
        "mongodb://db.example:27017/lms"


@pytest.mark.slow
def test_flask_command_without_the_embedded_database(tmp_path):
    """The real entry point, `flask --app wsgi`, with MONGODB_URI unset and no embedded
    database running: one line on stderr telling to start it, exit 1, no traceback."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("MONGODB_URI", "JWT_SECRET_KEY", "FLASK_APP")}
    env.update({"EMBEDDED_DB_PORT": str(free_port()), "PROGRESS_ENV": "development",
                "PROGRESS_VAR_DIR": str(tmp_path)})
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "progress"]
    seed = subprocess.run([*flask, "seed-demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert seed.returncode == 1
    assert seed.stdout == ""
    assert "Traceback" not in seed.stderr
    assert f"cannot reach the database at mongodb://127.0.0.1:{env['EMBEDDED_DB_PORT']}/lms" in seed.stderr
    assert "make run" in seed.stderr
    # The token command signs with the development key that `make run` would use.
    token = subprocess.run([*flask, "token", USER_ID], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert token.returncode == 0, token.stderr
    secret = (tmp_path / "dev-secret").read_text().strip()
    assert jwt.decode(token.stdout.strip(), secret, algorithms=["HS256"])["sub"] == USER_ID


def test_seed_demo_shell_format_sets_the_qa_scripts_variables(runner):
    """--format shell: `eval` it and TOKEN, COURSE_ID, LECTURE_IDS... are set for scripts/qa/."""
    result = invoke(runner, "seed-demo", "--lectures", "2", "--format", "shell")
    assert result.exit_code == 0, result.output
    shown = subprocess.run(
        ["bash", "-c", 'eval "$1"; printf "%s|%s|%s|%s|%s" "$USER_ID" "$COURSE_ID" "$LECTURE_IDS" '
                       '"$TOKEN" "$INSTRUCTOR_TOKEN"', "_", result.output],
        capture_output=True, text=True, check=True).stdout
    user, course, lectures, token, instructor_token = shown.split("|")
    assert ObjectId.is_valid(course) and len(lectures.split()) == 2
    assert decode(token)["sub"] == user
    assert decode(instructor_token)["sub"] != user


# --- rebuild-summaries ------------------------------------------------------------------------

@BOTH
def test_rebuild_summaries_counts_every_course_anew(runner, app, lms, client):
    """Every course with records gets figures built anew from them (a new key), one JSON
    line each; the summary then equals the records; a course gone from the LMS is skipped."""
    from .figures_oracle import figures_key, oracle, shown
    from .support import Api, make_token

    teacher = lms.user(role="instructor")
    first, lectures = lms.course(2, instructor=teacher)
    second, others = lms.course(1, instructor=teacher)
    gone = lms.course(1)
    for student in (lms.user(), lms.user()):
        Api(client, student).patch(first, lectures[0], {"isCompleted": True})
        Api(client, student).patch(second, others[0], {"isCompleted": True})
        Api(client, student).patch(gone[0], gone[1][0], {"isCompleted": True})
    lms.db.courses.delete_one({"_id": gone[0]})
    headers = {"Authorization": f"Bearer {make_token(teacher)}"}
    assert client.get(f"{PREFIX}/{first}/summary", headers=headers).status_code == 200
    key = figures_key(lms.db, first)
    result = invoke(runner, "rebuild-summaries")
    assert result.exit_code == 0, result.output
    reports = {line["course"]: line for line in map(json.loads, result.output.splitlines())}
    assert reports[str(first)]["students"] == 2 and reports[str(second)]["students"] == 2
    assert reports[str(gone[0])] == {"course": str(gone[0]), "skipped": "no such course in the catalog"}
    assert figures_key(lms.db, first) not in (None, key)
    data = client.get(f"{PREFIX}/{second}/summary", headers=headers).json["data"]
    assert shown(data) == oracle(lms.db, second)
    one = invoke(runner, "rebuild-summaries", "--course", str(first))
    assert one.exit_code == 0 and [json.loads(line)["course"] for line in one.output.splitlines()] == [str(first)]


def test_rebuild_summaries_refuses_a_malformed_course_id(runner):
    """A course id that is not one: one clear line, no traceback."""
    assert_clean_failure(invoke(runner, "rebuild-summaries", "--course", "nope"), "--course")
