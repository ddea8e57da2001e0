"""Odd stored records (contract section 2): every shape a migration or mongoimport leaves is writable.

A record without `__v`, with `__v: null`, without `lectureProgress` (or with it null) is read
and written like any other; its first write gives it a version. Against the real wire
server, which decides what `$inc` on a null does and what a filter on a missing field matches.
"""
import pytest
from bson import ObjectId

from .support import PREFIX, WIRE, utc_ms

SHAPES = {
    "no __v": {"drop": ["__v"]},
    "__v null": {"set": {"__v": None}},
    "__v a string": {"set": {"__v": "3"}},
    "no lectureProgress": {"drop": ["lectureProgress"]},
    "lectureProgress null": {"set": {"lectureProgress": None}},
    "no updatedAt": {"drop": ["updatedAt"]},
    "a null entry in the list": {"set": {"lectureProgress": [None]}},
    "nothing but ids": {"keep": ["_id", "user", "course"]},
}


def imported_record(lms, user, course, lectures, shape):
    """A record as a migration script might have left it, then the shape applied."""
    raw = {"_id": ObjectId(), "user": user, "course": course, "isCompleted": False, "completionPercentage": 0,
           "lectureProgress": [{"lecture": lectures[0], "isCompleted": True, "watchTime": 5}],
           "lastAccessed": utc_ms(minutes=-5), "createdAt": utc_ms(minutes=-5), "updatedAt": utc_ms(minutes=-5),
           "__v": 0}
    for key in shape.get("drop", []):
        raw.pop(key)
    raw.update(shape.get("set", {}))
    if "keep" in shape:
        raw = {key: raw[key] for key in shape["keep"]}
    lms.db.courseprogresses.insert_one(raw)
    return raw


def flags(stored, lectures):
    """The first entry's flag of each lecture, as stored."""
    found = {}
    for entry in stored.get("lectureProgress") or []:
        if isinstance(entry, dict):
            found.setdefault(entry["lecture"], entry.get("isCompleted", False))
    return [found.get(lecture) for lecture in lectures]


@WIRE
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_every_write_works_on_an_imported_record_and_gives_it_a_version(api, lms, shape):
    """PATCH, batch, complete and reset: 200 each (never a 409 forever), consistent figures, __v counting."""
    course, lectures = lms.course(2)
    raw = imported_record(lms, api.user_id, course, lectures, shape)
    had_first = bool(raw.get("lectureProgress")) and isinstance(raw["lectureProgress"][0], dict)

    patched = api.patch(course, lectures[1], {"isCompleted": True})
    assert patched.status_code == 200, patched.json
    stored = lms.record(api.user_id, course)
    assert stored["_id"] == raw["_id"] and stored["__v"] == 1, "the first write gives it a version"
    assert flags(stored, lectures) == [True if had_first else False, True]
    expected = 100 if had_first else 50
    assert (stored["completionPercentage"], stored["isCompleted"]) == (expected, expected == 100)
    assert patched.json["data"]["completionPercentage"] == expected
    assert api.get(course).json == patched.json

    batch = api.client.patch(f"{PREFIX}/{course}/lectures", json={"lectures": [
        {"lecture": str(lectures[0]), "isCompleted": False}]}, headers={"Authorization": f"Bearer {api.token}"})
    assert batch.status_code == 200 and lms.record(api.user_id, course)["__v"] == 2
    assert api.complete(course).json["data"]["completionPercentage"] == 100
    reset = api.reset(course)
    assert reset.status_code == 200 and reset.json["data"]["completionPercentage"] == 0
    stored = lms.record(api.user_id, course)
    assert stored["__v"] == 4 and flags(stored, lectures) == [False, False]
    assert lms.db.courseprogresses.count_documents({"user": api.user_id, "course": course}) == 1


@WIRE
@pytest.mark.parametrize("shape", [SHAPES["no __v"], SHAPES["__v null"]], ids=["no __v", "__v null"])
def test_a_position_update_on_an_unversioned_record_takes_the_full_path(api, lms, shape):
    """`$inc` on a null __v fails on mongod: the cheap path matches nothing and the full write does it."""
    course, lectures = lms.course(1)
    imported_record(lms, api.user_id, course, lectures, shape)
    response = api.patch(course, lectures[0], {"watchTime": 42}, headers={"Prefer": "return=minimal"})
    assert response.status_code == 204
    stored = lms.record(api.user_id, course)
    assert stored["__v"] == 1 and stored["lectureProgress"][0]["watchTime"] == 42.0
    assert stored["lectureProgress"][0]["isCompleted"] is True, "the flag stays as it was"
