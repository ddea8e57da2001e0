"""Minimal hosts written from docs/mounting.md alone.

The code blocks are taken from the doc as they are written and run, so the doc cannot drift
from what works: the quick start, the try-it snippet, reusing the host's JWTManager and
flask-mongoengine connection, the catalog hook and the events example. The doc's claims that
are not code (the guarantees, the config keys) are checked in test_mounting_guarantees.py.
"""
import re
import sys
import types
from pathlib import Path

import mongoengine
import pytest
from bson import ObjectId
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token
from mongoengine.connection import get_db

from progress_service.progress import mount_of, signals

from .support import BOTH, SECRET, WIRE, Lms, database_config

DOC = Path(__file__).resolve().parent.parent / "docs" / "mounting.md"
QUICK_START = "# lms.py"
REUSING = "# lms.py (reusing your JWTManager and flask-mongoengine connection)"


def doc_block(first_line):
    """The doc's one python block whose first line is `first_line`, verbatim."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    found = [block for block in blocks if block.splitlines()[0] == first_line]
    assert len(found) == 1, f"docs/mounting.md has {len(found)} blocks starting {first_line!r}"
    return found[0]


def run_doc_block(first_line, module_name, monkeypatch, **names):
    """Run a doc block as module `module_name` (importable by the blocks that follow)."""
    module = types.ModuleType(module_name)
    module.__dict__.update(names)
    code = compile(doc_block(first_line), f"docs/mounting.md [{first_line}]", "exec")
    monkeypatch.setitem(sys.modules, module_name, module)
    exec(code, module.__dict__)  # noqa: S102 - the doc's own example code
    return module


@pytest.fixture
def doc_env(monkeypatch, db_uri):
    """The environment the doc's lms.py reads; forgets the connections it made afterwards."""
    monkeypatch.setenv("JWT_SECRET_KEY", SECRET)
    monkeypatch.setenv("MONGODB_URI", db_uri)
    before = set(mongoengine.connection._connection_settings)
    yield monkeypatch
    for alias in set(mongoengine.connection._connection_settings) - before:
        mongoengine.disconnect(alias)


@WIRE
def test_the_quick_start_host_serves_progress(doc_env):
    """Section 2's lms.py, section 4's try.py and section 7's events.py, as written."""
    aliases = dict(mongoengine.connection._connection_settings)
    lms = run_doc_block(QUICK_START, "lms", doc_env)
    app = lms.app
    mount = mount_of(app)
    try:
        # No JWTManager and no connection of its own: the extension made a manager and a client,
        # and registered no MongoEngine alias.
        assert isinstance(app.extensions["flask-jwt-extended"], JWTManager)
        assert not mount.database.uses_host_connection
        assert mongoengine.connection._connection_settings == aliases
        data = Lms(mount.database.db())
        user_id = data.user(name="Minnie Host")
        course_id, (first, second) = data.course(2)

        tried = run_doc_block("# try.py", "try_", doc_env, user_id=user_id, course_id=course_id, lecture_id=first)
        record = data.record(user_id, course_id)
        assert [(e["lecture"], e["isCompleted"]) for e in record["lectureProgress"]] == [(first, True), (second, False)]
        headers = {"Authorization": f"Bearer {tried.token}"}
        shown = tried.client.get(f"/api/v1/progress/{course_id}", headers=headers).json["data"]
        assert (shown["completionPercentage"], shown["user"]["name"]) == (50, "Minnie Host")

        events = run_doc_block("# events.py", "events", doc_env)
        try:
            # The default cookie, `token`, works as well as the header.
            browser = app.test_client()
            browser.set_cookie("token", tried.token)
            done = browser.patch(f"/api/v1/progress/{course_id}/lectures/{second}", json={"isCompleted": True})
            assert done.json["data"]["isCompleted"] is True
            assert events.completed_courses == [("lms", user_id, course_id, 100)]
        finally:
            signals.course_completed.disconnect(events.on_course_completed)
    finally:
        mount.database.close()


