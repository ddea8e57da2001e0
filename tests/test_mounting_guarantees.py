"""Contract section 9, bullet by bullet: mounting (or importing) changes nothing the host relies on.

Each test runs against the real MongoDB-wire server. Where import order or a process's first
socket matters, the check runs in a fresh interpreter (tests/fresh_interpreter.py).

- Registry: test_the_hosts_documents_keep_their_names_and_behaviour_in_either_import_order,
  test_importing_the_extension_loads_nothing_of_the_standalone_app_and_declares_only_its_record
- Connections: test_two_apps_serve_from_their_own_databases_also_at_the_same_time,
  test_the_hosts_explicit_alias_is_used_and_no_other_apps_settings_change,
  test_a_mount_follows_its_alias_to_another_database_indexes_included (fails: extension bug)
  (and test_mounting.py::test_progress_uses_the_hosts_flask_mongoengine_connection)
- Config: test_a_host_with_its_jwt_manager_gets_no_config_written,
  test_a_host_without_a_jwt_manager_gets_no_jwt_setting_of_ours
- Mounting twice / without a database: test_two_names_on_one_app_both_serve_and_the_same_name_is_refused,
  test_mounting_without_a_database_is_refused_at_mount_time_without_io,
  test_mounting_opens_no_socket_until_the_first_request
- The host's JWT, loaders, handlers, JSON, logging, responses: test_mounting.py (byte for byte,
  loaders); CSRF: test_the_csrf_header_is_allowed_cross_origin_and_a_write_with_it_works
- The host's catalog everywhere, the save rule included:
  test_the_save_rule_and_every_read_follow_the_hosts_catalog_not_the_courses_collection
"""
import copy
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import mongoengine
import pymongo
import pytest
import requests
from bson import ObjectId
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_mongoengine import MongoEngine
from pymongo import monitoring

from examples.host_lms.catalog import LmsCatalog
from examples.host_lms.extensions import jwt as host_jwt
from progress_service.progress import MountError, Progress, mount_of

from .hosting import (
    MOUNT_NAME,
    PASSWORD,
    Campus,
    campus,  # noqa: F401  (fixture)
    host_db,
    host_mongo,
    make_host,  # noqa: F401  (fixture)
    served,
    stored,
)
from .support import PREFIX, SECRET, WIRE, make_token

ROOT = Path(__file__).resolve().parent.parent
SPA = "http://127.0.0.1:5173"


