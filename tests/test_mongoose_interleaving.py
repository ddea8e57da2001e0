"""Our writes interleaved with what real Mongoose 8 sends (contract section 2), hundreds of times.

The original app (tests/mongoose/driver.js, the real Mongoose model) and the service share
one database on the wire server. Each round starts from a record the original created for 3
of the course's 4 lectures (the 4th was added since, so our write appends its entry), then
lands one Mongoose save either between our read and our write, or across our whole write
(Mongoose read before it, saved after it):
- setting a field of an existing entry (element $set, filtered on __v, no increment);
- pushing the 4th lecture's entry ($push with $inc __v; Mongoose filters it on _id alone);
- reassigning the whole list ($set of the array, filtered on __v, $inc).
After each round no flag is lost and the stored figures match the stored flags. The one
exception is Mongoose's own: its push is not conditional, so a push saved from a copy read
before our write stores figures computed from that stale copy (tests/test_mongoose_harness.py
pins it); there the flags are still all kept, and our next write puts the figures right.
"""
import random

import pytest
from bson import ObjectId

from progress_service import create_app
from progress_service.progress import mount_of, store
from progress_service.progress.rule import completion_state

from .support import PREFIX, SECRET, Api, Lms, utc_ms

pytestmark = pytest.mark.wire

ROUNDS = 240
MONGOOSE_EDITS = ("element", "push", "reassign")
OUR_WRITES = ("patch", "position", "heartbeat", "batch", "complete", "reset")
PLACES = ("inside our write", "across our write")


@pytest.fixture
def shared(mongoose, wire_server):
    """(app, lms, mongoose): the service and the original app on one database."""
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
                      "MONGODB_URI": wire_server.uri(mongoose.database)})
    with app.app_context():
        yield app, Lms(mount_of(app).database.db()), mongoose
    mount_of(app).database.close()


def first_flags(stored, lectures):
    """Each current lecture's flag by its first stored entry (missing: not completed)."""
    found = {}
    for entry in stored.get("lectureProgress") or []:
        found.setdefault(entry["lecture"], bool(entry.get("isCompleted")))
    return {lecture: found.get(lecture, False) for lecture in lectures}