@WIRE
def test_the_host_reusing_its_jwt_manager_and_connection(doc_env):
    """Section 5's lms.py: its JWTManager, its `userId` claim, its flask-mongoengine alias, its prefix."""
    lms = run_doc_block(REUSING, "lms", doc_env)
    app = lms.app
    mount = mount_of(app)
    assert app.extensions["flask-jwt-extended"] is lms.jwt
    assert (mount.database.alias, mount.database.uses_host_connection) == ("lms", True)
    assert mount.database.db() is get_db("lms")
    data = Lms(get_db("lms"))
    user_id = data.user()
    course_id, lectures = data.course(3)
    with app.app_context():
        token = create_access_token(identity=str(user_id))
    browser = app.test_client()
    browser.set_cookie("token", token)
    url = f"/progress/{course_id}/lectures/{lectures[2]}"

    refused = browser.patch(url, json={"isCompleted": True}, headers={"Origin": "https://evil.example"})
    assert (refused.status_code, refused.json["message"]) == (403, "Origin not allowed")
    allowed = browser.patch(url, json={"isCompleted": True}, headers={"Origin": "https://lms.example.com"})
    assert allowed.status_code == 200 and allowed.json["data"]["completionPercentage"] == 33
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://lms.example.com"
    assert get_db("lms").courseprogresses.count_documents({"user": user_id}) == 1
    # Its cookie-only JWT settings hold on our routes: no Bearer.
    bearer = app.test_client().get(f"/progress/{course_id}", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401 and bearer.json["status"] == "fail"


@BOTH
def test_the_catalog_hook_from_the_doc(doc_env, db_uri):
    """Section 6's ClassesCatalog on the host's connection, mounted with init_app."""
    settings, disconnect = database_config(db_uri)
    if "MONGODB_URI" in settings:  # the host's own connection under the default alias
        mongoengine.connect(host=db_uri, uuidRepresentation="standard")
        alias = "default"
    else:
        alias = settings["PROGRESS_DB_ALIAS"]
    try:
        catalog = run_doc_block("# catalog.py", "catalog", doc_env)
        catalog.progress.catalog.alias = alias
        app = Flask("classes_lms")
        app.config.update(JWT_SECRET_KEY=SECRET, PROGRESS_DB_ALIAS=alias)
        catalog.progress.init_app(app)
        serve_classes(app, get_db(alias))
    finally:
        disconnect()


def serve_classes(app, database):
    """A class of three parts, a student on its roster, one who is not, and the teacher."""
    teacher, student, outsider = ObjectId(), ObjectId(), ObjectId()
    parts = [{"_id": ObjectId(), "title": f"Part {i}", "seconds": 100 if i == 3 else None} for i in (1, 2, 3)]
    course_id = database.classes.insert_one({"name": "Pottery", "image": "/pot.png", "teacher": teacher,
                                             "parts": parts, "roster": [student]}).inserted_id
    database.members.insert_many([
        {"_id": student, "display_name": "Sam", "email": "sam@example.com", "role": "student", "password": "hash"},
        {"_id": outsider, "display_name": "Out", "email": "out@example.com", "role": "student", "password": "hash"},
        {"_id": teacher, "display_name": "Tea", "email": "tea@example.com", "role": "instructor", "password": "hash"},
    ])
    with app.app_context():
        headers = {user: {"Authorization": f"Bearer {create_access_token(identity=str(user))}"}
                   for user in (teacher, student, outsider)}
    client = app.test_client()

    def patch(user, part, body):
        """PATCH one part as `user`."""
        return client.patch(f"/api/v1/progress/{course_id}/lectures/{part['_id']}", json=body, headers=headers[user])

    refused = patch(outsider, parts[0], {"isCompleted": True})
    assert (refused.status_code, refused.json["message"]) == (403, "Not enrolled in this course")
    response = patch(student, parts[1], {"isCompleted": True})
    assert response.status_code == 200
    data = response.json["data"]
    assert data["course"] == {"_id": str(course_id), "title": "Pottery", "thumbnail": "/pot.png"}
    assert data["user"] == {"_id": str(student), "name": "Sam", "email": "sam@example.com", "avatar": None}
    assert [entry["lecture"] for entry in data["lectureProgress"]] == [str(part["_id"]) for part in parts]
    assert "hash" not in response.get_data(as_text=True)
    # 90 of the third part's 100 seconds complete it; the first has no duration.
    assert patch(student, parts[2], {"watchTime": 90}).json["data"]["completionPercentage"] == 67
    assert patch(student, parts[0], {"watchTime": 5000}).json["data"]["completionPercentage"] == 67
    summary = client.get(f"/api/v1/progress/{course_id}/summary", headers=headers[teacher]).json["data"]
    assert [(row["title"], row["completed"]) for row in summary["lectures"]] == [("Part 1", 0), ("Part 2", 1), ("Part 3", 1)]
    assert not {"courses", "lectures", "users"} & set(database.list_collection_names())


def test_the_docs_example_code_is_the_examples_code():
    """Each python block of the doc headed `# examples/<file>.py` is a verbatim part of that file,
    which the examples' tests run: the doc's code for each host style cannot drift."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    headed = [(block.splitlines()[0][2:], block.split("\n", 1)[1]) for block in blocks
              if re.fullmatch(r"# examples/\S+\.py", block.splitlines()[0])]
    assert {path for path, _ in headed} == {"examples/rs256_host/__init__.py", "examples/session_host/__init__.py",
                                            "examples/uuid_host/__init__.py", "examples/uuid_host/models.py"}
    for path, code in headed:
        assert code in (DOC.parent.parent / path).read_text(), f"docs/mounting.md's block from {path} is not in it"