def fresh_interpreter(*args):
    """Run a check of tests/fresh_interpreter.py in a new Python process; its JSON answer."""
    done = subprocess.run([sys.executable, "-m", "tests.fresh_interpreter", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- MongoEngine's document registry --------------------------------------------------------


def test_the_hosts_documents_keep_their_names_and_behaviour_in_either_import_order(wire_server):
    """User, Course, Lecture, CourseProgress: the host's, saved and dereferenced as without us."""
    runs = {mode: fresh_interpreter("import-order", mode, wire_server.uri(f"order_{uuid.uuid4().hex[:10]}"))
            for mode in ("plain", "host-first", "progress-first")}
    assert runs["plain"]["extension_loaded"] is False
    assert runs["host-first"]["extension_loaded"] is runs["progress-first"]["extension_loaded"] is True
    for run in runs.values():
        assert run["registry"] == {name: f"examples.host_lms.models.{name}"
                                   for name in ("User", "Course", "Lecture", "CourseProgress")}
        assert set(run["host"]["fields"].values()) == {
            "examples.host_lms.models.User", "examples.host_lms.models.Course", "examples.host_lms.models.Lecture"}
    # The same saves store the same documents and read back the same, with or without us.
    assert runs["host-first"]["host"] == runs["plain"]["host"] == runs["progress-first"]["host"]
    host = runs["plain"]["host"]
    assert host["course"] == ["Flask 101", "Grace", ["Part 1", "Part 2", "Part 3"], ["ada@example.com"]]
    assert host["lecture"] == ["Part 3", "Flask 101", "grace@example.com"]
    # The host's CourseProgress is stored as the host set it: our save rule is not its.
    assert host["progress"] == ["Ada", "Flask 101", 77, [["Part 2", True, 5.0]]]
    # And the mounted extension serves next to it, its record readable by the host's class.
    for mode in ("host-first", "progress-first"):
        assert runs[mode]["served"] == {"status": 200, "percentage": 33, "host_view": [
            "Bo", "Flask 101", 33, [["Part 1", False], ["Part 2", True], ["Part 3", False]]]}


def test_importing_the_extension_loads_nothing_of_the_standalone_app_and_declares_only_its_record():
    """`import progress_service.progress`: no standalone module, one document, no connection, no I/O."""
    found = fresh_interpreter("import")
    assert found["modules"] and all(name == "progress_service" or name.startswith("progress_service.progress")
                                    for name in found["modules"])
    assert not any(name.startswith("progress_service.standalone") for name in found["modules"])
    assert found["flask_mongoengine"] is False
    assert found["documents"] == ["ProgressServiceRecord"]
    assert (found["aliases"], found["threads"], found["network"]) == ([], [], [])


# --- connections and aliases ----------------------------------------------------------------


STUDENTS = [ObjectId() for _ in range(8)]
COURSE = ObjectId()


def seed_campus(database, title, lectures):
    """The same course and student ids in each campus's database, with its own lectures."""
    database.users.insert_many([{"_id": student, "name": f"{title} student", "email": f"{student}@x.example",
                                 "role": "student"} for student in STUDENTS])
    database.lectures.insert_many([{"_id": lecture, "title": f"{title} part"} for lecture in lectures])
    database.courses.insert_one({"_id": COURSE, "title": title, "instructor": ObjectId(), "lectures": lectures,
                                 "enrolledStudents": STUDENTS})


def campus_app(name, database_settings):
    """A small host: flask-mongoengine under its own alias, or MONGODB_URI; progress mounted."""
    app = Flask(name)
    app.config.update(JWT_SECRET_KEY=SECRET, **database_settings)
    if "MONGODB_SETTINGS" in database_settings:
        MongoEngine(app)
    Progress(app)
    return app


DATABASE_STYLES = {
    "two aliases": lambda name, uri: {"MONGODB_SETTINGS": {"host": uri, "alias": name}, "PROGRESS_DB_ALIAS": name},
    "two URIs": lambda name, uri: {"MONGODB_URI": uri},
}


@pytest.mark.parametrize("style", DATABASE_STYLES)
def test_two_apps_serve_from_their_own_databases_also_at_the_same_time(wire_server, style):
    """8 students x 2 apps on threads, interleaved: each database holds exactly its own records."""
    names = {"A": f"campus_a_{uuid.uuid4().hex[:8]}", "B": f"campus_b_{uuid.uuid4().hex[:8]}"}
    lectures = {"A": [ObjectId() for _ in range(2)], "B": [ObjectId() for _ in range(3)]}
    client = pymongo.MongoClient(wire_server.uri())
    databases = {key: client[name] for key, name in names.items()}
    for key in names:
        seed_campus(databases[key], f"Campus {key}", lectures[key])
    apps = {key: campus_app(f"campus_{key}", DATABASE_STYLES[style](name, wire_server.uri(name)))
            for key, name in names.items()}
    try:
        early = STUDENTS[0]
        with apps["A"].test_client() as a:
            headers = {"Authorization": f"Bearer {make_token(early)}"}
            assert a.patch(f"{PREFIX}/{COURSE}/lectures/{lectures['A'][0]}", json={"isCompleted": True},
                           headers=headers).status_code == 200
        with apps["B"].test_client() as b:
            assert b.get(f"{PREFIX}/{COURSE}", headers=headers).json["message"] == \
                "No progress record found for this user and course"
        databases["A"].courseprogresses.delete_many({})

        with served(apps["A"]) as url_a, served(apps["B"]) as url_b:
            urls = {"A": url_a, "B": url_b}
            start = threading.Barrier(2 * len(STUDENTS))
            answers, failures = [], []

            def student(key, user_id):
                """Three lectures' worth of PATCHes and a GET, started with everyone else."""
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {make_token(user_id)}"
                start.wait()
                try:
                    for step in range(3):
                        lecture = lectures[key][step % len(lectures[key])]
                        answers.append((key, session.patch(f"{urls[key]}{PREFIX}/{COURSE}/lectures/{lecture}",
                                                           json={"isCompleted": True}, timeout=30).json()))
                    answers.append((key, session.get(f"{urls[key]}{PREFIX}/{COURSE}", timeout=30).json()))
                except Exception as exc:  # noqa: BLE001  (reported below)
                    failures.append(exc)

            threads = [threading.Thread(target=student, args=(key, user_id))
                       for user_id in STUDENTS for key in ("A", "B")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert failures == []
        assert len(answers) == 2 * len(STUDENTS) * 4
        for key, body in answers:
            assert body["status"] == "success", body
            assert body["data"]["course"]["title"] == f"Campus {key}"
            assert [entry["lecture"] for entry in body["data"]["lectureProgress"]] == [str(x) for x in lectures[key]]
        for key, database in databases.items():
            records = list(database.courseprogresses.find())
            assert sorted(record["user"] for record in records) == sorted(STUDENTS)
            for record in records:
                assert [entry["lecture"] for entry in record["lectureProgress"]] == lectures[key]
                assert (record["completionPercentage"], record["isCompleted"]) == (100, True)
    finally:
        for app in apps.values():
            mount_of(app).database.close()
        for name in names.values():
            mongoengine.disconnect(name)
            client.drop_database(name)
        client.close()


def test_the_hosts_explicit_alias_is_used_and_no_other_apps_settings_change(wire_server):
    """A mount reads PROGRESS_DB_ALIAS's connection; mounting a second app leaves the first as it was."""
    first_name, second_name = f"alias_one_{uuid.uuid4().hex[:8]}", f"alias_two_{uuid.uuid4().hex[:8]}"
    first = campus_app("first", DATABASE_STYLES["two aliases"](first_name, wire_server.uri(first_name)))
    try:
        mount = mount_of(first)
        settings_before = copy.deepcopy(mongoengine.connection._connection_settings)
        first_config = copy.deepcopy(dict(first.config))
        second = campus_app("second", DATABASE_STYLES["two URIs"](second_name, wire_server.uri(second_name)))
        assert mongoengine.connection._connection_settings == settings_before  # the second registered nothing
        assert dict(first.config) == first_config and mount_of(first) is mount
        assert mount.database.uses_host_connection and not mount_of(second).database.uses_host_connection
        assert mount.database.db() is mongoengine.connection.get_db(first_name)
        assert mount.database.db().name == first_name and mount_of(second).database.db().name == second_name
        mount_of(second).database.close()
    finally:
        mongoengine.disconnect(first_name)


def test_a_mount_follows_its_alias_to_another_database_indexes_included(wire_server):
    """The host re-points its alias (disconnect, connect): records and the unique index follow.

    Fails today (extension bug): the mount's IndexGuard is checked once per Database object,
    not per database, so the second database never gets user_1_course_1 and two first writes
    there could create two records for one (user, course).
    """
    first_name, second_name = f"repoint_a_{uuid.uuid4().hex[:8]}", f"repoint_b_{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(wire_server.uri())
    for name in (first_name, second_name):
        seed_campus(client[name], name, [ObjectId()])
    app = campus_app("repointed", DATABASE_STYLES["two aliases"]("repointed", wire_server.uri(first_name)))
    headers = {"Authorization": f"Bearer {make_token(STUDENTS[0])}"}
    lecture = client[second_name].courses.find_one()["lectures"][0]
    try:
        with app.test_client() as browser:
            assert browser.get(f"{PREFIX}/{COURSE}", headers=headers).status_code == 404  # no record yet
            mongoengine.disconnect("repointed")
            mongoengine.connect(alias="repointed", host=wire_server.uri(second_name), uuidRepresentation="standard")
            response = browser.patch(f"{PREFIX}/{COURSE}/lectures/{lecture}", json={"isCompleted": True},
                                     headers=headers)
        assert response.status_code == 200 and response.json["data"]["course"]["title"] == second_name
        assert client[second_name].courseprogresses.count_documents({}) == 1
        assert client[first_name].courseprogresses.count_documents({}) == 0
        unique = [index for index in client[second_name].courseprogresses.list_indexes()
                  if index["key"] == {"user": 1, "course": 1}]
        assert unique and unique[0].get("unique"), "no unique (user, course) index in the new database"
    finally:
        mongoengine.disconnect("repointed")
        for name in (first_name, second_name):
            client.drop_database(name)
        client.close()


# --- config ---------------------------------------------------------------------------------


@WIRE
def test_a_host_with_its_jwt_manager_gets_no_config_written(make_host):
    """The extension reads its keys with their defaults: the host's app.config stays as it was."""
    app = make_host(LMS_MOUNT_PROGRESS=False)
    before = copy.deepcopy(dict(app.config))
    Progress(app, url_prefix="/lms/api/progress", catalog=LmsCatalog(), name=MOUNT_NAME)
    assert dict(app.config) == before
    assert app.extensions["flask-jwt-extended"] is host_jwt
    assert not any(key.startswith("PROGRESS_") for key in app.config)
    campus = Campus(app)
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    assert campus.patch(course.id, lectures[0], {"isCompleted": True}).json["data"]["completionPercentage"] == 50
    assert dict(app.config) == before


@WIRE
def test_a_host_without_a_jwt_manager_gets_no_jwt_setting_of_ours(db_uri):
    """No JWTManager of its own: the extension writes no key. The manager it makes (so that the
    host's create_access_token works) sets flask-jwt-extended's own defaults only, exactly as a
    JWTManager(app) of the host's would; our check reads section 5's defaults, HS256 only."""
    config = {"JWT_SECRET_KEY": SECRET, "MONGODB_URI": db_uri, "JWT_ACCESS_COOKIE_NAME": "session",
              "JWT_ALGORITHM": "HS512", "SOMETHING_OF_THE_HOSTS": {"kept": True}}
    app, twin = Flask("bare_host"), Flask("bare_host")
    app.config.update(copy.deepcopy(config))
    twin.config.update(copy.deepcopy(config))
    Progress(app)
    JWTManager(twin)
    mount = mount_of(app)
    try:
        assert dict(app.config) == dict(twin.config)
        assert app.config["JWT_TOKEN_LOCATION"] == ("headers",)  # flask-jwt-extended's, not ours
        assert isinstance(app.extensions["flask-jwt-extended"], JWTManager)
        browser = app.test_client()
        # The host's cookie name; section 5's locations (cookie, then header) and HS256.
        browser.set_cookie("session", make_token(ObjectId()))
        assert browser.get(f"{PREFIX}/{ObjectId()}").json == {"status": "fail", "message": "Course not found"}
        browser.set_cookie("session", make_token(ObjectId(), algorithm="HS512"))
        assert browser.get(f"{PREFIX}/{ObjectId()}").json == {"status": "fail",
                                                             "message": "Invalid token"}
    finally:
        mount.database.close()


# --- mounting twice, mounting without a database --------------------------------------------


@WIRE
def test_two_names_on_one_app_both_serve_and_the_same_name_is_refused(campus):
    """A second name and prefix works next to the first; the same name, or the host's, is refused."""
    app = campus.app
    second = Progress(app, url_prefix="/v2/progress", catalog=LmsCatalog(), name="progress_v2")
    assert mount_of(app, "progress_v2") is not mount_of(app, MOUNT_NAME)
    student = campus.account()
    course, lectures = campus.course(2)
    campus.login(student)
    assert campus.patch(course.id, lectures[0], {"isCompleted": True}).status_code == 200
    v2 = campus.client.get(f"/v2/progress/{course.id}")
    assert v2.status_code == 200 and v2.json == campus.client.get(campus.url(course.id)).json
    assert second.name == "progress_v2"

    rules = sorted(rule.rule for rule in app.url_map.iter_rules())
    mounts = dict(app.extensions["progress"])
    for name, prefix in ((MOUNT_NAME, "/v3/progress"), ("lms", "/v4/progress")):
        with pytest.raises(MountError) as refused:
            Progress(app, url_prefix=prefix, catalog=LmsCatalog(), name=name)
        assert f"already mounted on this app as {name!r}" in str(refused.value)
        assert "another name" in str(refused.value)
    assert sorted(rule.rule for rule in app.url_map.iter_rules()) == rules
    assert app.extensions["progress"] == mounts


@pytest.mark.parametrize("case", ["nothing", "host-alias-elsewhere"])
def test_mounting_without_a_database_is_refused_at_mount_time_without_io(case):
    """No connection under PROGRESS_DB_ALIAS and no MONGODB_URI: MountError naming both, nothing touched."""
    found = fresh_interpreter("mount-without-database", case)
    assert "PROGRESS_DB_ALIAS" in found["error"] and "MONGODB_URI" in found["error"]
    assert "'default'" in found["error"]
    assert (found["network"], found["threads"]) == ([], [])
    assert found["config_unchanged"] and found["extensions_unchanged"] and found["blueprints"] == []


def test_mounting_opens_no_socket_until_the_first_request(wire_server):
    """With MONGODB_URI the mount does no I/O and starts no thread; the first request connects."""
    found = fresh_interpreter("lazy-mount", wire_server.uri(f"lazy_{uuid.uuid4().hex[:8]}"))
    assert found["at_mount"] == {"network": [], "threads": []}
    assert found["first_request"] == [404, {"status": "fail", "message": "Course not found"}]
    assert found["network_after_request"] is True


# --- the host's CSRF double submit ----------------------------------------------------------


@WIRE
@pytest.mark.parametrize("header", ["X-CSRF-TOKEN", "X-LMS-CSRF"])
def test_the_csrf_header_is_allowed_cross_origin_and_a_write_with_it_works(make_host, header):
    """The host turns the double submit on: its SPA on another origin can preflight and write."""
    config = {"JWT_COOKIE_CSRF_PROTECT": True, "CLIENT_URL": SPA}
    if header != "X-CSRF-TOKEN":
        config["JWT_ACCESS_CSRF_HEADER_NAME"] = header
    campus = Campus(make_host(**config))
    student = campus.account()
    course, lectures = campus.course(2)
    with served(campus.app) as base:
        browser = requests.Session()
        assert browser.post(f"{base}/login", json={"email": student.email, "password": PASSWORD}).status_code == 200
        csrf = browser.cookies["csrf_access_token"]
        url = base + campus.url(course.id, "lectures", lectures[1])

        preflight = requests.options(url, headers={"Origin": SPA, "Access-Control-Request-Method": "PATCH",
                                                   "Access-Control-Request-Headers": f"content-type,{header.lower()}"})
        assert preflight.status_code == 200
        allowed = [name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")]
        assert header.lower() in allowed and "content-type" in allowed
        assert preflight.headers["Access-Control-Allow-Origin"] == SPA
        assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
        assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]

        without = browser.patch(url, json={"isCompleted": True}, headers={"Origin": SPA})
        assert (without.status_code, without.json()) == (401, {"status": "fail", "message": "Invalid token"})
        assert stored(student.id, course.id) is None
        written = browser.patch(url, json={"isCompleted": True}, headers={"Origin": SPA, header: csrf})
        assert written.status_code == 200 and written.headers["Access-Control-Allow-Origin"] == SPA
        assert written.json()["data"]["completionPercentage"] == 50
    assert [entry["isCompleted"] for entry in stored(student.id, course.id)["lectureProgress"]] == [False, True]


# --- the host's catalog, the save rule included ---------------------------------------------


class Commands(monitoring.CommandListener):
    """The collections each command of the host's MongoClient addresses."""

    def __init__(self):
        self.seen = []

    def started(self, event):
        """Note (command, collection)."""
        target = event.command.get(event.command_name)
        self.seen.append((event.command_name, target if isinstance(target, str) else None))

    def succeeded(self, event):
        """Nothing to note."""

    def failed(self, event):
        """Nothing to note."""

    def collections(self):
        """Every collection addressed so far."""
        return {collection for _, collection in self.seen if collection}


@WIRE
def test_the_save_rule_and_every_read_follow_the_hosts_catalog_not_the_courses_collection(make_host, db_uri):
    """A `courses` document with the host course's id says otherwise: nothing of it is ever read."""
    commands = Commands()
    campus = Campus(make_host(mongo=host_mongo(db_uri, event_listeners=[commands])))
    teacher = campus.account(name="Grace Teacher", role="instructor")
    student = campus.account()
    course, lectures = campus.course(3, instructor=teacher, durations=[600, 600, 100])
    stale = [ObjectId(), ObjectId()]
    # What the default catalog would read: two other lectures, nobody enrolled, long lectures.
    host_db().courses.insert_one({"_id": course.id, "title": "Stale copy", "instructor": ObjectId(),
                                  "lectures": stale, "enrolledStudents": []})
    host_db().lectures.insert_many([{"_id": lecture, "title": "Stale", "duration": 10_000}
                                    for lecture in [*stale, *lectures]])
    host_db().users.insert_one({"_id": student.id, "name": "Stale Name", "email": "stale@x.example"})
    campus.login(student)
    commands.seen.clear()

    first = campus.patch(course.id, lectures[0], {"isCompleted": True})
    assert first.status_code == 200
    assert [entry["lecture"] for entry in first.json["data"]["lectureProgress"]] == [str(x) for x in lectures]
    assert (first.json["data"]["user"]["name"], first.json["data"]["course"]["title"]) == ("Ada Learner", "Flask 101")
    refused = campus.patch(course.id, stale[0], {"isCompleted": True})
    assert refused.json["errors"] == {"lectureId": ["Lecture does not belong to this course"]}
    # 95 s of the host's 100 s lecture completes it (the stale `lectures` says 10,000 s).
    watched = campus.patch(course.id, lectures[2], {"watchTime": 95})
    assert watched.json["data"]["completionPercentage"] == 67
    record = stored(student.id, course.id)
    assert [entry["lecture"] for entry in record["lectureProgress"]] == lectures
    assert (record["completionPercentage"], record["isCompleted"]) == (67, False)

    completed = campus.client.post(campus.url(course.id, "complete"))
    assert completed.json["data"]["completionPercentage"] == 100
    record = stored(student.id, course.id)
    assert (record["completionPercentage"], record["isCompleted"]) == (100, True) and record["completedAt"]
    assert [entry["lecture"] for entry in record["lectureProgress"]] == lectures
    dashboard = campus.client.get(campus.prefix).json["data"]["items"]
    assert [(item["course"]["title"], item["completionPercentage"]) for item in dashboard] == [("Flask 101", 100)]
    instructor = campus.app.test_client()
    campus.login(teacher, client=instructor)
    summary = instructor.get(campus.url(course.id, "summary")).json["data"]
    assert [row["title"] for row in summary["lectures"]] == ["Lesson 1", "Lesson 2", "Lesson 3"]
    students = instructor.get(campus.url(course.id, "students")).json["data"]["items"]
    assert [row["user"]["name"] for row in students] == ["Ada Learner"]
    assert campus.client.post(campus.url(course.id, "reset")).json["data"]["completionPercentage"] == 0
    batch = campus.client.patch(campus.url(course.id, "lectures"), json={"lectures": [
        {"lecture": str(lectures[0]), "isCompleted": True}, {"lecture": str(lectures[1]), "isCompleted": True}]})
    assert batch.json["data"]["completionPercentage"] == 67
    minimal = campus.patch(course.id, lectures[2], {"watchTime": 10}, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 204
    assert stored(student.id, course.id)["completionPercentage"] == 67

    addressed = commands.collections()
    assert {"catalog_courses", "catalog_lectures", "accounts", "courseprogresses"} <= addressed
    assert not {"courses", "lectures", "users"} & addressed