class Round:
    """One interleaving: the original's record, its edit, our write, and the expected flags."""

    def __init__(self, rng, lms, mongoose, api, student):
        self.rng, self.lms, self.mongoose, self.api = rng, lms, mongoose, api
        self.course, self.lectures = lms.course(4)
        self.student = student
        done = [lecture for lecture in self.lectures[:3] if rng.random() < 0.5]
        created = mongoose.ok("create", user=student, course=self.course, lectures=self.lectures[:3], completed=done)
        self.record_id = ObjectId(created["doc"]["_id"])
        self.edit = rng.choice(MONGOOSE_EDITS)
        self.ours = rng.choice(OUR_WRITES)
        self.place = rng.choice(PLACES)
        self.handle = None

    # --- the original app's side ------------------------------------------------------------

    def mongoose_load(self):
        """Mongoose reads the record (a hydrated document kept in the driver)."""
        loaded = self.mongoose.ok("load", user=self.student, course=self.course)
        self.handle, self.loaded = loaded["handle"], loaded["doc"]

    def mongoose_edit_and_save(self):
        """Mongoose changes its copy and saves; returns the answer (VersionError included)."""
        rng, lectures = self.rng, self.lectures
        if self.edit == "element":
            # Always a change of its copy: Mongoose sends nothing for a save that changes nothing.
            index = rng.randrange(3)
            self.edited = (index, not self.loaded["lectureProgress"][index]["isCompleted"])
            self.mongoose.ok("setEntryField", handle=self.handle, index=self.edited[0], field="isCompleted",
                             value=self.edited[1])
        elif self.edit == "push":
            self.edited = rng.random() < 0.5
            self.mongoose.ok("pushEntry", handle=self.handle, entry={"lecture": lectures[3], "isCompleted": self.edited})
        else:
            self.edited = [rng.random() < 0.5 for _ in lectures]
            self.mongoose.ok("reassign", handle=self.handle, entries=[
                {"lecture": lecture, "isCompleted": flag} for lecture, flag in zip(lectures, self.edited)])
        return self.mongoose.call("save", handle=self.handle)

    def apply_mongoose(self, flags, present):
        """The expected flags after Mongoose's save landed on a record with entries for `present`."""
        if self.edit == "element":
            index, value = self.edited
            flags[self.lectures[index]] = value
        elif self.edit == "push":
            if self.lectures[3] not in present:  # a second entry of a lecture never counts
                flags[self.lectures[3]] = self.edited
        else:
            flags.update(zip(self.lectures, self.edited))

    # --- our side ---------------------------------------------------------------------------

    def our_write(self):
        """Our request; returns (response, function applying its effect to expected flags)."""
        rng, lectures, api = self.rng, self.lectures, self.api
        if self.ours == "patch":
            lecture, value = rng.choice(lectures), rng.random() < 0.5
            return api.patch(self.course, lecture, {"isCompleted": value}), lambda f: f.update({lecture: value})
        if self.ours == "position":
            lecture = rng.choice(lectures)
            response = api.patch(self.course, lecture, {"watchTime": rng.randint(1, 500)},
                                 headers={"Prefer": "return=minimal"})
            return response, lambda f: None
        if self.ours == "heartbeat":
            # The player module's: played intervals and `at`, merged by an update pipeline.
            lecture, seconds = rng.choice(lectures), rng.randint(1, 500)
            response = api.patch(self.course, lecture, {"watchTime": seconds, "played": [[0, seconds]],
                                                        "at": utc_ms().isoformat()},
                                 headers={"Prefer": "return=minimal"})
            return response, lambda f: None
        if self.ours == "batch":
            picked = rng.sample(lectures, 2)
            values = [rng.random() < 0.5 for _ in picked]
            response = api.client.patch(f"{PREFIX}/{self.course}/lectures", headers={"Authorization": f"Bearer {api.token}"},
                                        json={"lectures": [{"lecture": str(l), "isCompleted": v}
                                                           for l, v in zip(picked, values)]})
            return response, lambda f: f.update(zip(picked, values))
        if self.ours == "complete":
            return api.complete(self.course), lambda f: f.update(dict.fromkeys(lectures, True))
        return api.reset(self.course), lambda f: f.update(dict.fromkeys(lectures, False))


