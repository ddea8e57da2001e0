"""Hostile input (contract section 3): every body a clear 400 (or 413) in the envelope, never a 5xx.

A sweep generates bodies for both PATCH endpoints (the single lecture and the batch): huge
and tiny numbers, deep nesting, odd Unicode and encodings, repeated keys and wrong types,
placed where each field goes. Every answer must be the failure envelope, parse as JSON,
and leave the database as it was. It runs against the real wire server.
"""
import codecs
import json

import pytest

from .support import PREFIX, WIRE, Api

HUGE_INT = "1" + "0" * 400
DEEP = 30_000


def number_texts():
    """JSON number texts that must be refused as watchTime."""
    return [HUGE_INT, "-" + HUGE_INT, "1e400", "-1e400", "-1", "-0.5", "9" * 5000, "1" + "0" * 309]


def wrong_values():
    """JSON texts of the wrong type for either field."""
    return ['"true"', "1", "0", "null", "[]", "{}", '"12"', "[true]", '{"$gt": 0}', '"\\ud800"', '"\\u0000"']


def deep(opening, closing, depth=DEEP):
    """A JSON text nested `depth` times."""
    return opening * depth + closing * depth


def single_bodies():
    """(label, raw body bytes) of hostile single-lecture PATCH bodies."""
    bodies = []
    for text in number_texts():
        bodies.append((f"watchTime {text[:12]}", f'{{"isCompleted": true, "watchTime": {text}}}'))
        bodies.append((f"only watchTime {text[:12]}", f'{{"watchTime": {text}}}'))
    for text in wrong_values():
        bodies.append((f"isCompleted {text}", f'{{"isCompleted": {text}}}'))
        if text not in ("0", "1"):  # numbers are what watchTime takes
            bodies.append((f"watchTime {text}", f'{{"isCompleted": false, "watchTime": {text}}}'))
    bodies += [
        ("deep arrays", deep("[", "]")),
        ("deep objects", '{"a":' * DEEP + "1" + "}" * DEEP),
        ("deep inside watchTime", '{"isCompleted": true, "watchTime": ' + deep("[", "]") + "}"),
        ("deep inside an unknown field", '{"isCompleted": true, "x": ' + deep("[", "]") + "}"),
        ("repeated key", '{"isCompleted": true, "isCompleted": false}'),
        ("repeated unknown key", '{"isCompleted": true, "a": 1, "a": 2}'),
        ("lone surrogate key", '{"\\ud800": 1, "isCompleted": true}'),
        ("lone low surrogate key", '{"\\udfff\\ud800x": true}'),
        ("NUL key", '{"\\u0000": true}'),
        ("right-to-left override key", '{"\\u202eisCompleted": true}'),
        ("emoji key", '{"isCompleted": true, "\U0001f600": 1}'),
        ("NaN", '{"isCompleted": true, "watchTime": NaN}'),
        ("-Infinity", '{"isCompleted": true, "watchTime": -Infinity}'),
        ("empty", ""),
        ("whitespace", "   "),
        ("array", "[]"),
        ("null", "null"),
        ("string", '"isCompleted"'),
        ("number", HUGE_INT),
        ("truncated", '{"isCompleted": tru'),
        ("trailing garbage", '{"isCompleted": true} x'),
        ("nothing to do", "{}"),
        ("only unknown", '{"completionPercentage": 100}'),
        ("user", '{"isCompleted": true, "user": "6b0000000000000000000000"}'),
    ]
    return [(label, text.encode("utf-8", "surrogatepass")) for label, text in bodies] + encoded_bodies()


def encoded_bodies():
    """(label, bytes) of bodies that are valid JSON in an encoding other than UTF-8, or no encoding."""
    text = '{"isCompleted": true}'
    found = []
    for name, codec in (("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be"), ("utf-16 with BOM", "utf-16"),
                        ("utf-32-le", "utf-32-le"), ("utf-32-be", "utf-32-be"), ("utf-32 with BOM", "utf-32")):
        found.append((name, text.encode(codec)))
    found += [
        ("utf-8 BOM", codecs.BOM_UTF8 + text.encode()),
        ("latin-1 byte", b'{"isCompleted": true, "n\xe9": 1}'),
        ("overlong slash", b'{"isCompleted": true, "\xc0\xaf": 1}'),
        ("encoded surrogate", b'{"\xed\xa0\x80": true}'),
        ("lone continuation byte", b'{"isCompleted": true}\x80'),
    ]
    return found


def batch_bodies(lecture):
    """(label, raw bytes) of hostile batch bodies, the same ideas placed inside an item."""
    item = f'"lecture": "{lecture}"'
    bodies = []
    for text in number_texts():
        bodies.append((f"item watchTime {text[:12]}", f'{{"lectures": [{{{item}, "watchTime": {text}}}]}}'))
    for text in wrong_values():
        bodies.append((f"item isCompleted {text}", f'{{"lectures": [{{{item}, "isCompleted": {text}}}]}}'))
        bodies.append((f"lectures {text}", f'{{"lectures": {text}}}'))
        bodies.append((f"lecture {text}", f'{{"lectures": [{{"lecture": {text}, "isCompleted": true}}]}}'))
    bodies += [
        ("deep in lectures", '{"lectures": ' + deep("[", "]") + "}"),
        ("deep in an item", f'{{"lectures": [{{{item}, "isCompleted": ' + deep("[", "]") + "}]}"),
        ("repeated key in an item", f'{{"lectures": [{{{item}, "isCompleted": true, "isCompleted": false}}]}}'),
        ("repeated lectures", f'{{"lectures": [], "lectures": [{{{item}, "isCompleted": true}}]}}'),
        ("lone surrogate in an item", f'{{"lectures": [{{{item}, "\\ud800": true}}]}}'),
        ("item with nothing to do", f'{{"lectures": [{{{item}}}]}}'),
        ("too many items", '{"lectures": [' + ",".join([f'{{{item}, "isCompleted": true}}'] * 201) + "]}"),
        ("no items", '{"lectures": []}'),
        ("NaN in an item", f'{{"lectures": [{{{item}, "watchTime": NaN}}]}}'),
    ]
    return [(label, text.encode("utf-8", "surrogatepass")) for label, text in bodies] + encoded_bodies()


