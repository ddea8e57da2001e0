"""Checks that only a fresh interpreter can make: import side effects, import order, sockets.

tests/test_mounting_guarantees.py runs `python -m tests.fresh_interpreter CHECK [ARGS...]` from
the repository root; each check prints one JSON object. Every socket connect and name lookup
of the process is recorded from the first line on, before anything else is imported.
"""
import json
import socket
import sys
import threading
import time

NETWORK = []
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo


def _recording_connect(self, address):
    """socket.connect, noted."""
    NETWORK.append(["connect", str(address)])
    return _connect(self, address)


def _recording_getaddrinfo(host, port, *args, **kwargs):
    """socket.getaddrinfo (what a client does before it connects), noted."""
    NETWORK.append(["getaddrinfo", f"{host}:{port}"])
    return _getaddrinfo(host, port, *args, **kwargs)


socket.socket.connect = _recording_connect
socket.getaddrinfo = _recording_getaddrinfo

SECRET = "fresh-interpreter-secret-of-at-least-32-bytes"
HOST_DOCUMENTS = ("User", "Course", "Lecture", "CourseProgress")


def network_after(seconds=0.5):
    """The network use so far, after giving background threads (driver monitors) time to act."""
    time.sleep(seconds)
    return list(NETWORK)


def other_threads():
    """Names of the threads besides this one (a MongoClient's monitors would show here)."""
    return sorted(thread.name for thread in threading.enumerate() if thread is not threading.current_thread())


def check_import():
    """What importing the extension does: modules loaded, documents declared, connections, I/O."""
    import mongoengine.base.common
    from mongoengine import connection

    documents_before = set(mongoengine.base.common._document_registry)
    import progress_service.progress  # noqa: F401

    return {
        "modules": sorted(name for name in sys.modules if name.startswith("progress_service")),
        "flask_mongoengine": "flask_mongoengine" in sys.modules,
        "documents": sorted(set(mongoengine.base.common._document_registry) - documents_before),
        "aliases": sorted(connection._connection_settings),
        "threads": other_threads(),
        "network": network_after(),
    }


def fixed_ids():
    """The same ObjectIds in every run, so runs can be compared document for document."""
    from bson import ObjectId

    return {name: ObjectId(f"{index + 1:024x}") for index, name in enumerate(
        ("grace", "ada", "bo", "course", "lecture1", "lecture2", "lecture3", "progress"))}


def host_saves_and_reads(ids):
    """The host's own saves and dereferences, as its code does them; what it read back."""
    from examples.host_lms.models import Course, CourseProgress, Lecture, LectureProgress, User

    grace = User(id=ids["grace"], name="Grace", email="grace@example.com", password_hash="h", role="instructor").save()
    ada = User(id=ids["ada"], name="Ada", email="ada@example.com", password_hash="h").save()
    course = Course(id=ids["course"], title="Flask 101", instructor=grace, students=[ada])
    course.lectures = [Lecture(id=ids[f"lecture{n}"], course=course, title=f"Part {n}", duration=60 * n).save()
                       for n in (1, 2, 3)]
    course.save()
    # The host's own CourseProgress saved as it is: no rule of ours runs on the host's class.
    CourseProgress(id=ids["progress"], user=ada, course=course, completion_percentage=77,
                   lecture_progress=[LectureProgress(lecture=course.lectures[1], is_completed=True, watch_time=5)]).save()

    course = Course.objects.get(id=ids["course"])
    record = CourseProgress.objects.get(id=ids["progress"])
    lecture = Lecture.objects.get(id=ids["lecture3"])
    db = User._get_db()
    return {
        "course": [course.title, course.instructor.name, [part.title for part in course.lectures],
                   [student.email for student in course.students]],
        "lecture": [lecture.title, lecture.course.title, lecture.course.instructor.email],
        "progress": [record.user.name, record.course.title, record.completion_percentage,
                     [(entry.lecture.title, entry.is_completed, entry.watch_time) for entry in record.lecture_progress]],
        "stored": {name: json.loads(_bson_json(list(db[name].find({}, sort=[("_id", 1)]))))
                   for name in ("accounts", "catalog_courses", "catalog_lectures", "courseprogresses")},
        "fields": {f"{cls.__name__}.{field}": cls._fields[field].document_type.__module__ + "."
                   + cls._fields[field].document_type.__name__
                   for cls, field in ((Course, "instructor"), (Lecture, "course"), (CourseProgress, "user"),
                                      (CourseProgress, "course"), (LectureProgress, "lecture"))},
    }


