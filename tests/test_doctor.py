"""`flask progress doctor` (contract section 11): a mount checked against its real database.

Each test sets a database up the way a host or an operator gets it wrong (or right) and reads
what the command prints and its exit status: 0 when the mount can serve, 1 when it cannot.
"""
import re

import mongoengine
import pytest
from bson import ObjectId
from flask import Flask

from progress_service import create_app
from progress_service.progress import MongoCatalog, Progress, mount_of

from .support import SECRET, WIRE, EmbeddedServer, Lms, free_port

MONGOENGINE_STYLE = {"courses": "course", "lectures": "lecture", "users": "user"}


def doctor(app, *args):
    """`flask progress doctor ARGS...` on `app`: (exit status, output)."""
    result = app.test_cli_runner().invoke(args=["progress", "doctor", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def line(output, topic):
    """The lines about `topic` (its finding and its `change:` line), as one string."""
    found = re.findall(rf"^  (?:ok  |warn|FAIL)  {topic} .*(?:\n {{8}}.*)?", output, re.M)
    assert found, output
    return "\n".join(found)


@pytest.fixture
def standalone(db_uri):
    """The standalone app on the wire server, with the original LMS's data in it."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": db_uri})
    with app.app_context():
        lms = Lms(mount_of(app).database.db())
    yield app, lms
    mount_of(app).database.close()


@WIRE
def test_a_mount_that_can_serve_says_what_it_found_and_exits_0(standalone):
    """The original LMS's collections: the course, its lectures and durations, its students."""
    app, lms = standalone
    instructor = lms.user(role="instructor", name="Grace")
    lms.user(), lms.user()
    lms.course(3, instructor=instructor, durations=[60, 120, 180], title="Flask 101")
    status, output = doctor(app)
    assert status == 0, output
    assert "the extension's own check: HS256" in line(output, "sign-in")
    assert "answers: its own client for mongodb://127.0.0.1:" in line(output, "database")
    assert "can be made (no duplicate records)" in line(output, "index")
    assert "('Flask 101') in `courses`" in line(output, "catalog")
    assert "3 lectures listed, 3 found in `lectures`, 3 with a duration" in line(output, "lectures")
    assert "finds its instructor 'Grace' in `users`" in line(output, "users")
    assert "`enrolledStudents` lists 2 students" in line(output, "enrollment")
    assert output.rstrip().endswith("=> it can serve")


@WIRE
def test_mongoengine_collection_names_are_named_with_the_catalog_that_reads_them(db_uri):
    """A host whose documents are in `course`, `lecture`, `user`: why every course is 404, then fixed."""
    mongoengine.connect(alias="named", host=db_uri, uuidRepresentation="standard")
    try:
        db = mongoengine.get_db("named")
        lecture = db.lecture.insert_one({"title": "Intro", "duration": 90}).inserted_id
        teacher = db.user.insert_one({"name": "Tea", "role": "instructor"}).inserted_id
        db.course.insert_one({"title": "Pottery", "lectures": [lecture], "instructor": teacher})
        app = Flask("named_host")
        app.config.update(JWT_SECRET_KEY=SECRET, PROGRESS_DB_ALIAS="named")
        Progress(app)
        status, output = doctor(app)
        assert status == 1
        found = line(output, "catalog")
        assert "FAIL  catalog     no course in `courses`: every course would be 404" in found
        assert "the database has: course, lecture, user" in found
        assert "change: your documents look like MongoEngine's defaults: MongoCatalog(courses='course', " \
               "lectures='lecture', users='user')" in found
        assert "the host's MongoEngine connection 'named'" in line(output, "database")
        assert output.rstrip().endswith("=> it cannot serve (1 to change)")

        fixed = Flask("named_host")
        fixed.config.update(JWT_SECRET_KEY=SECRET, PROGRESS_DB_ALIAS="named")
        Progress(fixed, catalog=MongoCatalog(**MONGOENGINE_STYLE))
        status, output = doctor(fixed)
        assert status == 0, output
        assert "('Pottery') in `course`" in line(output, "catalog")
        assert "1 lectures listed, 1 found in `lecture`, 1 with a duration" in line(output, "lectures")
        assert "finds its instructor 'Tea' in `user`" in line(output, "users")
        assert "the course has no `enrolledStudents`" in line(output, "enrollment")
    finally:
        mongoengine.disconnect("named")


@WIRE
def test_ids_the_catalog_cannot_parse_are_named(standalone):
    """Courses with integer ids under the default parse_id: clients' paths would be 400."""
    app, lms = standalone
    lms.db.courses.insert_one({"_id": 42, "title": "Numbers", "lectures": []})
    status, output = doctor(app)
    assert status == 1
    found = line(output, "catalog")
    assert "the course id '42' in `courses` is not one parse_id takes (must be 24 hex digits" in found
    assert "MongoCatalog(parse_id=int | str | uuid.UUID | fn)" in found


@WIRE
def test_a_given_course_is_checked_and_a_missing_one_fails(standalone):
    """--course: the catalog must find it; a course without lectures or enrollment list warns."""
    app, lms = standalone
    course, _ = lms.course(0, no_enrollment_list=True, title="Empty")
    status, output = doctor(app, "--course", str(course))
    assert status == 0, output
    assert "0 lectures listed" in line(output, "lectures") and "warn" in line(output, "lectures")
    assert "no `enrolledStudents`: every signed-in user may use it" in line(output, "enrollment")
    status, output = doctor(app, "--course", str(ObjectId()))
    assert status == 1 and "the catalog finds no course" in line(output, "catalog")
    status, output = doctor(app, "--course", "not-an-id")
    assert status == 1 and "is not one parse_id takes" in line(output, "catalog")


@WIRE
@pytest.mark.parametrize("problem", ["not unique", "duplicates"])
def test_a_unique_index_that_cannot_be_made_fails(standalone, problem):
    """A non-unique (user, course) index, or duplicate records that would stop the unique one."""
    app, lms = standalone
    lms.course(1)
    records = lms.db.courseprogresses
    user, course = ObjectId(), ObjectId()
    if problem == "not unique":
        records.create_index([("user", 1), ("course", 1)], name="user_1_course_1")
        expected = "user_1_course_1 on courseprogresses (user, course) is not unique"
    else:
        records.insert_many([{"user": user, "course": course}, {"user": user, "course": course}])
        expected = "holds several records for one (user, course)"
    indexes = records.index_information()
    status, output = doctor(app)
    assert status == 1 and expected in line(output, "index")
    assert records.index_information() == indexes, "the doctor only looks"


def test_an_unreachable_database_fails_and_stops_there():
    """Nothing else can be checked: one line naming the database, exit 1."""
    uri = f"mongodb://127.0.0.1:{free_port()}/lms?directConnection=true&serverSelectionTimeoutMS=300"
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": uri})
    try:
        status, output = doctor(app)
    finally:
        mount_of(app).database.close()
    assert status == 1
    assert "FAIL  database    does not answer" in output and "change: check MONGODB_URI" in output
    assert "catalog" not in output


def test_xapi_without_transactions_fails(tmp_path):
    """With an LRS configured, statements need transactions: a standalone mongod cannot serve."""
    server = EmbeddedServer(tmp_path / "standalone", args=["--standalone"]).start()
    try:
        app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": server.uri("doctor_xapi"),
                          "PROGRESS_XAPI_ENDPOINT": "http://127.0.0.1:9/xapi/",
                          "PROGRESS_XAPI_HOMEPAGE": "https://lms.example"})
        status, output = doctor(app)
        mount_of(app).database.close()
    finally:
        server.stop()
    assert status == 1
    assert "transactions" in line(output, "xapi") and "replica set" in line(output, "xapi")