def assert_refused(response, label):
    """A 400 or 413 in the failure envelope that parses as JSON (strictly: UTF-8, no lone surrogate)."""
    assert response.status_code in (400, 413), (label, response.status_code, response.get_data()[:200])
    assert response.mimetype == "application/json", label
    body = json.loads(response.get_data().decode("utf-8"))
    assert body["status"] == "fail" and isinstance(body["message"], str), label
    assert set(body) <= {"status", "message", "errors"}, label
    if "errors" in body:
        assert isinstance(body["errors"], dict) and body["errors"], label
    return body


@WIRE
def test_hostile_single_lecture_bodies_are_400_and_store_nothing(api, lms):
    """Each hostile body for PATCH /:courseId/lectures/:lectureId: a clear 400 and no record."""
    course, lectures = lms.course(2)
    for label, raw in single_bodies():
        response = api.client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", data=raw,
                                    headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})
        assert_refused(response, label)
    assert lms.db.courseprogresses.count_documents({}) == 0


@WIRE
def test_hostile_batch_bodies_are_400_and_change_nothing(api, lms):
    """The same ideas inside PATCH /:courseId/lectures: 400, and an existing record untouched."""
    course, lectures = lms.course(2)
    assert api.patch(course, lectures[1], {"isCompleted": True}).status_code == 200
    before = lms.record(api.user_id, course)
    for label, raw in batch_bodies(lectures[0]):
        response = api.client.patch(f"{PREFIX}/{course}/lectures", data=raw,
                                    headers={"Authorization": f"Bearer {api.token}"})
        assert_refused(response, label)
    assert lms.record(api.user_id, course) == before


@WIRE
def test_the_refusals_say_what_is_wrong(api, lms):
    """Not just any 400: the message or the field names what the client must fix, escaped."""
    course, lectures = lms.course(1)
    url = f"{PREFIX}/{course}/lectures/{lectures[0]}"
    headers = {"Authorization": f"Bearer {api.token}"}

    def refused(raw):
        """The failure body for a raw request body."""
        return assert_refused(api.client.patch(url, data=raw, headers=headers), raw[:40])

    assert refused(f'{{"isCompleted": true, "watchTime": {HUGE_INT}}}'.encode())["errors"] == {
        "watchTime": ["Number too large."]}
    assert refused(deep("[", "]").encode())["message"] == "Request body nests too deeply"
    assert refused(b'{"isCompleted": true, "isCompleted": false}') == {
        "status": "fail", "message": "Request body repeats a key", "errors": {"isCompleted": ["Repeated key."]}}
    assert refused('{"isCompleted": true}'.encode("utf-16"))["message"] == "Request body must be JSON in UTF-8"
    surrogate = api.client.patch(url, data=b'{"\\ud800": 1, "isCompleted": true}', headers=headers)
    assert b'"\\ud800":["Unknown field."]' in surrogate.get_data(), "echoed as a JSON escape"


@WIRE
@pytest.mark.parametrize("text,stored", [
    ("1e308", 1e308), (str(2 ** 63), float(2 ** 63)), (str(2 ** 64 + 1), float(2 ** 64)), ("5e-324", 5e-324),
    ("1e-400", 0.0), ("-0.0", 0.0), ("0", 0.0), ("12.5", 12.5),
])
def test_extreme_but_valid_positions_are_stored_as_doubles(api, lms, text, stored):
    """Finite numbers >= 0 are accepted, stored as a BSON double, and shown back the same."""
    course, lectures = lms.course(1)
    raw = f'{{"isCompleted": false, "watchTime": {text}}}'.encode()
    response = api.client.patch(f"{PREFIX}/{course}/lectures/{lectures[0]}", data=raw,
                                headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, response.get_data()
    entry = lms.record(api.user_id, course)["lectureProgress"][0]
    assert isinstance(entry["watchTime"], float) and entry["watchTime"] == stored
    assert str(entry["watchTime"]) != "-0.0"
    assert response.json["data"]["lectureProgress"][0]["watchTime"] == stored
    assert api.get(course).json == response.json


@WIRE
def test_a_body_of_thirty_thousand_brackets_is_400_on_both_endpoints(api, lms):
    """The reported case: under 64 KB, far deeper than the parser takes."""
    course, lectures = lms.course(1)
    raw = deep("[", "]").encode()
    assert len(raw) < 64 * 1024
    headers = {"Authorization": f"Bearer {api.token}"}
    for url in (f"{PREFIX}/{course}/lectures/{lectures[0]}", f"{PREFIX}/{course}/lectures"):
        assert assert_refused(api.client.patch(url, data=raw, headers=headers), url)["message"] == \
            "Request body nests too deeply"
