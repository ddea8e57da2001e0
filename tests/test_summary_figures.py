"""The summary of records the service did not write, against a brute-force oracle.

Records are stored directly, as the original app (or a migration) left them, oddities
included; the first summary builds the course's figures from them (upkeep.py) and must
equal the oracle of tests/figures_oracle.py. Later summaries read the kept figures only.
"""
import random

import pytest
from bson import ObjectId

from progress_service.progress import figures, insights, mount_of

from .command_audit import AUDIT
from .figures_oracle import check_invariant, expected_figures
from .support import BOTH, PREFIX, WIRE, make_token, utc_ms

RECORDS = 300


def random_entries(rng, old, new):
    """Entries as the original app might have stored them, including its oddities.

    `old`: the course's lectures when the record was first written (some since removed);
    `new`: lectures added later, which only records written since then have entries for.
    """
    finished = rng.random() < 0.3
    chosen = rng.sample(old, len(old) if finished else rng.randint(0, len(old)))
    if rng.random() < 0.6:
        chosen += new
    entries = []
    for lecture in chosen:
        entry = {"_id": ObjectId(), "lecture": lecture, "watchTime": 0, "lastWatched": None}
        roll = rng.random()
        if roll >= 0.03:  # else an entry without isCompleted: not completed
            entry["isCompleted"] = finished or roll < 0.55
        entries.append(entry)
        if rng.random() < 0.05:
            # A duplicate entry of the same lecture: the first one wins.
            entries.append({**entry, "_id": ObjectId(), "isCompleted": not entry.get("isCompleted", False)})
    return entries


def seed(lms, rng, course, old, new=(), records=RECORDS):
    """`records` raw records of `course` (a few without any lectureProgress), plus noise."""
    docs = []
    for n in range(records):
        doc = {"user": ObjectId(), "course": course, "isCompleted": rng.random() < 0.5,
               "completionPercentage": rng.randint(0, 100), "lastAccessed": utc_ms(seconds=-n),
               "createdAt": utc_ms(seconds=-n), "updatedAt": utc_ms(seconds=-n), "__v": 0}
        if rng.random() > 0.03:
            doc["lectureProgress"] = random_entries(rng, old, list(new))
        docs.append(doc)
    # Another course's records must not count.
    docs += [{"user": ObjectId(), "course": ObjectId(), "lectureProgress": random_entries(rng, old, [])}
             for _ in range(20)]
    lms.db.courseprogresses.insert_many(docs)
    return docs[:records]


def ladder(course, current):
    """One record with exactly c of the current lectures completed, for every c from 0 to t,
    so every rounding case of the rule (23 of 40 among them) is in the data."""
    return [{"user": ObjectId(), "course": course, "__v": 0,
             "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": n < done}
                                 for n, lecture in enumerate(current)]}
            for done in range(len(current) + 1)]


@BOTH
@pytest.mark.parametrize("lecture_count,records", [(3, RECORDS), (8, RECORDS), (40, RECORDS)])
def test_summary_matches_python_over_hundreds_of_records(client, lms, lecture_count, records):
    """Removed lectures' entries stay in storage, new lectures have no entries in older
    records: the figures over the current lectures equal the Python rule's."""
    rng = random.Random(lecture_count)
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(lecture_count, instructor=teacher)
    new = lms.course(2)[1]
    current = lectures[2:] + new
    steps = ladder(course, current)
    lms.db.courseprogresses.insert_many(steps)
    docs = seed(lms, rng, course, lectures, new, records) + steps
    lms.set_lectures(course, current)
    expected = expected_figures(docs, current)
    assert expected["completed"] > 1 and expected["students"] == records + lecture_count + 1

    response = client.get(f"{PREFIX}/{course}/summary", headers={"Authorization": f"Bearer {make_token(teacher)}"})
    assert response.status_code == 200
    data = response.json["data"]
    titles = [entry.pop("title") for entry in data["lectures"]]
    assert data.pop("asOf")
    assert data == expected
    assert titles == [f"Lecture {n + 3}" for n in range(lecture_count - 2)] + ["Lecture 1", "Lecture 2"]
    check_invariant(lms.db, course)


@WIRE
def test_a_built_summary_reads_the_kept_figures_not_the_records(lms, app):
    """Once built, the summary reads the course, its figures document and its lectures'
    titles: no command on the records, whatever the number of students."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(3, instructor=teacher)
    seed(lms, random.Random(7), course, lectures)
    mount = mount_of(app)
    assert insights.summary(mount, teacher, course).students == RECORDS
    with AUDIT.capture() as seen:
        assert insights.summary(mount, teacher, course).students == RECORDS
    assert [(name, collection) for name, collection, _command in seen] == [
        ("find", "courses"), ("find", figures.COLLECTION), ("find", "lectures")]
