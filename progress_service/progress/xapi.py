"""The xAPI 1.0.3 statements a stored write tells the Learning Record Store (contract section 10).

Built completely when the change is stored, from the write itself: the id is derived from
the record, the write (its new `__v`) and the kind, the timestamp is the write's time. So
the statement kept in the outbox and sent again after a failure is byte for byte the same,
and an LRS that already has it answers as for a resend, not as for a conflict.
"""
import json
import uuid

from .present import iso_time

VERSION = "1.0.3"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PROGRESSED = "http://adlnet.gov/expapi/verbs/progressed"
PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
LESSON = "http://adlnet.gov/expapi/activities/lesson"
COURSE = "http://adlnet.gov/expapi/activities/course"
# Fixed forever: a statement's id must not change between the service's versions.
NAMESPACE = uuid.UUID("0b6f5a52-5f2e-4b7b-9c1e-7f3c2d9a8e41")


def statement_id(record_id, version, kind, lecture_id=None):
    """A UUID naming one statement of one write of one record."""
    return str(uuid.uuid5(NAMESPACE, f"{record_id}/{version}/{kind}/{lecture_id or ''}"))


def _agent(homepage, user_id):
    """The student as an LMS account: no name or email leaves the service."""
    return {"objectType": "Agent", "account": {"homePage": homepage, "name": str(user_id)}}


def _verb(verb_id, word):
    """A verb with its display word."""
    return {"id": verb_id, "display": {"en-US": word}}


def course_activity(homepage, course):
    """The course as an activity, named by its title when the write has it."""
    definition = {"type": COURSE}
    if course.title:
        definition["name"] = {"en-US": course.title}
    return {"objectType": "Activity", "id": f"{homepage}/courses/{course.id}", "definition": definition}


def lecture_activity(homepage, lecture_id):
    """A lecture as an activity (its title is not read for this)."""
    return {"objectType": "Activity", "id": f"{homepage}/lectures/{lecture_id}", "definition": {"type": LESSON}}


def statements_for(homepage, done):
    """[(kind, lecture or None, statement)] of one stored write, in the contract's order.

    1. each lecture that became completed (course order); 2. `progressed` when the course's
    percentage changed (reset included); 3. the course `completed` when it became completed.
    A write that changes neither (a position update) has none.
    """
    record, course = done.record, done.course
    common = {"actor": _agent(homepage, record.user), "timestamp": iso_time(done.now), "version": VERSION}
    course_object = course_activity(homepage, course)
    found = []

    def add(kind, lecture, verb, target, **extra):
        """One statement, its id from the record, this write's version and the kind."""
        statement = {"id": statement_id(record.id, record.version, kind, lecture), **common,
                     "verb": verb, "object": target, **extra}
        found.append((kind, lecture, statement))

    for lecture in done.completed_lectures:
        add("lecture-completed", lecture, _verb(COMPLETED, "completed"), lecture_activity(homepage, lecture),
            result={"completion": True}, context={"contextActivities": {"parent": [course_object]}})
    if record.completion_percentage != done.was_percentage:
        add("progressed", None, _verb(PROGRESSED, "progressed"), course_object,
            result={"extensions": {PROGRESS: record.completion_percentage}})
    if record.is_completed and not done.was_completed:
        add("course-completed", None, _verb(COMPLETED, "completed"), course_object, result={"completion": True})
    return found


def encode(statement):
    """The statement's JSON text, exactly as it is stored and sent (every time)."""
    return json.dumps(statement, separators=(",", ":"), ensure_ascii=False)
