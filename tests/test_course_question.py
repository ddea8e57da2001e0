"""The course question of a GET or a full write: the course and the caller's user in one command (two on a long course)."""
import json
from dataclasses import replace

from pymongo import monitoring

from progress_service.progress import mount_of
from progress_service.progress.catalog import JOIN_MAX_LECTURES, MongoCatalog

from .support import BOTH, WIRE, Api
from .test_watching import MINIMAL, Commands

NOT_ENROLLED = {"status": "fail", "message": "Not enrolled in this course"}
# A write that changes the instructor's figures asks whether its course has figures kept
# (progress/figures.py; none here, nobody asked for the summary): one small read.
FIGURES = ("find", "courseprogressfigures")


def listened_course(app, api, lms):
    """(listener, course, lectures): a course of two lectures without a record yet, and a
    listener of every command the app sends after the course's first GET (which also checks
    the indexes)."""
    listener = Commands()
    monitoring.register(listener)
    mount_of(app).database.close()  # the app's next client is made with the listener
    lms.db = mount_of(app).database.db()
    course, lectures = lms.course(2)
    assert api.get(course).status_code == 404, "no record yet"
    listener.seen.clear()
    listener.replies.clear()
    return listener, course, lectures


def sent(listener):
    """(command, collection) of what was sent, index management left out."""
    return [(name, collection) for name, collection, _ in listener.seen if name != "listIndexes"]


@WIRE
def test_a_full_write_asks_for_the_course_and_the_caller_together_and_a_get_apart(app, api, lms):
    """PATCH, complete and reset: the course and the caller in one question; GET: the course,
    the record, then the user (three reads, as the join costs the database more than a GET's
    other read); the answer's user is the caller either way."""
    listener, course, lectures = listened_course(app, api, lms)
    patched = api.patch(course, lectures[0], {"isCompleted": True})
    assert patched.status_code == 200
    assert sent(listener) == [("aggregate", "courses"), ("find", "courseprogresses"), ("insert", "courseprogresses"),
                              FIGURES]
    reply = json.dumps(listener.replies, default=str)
    assert "password" not in reply and "SECRETHASH" not in reply and "enrolledStudents" not in reply
    user = lms.db.users.find_one({"_id": api.user_id})
    assert patched.json["data"]["user"] == {"_id": str(api.user_id), "name": user["name"], "email": user["email"],
                                            "avatar": None}
    for call, asked in ((lambda: api.get(course), [("find", "courses"), ("find", "courseprogresses"),
                                                    ("find", "users")]),
                        (lambda: api.complete(course), [("aggregate", "courses"), ("find", "courseprogresses"),
                                                        ("update", "courseprogresses"), FIGURES]),
                        (lambda: api.reset(course), [("aggregate", "courses"), ("find", "courseprogresses"),
                                                     ("update", "courseprogresses"), FIGURES])):
        listener.seen.clear()
        answer = call()
        assert answer.status_code == 200 and answer.json["data"]["user"] == patched.json["data"]["user"]
        assert sent(listener) == asked
    assert lms.record(api.user_id, course)["completionPercentage"] == 0


@WIRE
def test_a_long_course_is_asked_for_apart_from_the_user_and_answers_the_same(app, api, lms):
    """Past JOIN_MAX_LECTURES the join copies the lecture list in the database: once a course is
    known to be long, a full write asks for its course and its caller in two finds (the user's
    projected), with the same answer; once it is short again, in one question again."""
    listener, course, lectures = listened_course(app, api, lms)
    lms.set_lectures(course, lectures + lms.course(JOIN_MAX_LECTURES)[1])

    def asked():
        """What was sent about the course, the record and the user (not the kept figures)."""
        return [(name, collection) for name, collection in sent(listener)
                if collection in ("courses", "courseprogresses", "users")]

    def write(call):
        listener.seen.clear()
        answer = call()
        assert answer.status_code == 200 and answer.json["data"]["user"]["_id"] == str(api.user_id)
        return answer, asked()

    apart = [("find", "courses"), ("find", "courseprogresses"), ("update", "courseprogresses"), ("find", "users")]
    joined = [("aggregate", "courses"), ("find", "courseprogresses"), ("update", "courseprogresses")]
    listener.replies.clear()
    first, sent_first = write(lambda: api.patch(course, lectures[0], {"isCompleted": False}))
    assert len(first.json["data"]["lectureProgress"]) == JOIN_MAX_LECTURES + 2
    assert sent_first[0] == ("aggregate", "courses"), "not known to be long yet"
    completed, sent_complete = write(lambda: api.complete(course))
    assert sent_complete == apart and completed.json["data"]["user"] == first.json["data"]["user"]
    assert completed.json["data"]["completionPercentage"] == 100
    assert lms.record(api.user_id, course)["completionPercentage"] == 100
    assert api.get(course).json["data"] == completed.json["data"]
    reply = json.dumps(listener.replies, default=str)
    assert "password" not in reply and "SECRETHASH" not in reply and "enrolledStudents" not in reply
    lms.set_lectures(course, lectures)
    shortened, sent_short = write(lambda: api.patch(course, lectures[1], {"isCompleted": False}))
    assert sent_short == apart, "still known to be long: learns it is short"
    assert [entry["lecture"] for entry in shortened.json["data"]["lectureProgress"]] == [str(l) for l in lectures]
    again, sent_again = write(lambda: api.patch(course, lectures[1], {"isCompleted": True}))
    assert sent_again == joined, "short again: joined"
    assert again.json["data"]["completionPercentage"] == 100


