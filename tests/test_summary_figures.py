"""The summary's aggregation against a plain Python computation over the same records.

This is what keeps insights.summary_pipeline aligned with rule.completion_state, the rule
every save uses. It runs on the wire server and on mongomock: mongomock evaluates every
operator the pipeline uses ($filter, $map, $slice, $in, $ifNull, $cond, $add, $floor, ...),
which is why the pipeline projects one field per lecture instead of nesting $map.
"""
import random
from fractions import Fraction

import pytest
from bson import ObjectId

from progress_service.progress import insights, mount_of
from progress_service.progress.rule import completion_state

from .support import BOTH, PREFIX, make_token, utc_ms

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


def expected_figures(docs, current):
    """The summary computed in Python: completion_state per record, first entry per lecture."""
    percentages, per_lecture = [], dict.fromkeys(current, 0)
    for doc in docs:
        raw = doc.get("lectureProgress", [])
        percentages.append(completion_state(raw, current)[0])
        first = {}
        for entry in raw:
            first.setdefault(entry["lecture"], entry.get("isCompleted") is True)
        for lecture in current:
            per_lecture[lecture] += first.get(lecture, False)
    mean = Fraction(sum(percentages), len(percentages)) * 10 + Fraction(1, 2)
    return {"students": len(docs), "completed": percentages.count(100),
            "averagePercentage": (mean.numerator // mean.denominator) / 10,
            "lectures": [{"lecture": str(lecture), "completed": per_lecture[lecture]} for lecture in current]}


def ladder(course, current):
    """One record with exactly c of the current lectures completed, for every c from 0 to t,
    so every rounding case of the rule (23 of 40 among them) is in the data."""
    return [{"user": ObjectId(), "course": course, "__v": 0,
             "lectureProgress": [{"_id": ObjectId(), "lecture": lecture, "isCompleted": n < done}
                                 for n, lecture in enumerate(current)]}
            for done in range(len(current) + 1)]


# The 40-lecture case (it holds 23 of 40, which Math.round gets wrong) seeds fewer records:
# SecantusDB evaluates the pipeline in Python, about t x t array elements per record, and
# 300 records of 40 lectures take some 5 s there, the client's whole time budget.
@BOTH
@pytest.mark.parametrize("lecture_count,records", [(3, RECORDS), (8, RECORDS), (40, 100)])
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
    assert data == expected
    assert titles == [f"Lecture {n + 3}" for n in range(lecture_count - 2)] + ["Lecture 1", "Lecture 2"]


class RecordingCollection:
    """A collection stand-in that notes which methods the service calls."""

    def __init__(self, real, calls):
        """Wrap `real`, noting calls in `calls`."""
        self.real, self.calls = real, calls

    def __getattr__(self, name):
        """Note the method asked for, then hand out the real one."""
        self.calls.append(name)
        return getattr(self.real, name)


@BOTH
def test_summary_is_one_aggregation_not_a_scan_in_python(lms, app, monkeypatch):
    """The figures come from a single aggregate call; no record is loaded into Python."""
    teacher = lms.user(role="instructor")
    course, lectures = lms.course(3, instructor=teacher)
    seed(lms, random.Random(7), course, lectures)
    mount = mount_of(app)
    calls, real = [], mount.database.records()
    monkeypatch.setattr(mount.database, "records", lambda: RecordingCollection(real, calls))
    figures = insights.summary(mount, teacher, course)
    assert calls == ["aggregate"]
    assert figures.students == RECORDS