def _bson_json(value):
    """Extended JSON of stored documents."""
    from bson import json_util

    return json_util.dumps(value)


def serve_one_write(app, ids):
    """One progress write through the mounted extension, and the host's view of its record."""
    import jwt as pyjwt

    from examples.host_lms.models import Course, CourseProgress, User

    bo = User(id=ids["bo"], name="Bo", email="bo@example.com", password_hash="h").save()
    Course.objects(id=ids["course"]).update_one(add_to_set__students=bo)
    token = pyjwt.encode({"userId": str(bo.id), "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    client = app.test_client()
    client.set_cookie("token", token)
    response = client.patch(f"/lms/api/progress/{ids['course']}/lectures/{ids['lecture2']}", json={"watchTime": 120})
    record = CourseProgress.objects.get(user=bo)
    return {"status": response.status_code, "percentage": response.get_json()["data"]["completionPercentage"],
            "host_view": [record.user.name, record.course.title, record.completion_percentage,
                          [(entry.lecture.title, entry.is_completed) for entry in record.lecture_progress]]}


def check_import_order(mode, uri):
    """The host's models and app in one import order: `plain` (no extension), `host-first`, `progress-first`."""
    if mode == "progress-first":
        import progress_service.progress  # noqa: F401
    from examples.host_lms import models  # noqa: F401  (the host's documents, declared now)
    from examples.host_lms import create_app
    from mongoengine.base import get_document

    app = create_app({"JWT_SECRET_KEY": SECRET, "MONGODB_SETTINGS": {"host": uri},
                      "LMS_MOUNT_PROGRESS": mode != "plain"})
    ids = fixed_ids()
    result = {
        "extension_loaded": "progress_service.progress" in sys.modules,
        "registry": {name: f"{get_document(name).__module__}.{get_document(name).__name__}" for name in HOST_DOCUMENTS},
        "host": host_saves_and_reads(ids),
    }
    if mode != "plain":
        result["served"] = serve_one_write(app, ids)
    return result


def check_mount_without_database(case):
    """Mount on an app with no usable database: what is raised, and what was touched."""
    from flask import Flask

    from progress_service.progress import MountError, Progress

    app = Flask("no_database")
    app.config["JWT_SECRET_KEY"] = SECRET
    if case == "host-alias-elsewhere":
        # The host connected flask-mongoengine under its own alias and forgot PROGRESS_DB_ALIAS.
        from flask_mongoengine import MongoEngine

        app.config["MONGODB_SETTINGS"] = {"host": "mongodb://127.0.0.1:9/lms", "alias": "lms", "connect": False}
        MongoEngine(app)
    config_before = dict(app.config)
    extensions_before = sorted(app.extensions)
    try:
        Progress(app)
        error = None
    except MountError as exc:
        error = str(exc)
    return {"error": error, "network": network_after(), "threads": other_threads(),
            "config_unchanged": dict(app.config) == config_before,
            "extensions_unchanged": sorted(app.extensions) == extensions_before,
            "blueprints": sorted(app.blueprints)}


def check_lazy_mount(uri):
    """Mount with MONGODB_URI: no I/O until the first request, which then works."""
    import jwt as pyjwt
    from flask import Flask

    from progress_service.progress import Progress

    app = Flask("lazy")
    app.config.update(JWT_SECRET_KEY=SECRET, MONGODB_URI=uri)
    Progress(app)
    at_mount = {"network": network_after(), "threads": other_threads()}
    token = pyjwt.encode({"sub": "6b0000000000000000000001", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    response = app.test_client().get("/api/v1/progress/6b0000000000000000000002",
                                     headers={"Authorization": f"Bearer {token}"})
    return {"at_mount": at_mount, "first_request": [response.status_code, response.get_json()],
            "network_after_request": bool(NETWORK)}


CHECKS = {"import": check_import, "import-order": check_import_order,
          "mount-without-database": check_mount_without_database, "lazy-mount": check_lazy_mount}

if __name__ == "__main__":
    print(json.dumps(CHECKS[sys.argv[1]](*sys.argv[2:])))