def cheap_paths(monkeypatch):
    """Record whether each position update took the no-read path (store.record_position matched)."""
    taken = []
    real = store.record_position

    def recording(*args, **kwargs):
        """The real update, its outcome noted."""
        taken.append(real(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(store, "record_position", recording)
    return taken


def play(round_, monkeypatch):
    """Run one round; returns (response, expected flags, what the stored figures must be).

    The figures are "rule" (ours, over the flags and current lectures), "unchanged" (a
    position update that read nothing and changed no flag leaves them as stored), or
    "stale" (Mongoose's unconditional push saved from a copy read before our write).
    """
    before = round_.lms.db.courseprogresses.find_one({"_id": round_.record_id})
    flags = first_flags(before, round_.lectures)
    present = {entry["lecture"] for entry in before["lectureProgress"]}
    cheap = cheap_paths(monkeypatch)
    if round_.place == "inside our write":
        real_find = store.find
        landed = []

        def find_then_mongoose(records, user_id, course_id):
            """Our read, then the original app's whole read-modify-save before our write."""
            raw = real_find(records, user_id, course_id)
            if not landed:
                round_.mongoose_load()
                landed.append(round_.mongoose_edit_and_save())
            return raw

        monkeypatch.setattr(store, "find", find_then_mongoose)
        response, ours = round_.our_write()
        monkeypatch.undo()
        if not landed:  # the position update read nothing, so nothing ran inside it
            assert cheap == [True]
            return response, flags, "unchanged"
        assert landed[0]["ok"], landed[0]
        round_.apply_mongoose(flags, present)
        ours(flags)
        return response, flags, "rule"
    round_.mongoose_load()
    response, ours = round_.our_write()
    monkeypatch.undo()
    ours(flags)
    saved = round_.mongoose_edit_and_save()
    if round_.edit == "push":
        assert saved["ok"], saved  # not conditional: it lands
        after_ours = round_.lms.db.courseprogresses.find_one({"_id": round_.record_id})
        round_.apply_mongoose(flags, present | {entry["lecture"] for entry in after_ours["lectureProgress"][:-1]})
        return response, flags, "stale"
    # Filtered on the __v it read, which our write incremented: Mongoose's save matches nothing.
    assert saved["ok"] is False and saved["error"] == "VersionError", saved
    return response, flags, "unchanged" if cheap == [True] else "rule"


def test_hundreds_of_interleavings_with_real_mongoose_lose_nothing(shared, monkeypatch):
    """Every combination of Mongoose edit, our write and interleaving: flags kept, figures true."""
    app, lms, mongoose = shared
    rng = random.Random(20261129)
    student = lms.user()
    api = Api(app.test_client(), student)
    seen = set()
    for number in range(ROUNDS):
        round_ = Round(rng, lms, mongoose, api, student)
        before = lms.db.courseprogresses.find_one({"_id": round_.record_id})
        response, flags, figures = play(round_, monkeypatch)
        label = (number, round_.edit, round_.ours, round_.place)
        seen.add(label[1:])
        assert response.status_code in (200, 204), (label, response.get_json())
        stored = lms.db.courseprogresses.find_one({"_id": round_.record_id})
        assert first_flags(stored, round_.lectures) == flags, label
        assert lms.db.courseprogresses.count_documents({"user": student, "course": round_.course}) == 1, label
        if figures == "rule":
            expected = completion_state(stored["lectureProgress"], round_.lectures)
            assert (stored["completionPercentage"], stored["isCompleted"]) == expected, label
        elif figures == "unchanged":
            assert (stored["completionPercentage"], stored["isCompleted"]) == \
                (before["completionPercentage"], before["isCompleted"]), label
            assert stored["__v"] == before["__v"] + 1, "the position update still counts as a write"
        else:
            # Mongoose's stale push: our GET already applies the rule, and our next write repairs.
            shown = api.get(round_.course).json["data"]
            assert (shown["completionPercentage"], shown["isCompleted"]) == \
                completion_state(stored["lectureProgress"], round_.lectures), label
            api.patch(round_.course, round_.lectures[0], {"watchTime": 1})
            repaired = lms.db.courseprogresses.find_one({"_id": round_.record_id})
            assert (repaired["completionPercentage"], repaired["isCompleted"]) == \
                completion_state(repaired["lectureProgress"], round_.lectures), label
    assert len(seen) == len(MONGOOSE_EDITS) * len(OUR_WRITES) * len(PLACES), "every combination ran"


@pytest.mark.parametrize("order", ["mongoose creates inside our first write", "ours creates before mongoose's"])
def test_a_first_insert_racing_our_first_patch(shared, monkeypatch, order):
    """The original's first PATCH (findOne: none, then create) against ours: one record, both kept."""
    app, lms, mongoose = shared
    rng = random.Random(order)
    for _ in range(25):
        student = lms.user()
        course, lectures = lms.course(3)
        api = Api(app.test_client(), student)
        theirs = rng.sample(lectures, 1)
        if order.startswith("mongoose"):
            real_find = store.find
            raced = []

            def find_then_create(records, user_id, course_id):
                """Our read sees no record; the original creates one before our insert."""
                raw = real_find(records, user_id, course_id)
                if not raced:
                    raced.append(mongoose.ok("create", user=student, course=course, lectures=lectures,
                                             completed=theirs))
                return raw

            monkeypatch.setattr(store, "find", find_then_create)
            response = api.patch(course, lectures[2], {"isCompleted": True})
            monkeypatch.undo()
            expected = {lecture: lecture in theirs or lecture == lectures[2] for lecture in lectures}
        else:
            response = api.patch(course, lectures[2], {"isCompleted": True})
            late = mongoose.call("create", user=student, course=course, lectures=lectures, completed=theirs)
            assert late["ok"] is False and late["code"] == 11000, late
            expected = {lecture: lecture == lectures[2] for lecture in lectures}
        assert response.status_code == 200
        assert lms.db.courseprogresses.count_documents({"user": student, "course": course}) == 1
        stored = lms.record(student, course)
        assert first_flags(stored, lectures) == expected
        assert (stored["completionPercentage"], stored["isCompleted"]) == \
            completion_state(stored["lectureProgress"], lectures)
        assert api.get(course).json == response.json