@WIRE
def test_a_minimal_full_write_does_not_ask_for_the_user(app, api, lms):
    """Prefer: return=minimal shows no user: the course is asked alone, as before."""
    listener, course, lectures = listened_course(app, api, lms)
    assert api.patch(course, lectures[0], {"isCompleted": True}, headers=MINIMAL).status_code == 204
    assert sent(listener) == [("find", "courses"), ("find", "courseprogresses"), ("insert", "courseprogresses"),
                              FIGURES]
    assert lms.record(api.user_id, course)["lectureProgress"][0]["isCompleted"] is True


@BOTH
def test_an_admin_outside_the_course_is_let_in_by_the_user_read_with_it(client, lms):
    """Not enrolled, but an admin: the role from the same question decides; a student is refused."""
    course, lectures = lms.course(1)
    admin = Api(client, lms.user(role="admin", name="Root Admin"))
    outsider = Api(client, lms.user(enrolled=False))
    written = admin.patch(course, lectures[0], {"isCompleted": True})
    assert written.status_code == 200 and written.json["data"]["user"]["name"] == "Root Admin"
    assert admin.get(course).json["data"]["completionPercentage"] == 100
    assert outsider.get(course).json == NOT_ENROLLED
    assert outsider.patch(course, lectures[0], {"isCompleted": True}).json == NOT_ENROLLED
    assert lms.record(outsider.user_id, course) is None


@BOTH
def test_a_token_whose_user_is_gone_is_still_served(api, lms):
    """The users document removed after sign-in: enrolled, so served, with a user of nulls."""
    course, lectures = lms.course(1)
    lms.db.users.delete_one({"_id": api.user_id})
    answer = api.patch(course, lectures[0], {"isCompleted": True})
    assert answer.status_code == 200
    assert answer.json["data"]["user"] == {"_id": str(api.user_id), "name": None, "email": None, "avatar": None}
    assert api.get(course).json["data"] == answer.json["data"]
    assert lms.record(api.user_id, course)["completionPercentage"] == 100


class RenamingCatalog(MongoCatalog):
    """A host's MongoCatalog that changes course() and user() (docs/mounting.md allows it)."""

    def course(self, course_id, user_id=None):
        found = super().course(course_id, user_id)
        return None if found is None else replace(found, title="Renamed by the host")

    def user(self, user_id):
        found = super().user(user_id)
        return None if found is None else replace(found, name="Known to the host")


@BOTH
def test_a_catalog_subclass_that_changes_course_or_user_is_asked_through_them(app, api, lms):
    """The joined questions would go around the subclass: its own methods answer instead."""
    mount = mount_of(app)
    mount.catalog = RenamingCatalog(mount.database)
    course, lectures = lms.course(2, durations=[100, 100])
    data = api.patch(course, lectures[0], {"isCompleted": True}).json["data"]
    assert data["course"]["title"] == "Renamed by the host" and data["user"]["name"] == "Known to the host"
    assert api.get(course).json["data"] == data
    # The position update's question too: the subclass's course answers whether it is open.
    assert api.patch(course, lectures[1], {"watchTime": 95}, headers=MINIMAL).status_code == 204
    assert lms.record(api.user_id, course)["lectureProgress"][1]["isCompleted"] is True