@WIRE
def test_the_mount_group_reaches_a_host_app_and_each_mount_is_checked(db_uri):
    """A host's app gets `progress doctor` from its mount; two mounts share the group; --mount picks."""
    app = Flask("host_with_two")
    app.config.update(JWT_SECRET_KEY=SECRET, MONGODB_URI=db_uri)
    Progress(app)
    Progress(app, url_prefix="/v2/progress", name="second")
    try:
        assert list(app.cli.commands["progress"].commands) == ["doctor"]
        status, output = doctor(app)
        assert output.count("mount ") == 2 and "mount 'second' at /v2/progress" in output
        assert status == 1  # no course in `courses` yet
        status, output = doctor(app, "--mount", "second")
        assert output.count("mount ") == 1
        status, output = doctor(app, "--mount", "third")
        assert status == 2 and "no mount 'third' (mounts: progress, second)" in output
    finally:
        for name in ("progress", "second"):
            mount_of(app, name).database.close()


def test_a_hosts_own_progress_command_is_left_alone(db_uri):
    """The host has a `progress` command of its own: the mount adds none over it."""
    import click

    app = Flask("host_with_command")

    @app.cli.command("progress")
    def own():
        """The host's."""
        click.echo("the host's own")

    app.config.update(JWT_SECRET_KEY=SECRET, MONGODB_URI="mongodb://127.0.0.1:9/lms")
    Progress(app)
    assert app.cli.commands["progress"] is own
