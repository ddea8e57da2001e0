"""A brute-force oracle for the instructor's summary, and a check of the kept figures' invariant.

The oracle reads the course's current lectures and every stored record and applies the rule
of contract section 2 in plain Python, written here on its own (not with the service's rule
or tally code), so that the two have to agree rather than share a mistake.
"""
from collections import Counter
from fractions import Fraction

from progress_service.progress import figures as kept_figures
from progress_service.progress import tally


def first_flags(entries):
    """{lecture: completed?} of each lecture's first entry (missing isCompleted: not completed)."""
    flags = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict):
            flags.setdefault(entry.get("lecture"), entry.get("isCompleted") is True)
    return flags


def percentage(done, total):
    """Half up, exactly; 0 without lectures."""
    if total == 0:
        return 0
    exact = Fraction(100 * done, total) + Fraction(1, 2)
    return exact.numerator // exact.denominator


def expected_figures(docs, current):
    """The summary (without titles and asOf) of these raw records over the current lectures."""
    current = list(dict.fromkeys(current))
    percentages, per_lecture = [], dict.fromkeys(current, 0)
    for doc in docs:
        flags = first_flags(doc.get("lectureProgress"))
        done = [lecture for lecture in current if flags.get(lecture)]
        percentages.append(percentage(len(done), len(current)))
        for lecture in done:
            per_lecture[lecture] += 1
    average = 0.0
    if percentages:
        mean = Fraction(sum(percentages), len(percentages)) * 10 + Fraction(1, 2)
        average = (mean.numerator // mean.denominator) / 10
    return {"students": len(docs), "completed": sum(1 for value in percentages if value == 100) if current else 0,
            "averagePercentage": average,
            "lectures": [{"lecture": str(lecture), "completed": per_lecture[lecture]} for lecture in current]}


def oracle(db, course_id):
    """The course's summary computed now from the database, by brute force."""
    course = db.courses.find_one({"_id": course_id})
    return expected_figures(list(db.courseprogresses.find({"course": course_id})), course.get("lectures") or [])


def shown(data):
    """A summary answer without what the oracle does not compute (titles, asOf)."""
    return {"students": data["students"], "completed": data["completed"],
            "averagePercentage": data["averagePercentage"],
            "lectures": [{"lecture": row["lecture"], "completed": row["completed"]} for row in data["lectures"]]}


def figures_key(db, course_id):
    """The key of the course's figures: it changes only when they are built anew."""
    document = db[kept_figures.COLLECTION].find_one({"_id": kept_figures.course_key(course_id)}, {"key": 1})
    return document and document["key"]


def check_invariant(db, course_id):
    """Assert the invariant of figures.py for a course at rest, and that each record's document
    holds its record's state: counts = sum of the documents with the course's key, and those
    documents are exactly the course's records."""
    document = db[kept_figures.COLLECTION].find_one({"_id": kept_figures.course_key(course_id)})
    assert document is not None and tally.problem(document) is None, document
    lectures = tuple(document["lectures"])
    total = Counter()
    counted = {}
    for entry in db[kept_figures.COLLECTION].find({"k": document["key"]}):
        total.update(tally.record_paths(tally.decode(entry["bits"])))
        if entry.get("owed") is not None:
            total.update(tally.record_paths(tally.decode(entry["owed"]), -1))
        counted[entry["_id"]] = tally.decode(entry["bits"])
    expected = {"students": 0, **{f"hist.{n}": 0 for n in range(len(lectures) + 1)},
                **{f"per.{i}": 0 for i in range(len(lectures))}}
    expected.update({path: value for path, value in total.items()})
    stored = {"students": document["students"], **{f"hist.{n}": v for n, v in enumerate(document["hist"])},
              **{f"per.{i}": v for i, v in enumerate(document["per"])}}
    assert stored == expected
    records = {raw["_id"]: tally.bits_of_stored(raw, lectures) for raw in db.courseprogresses.find({"course": course_id})}
    assert counted == records
