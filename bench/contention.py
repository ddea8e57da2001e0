"""Did concurrent writers on one record lose anything? Checked from the database.

During the load each writer owns one lecture and sends watchTime = its request number, so the
stored watchTime of lecture i must lie between writer i's last acknowledged (200) request and
its last sent one (a request in flight when wrk stopped may still land). Below that, an
acknowledged write was overwritten by another writer's save: a lost update. Afterwards every
writer sets its lecture to true at the same moment, and the stored record must then show each
200-acknowledged final state and the percentage rule over them.
"""
import threading

from bench.load import http_json
from bench.reference_app import percentage


def stored_entries(db, user_id, course):
    """The record and its first entry per lecture (the one every reader uses)."""
    record = db.courseprogresses.find_one({"user": user_id, "course": course["_id"]})
    entries = {}
    for entry in (record or {}).get("lectureProgress", []):
        entries.setdefault(entry["lecture"], entry)
    return record, entries


def check_load(db, user_id, course, writers):
    """Compare each writer's acknowledged request number with the stored watchTime."""
    record, entries = stored_entries(db, user_id, course)
    lost, inconsistent = [], []
    for number, lecture in enumerate(course["lectures"], start=1):
        writer = writers.get(str(number))
        if writer is None:
            continue
        entry = entries.get(lecture, {})
        stored = int(entry.get("watchTime") or 0)
        if stored < writer["acked"]:
            lost.append({"writer": number, "acked": writer["acked"], "stored": stored})
        # The flag must come from the same request as the watchTime (true on odd numbers).
        if stored and bool(entry.get("isCompleted")) != (stored % 2 == 1):
            inconsistent.append({"writer": number, "stored": stored,
                                 "isCompleted": entry.get("isCompleted")})
    return {"lost": lost, "inconsistent": inconsistent, "rule_ok": rule_holds(record, course)}


def final_round(db, base_url, token, user_id, course, writers):
    """Every writer marks its lecture done at once; check each 200 is in the stored record."""
    paths = [f"/api/v1/progress/{course['_id']}/lectures/{lecture}" for lecture in course["lectures"]]
    numbers = {int(n): w["sent"] + 1 for n, w in writers.items()}
    statuses = {}
    barrier = threading.Barrier(len(numbers))

    def write(number):
        barrier.wait()  # release all writers together, for the most overlap
        statuses[number], _ = http_json(base_url, "PATCH", paths[number - 1], token,
                                        {"isCompleted": True, "watchTime": numbers[number]})

    threads = [threading.Thread(target=write, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    record, entries = stored_entries(db, user_id, course)
    lost = []
    for number, status in statuses.items():
        entry = entries.get(course["lectures"][number - 1], {})
        if status == 200 and (entry.get("isCompleted") is not True
                              or int(entry.get("watchTime") or 0) != numbers[number]):
            lost.append({"writer": number, "stored": {k: entry.get(k) for k in ("isCompleted", "watchTime")}})
    all_done = all(s == 200 for s in statuses.values()) and len(statuses) == len(course["lectures"])
    return {"statuses": _tally(statuses.values()), "lost": lost, "rule_ok": rule_holds(record, course),
            "complete": bool(record and record.get("completionPercentage") == 100
                             and record.get("isCompleted") is True) if all_done else None,
            "version": (record or {}).get("__v")}


def rule_holds(record, course):
    """Stored percentage and isCompleted agree with the contract's rule over the stored flags."""
    if record is None:
        return False
    expected = percentage({"lectureProgress": record.get("lectureProgress", [])}, course["lectures"])
    return record.get("completionPercentage") == expected and record.get("isCompleted") == (expected == 100)


def _tally(values):
    counts = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def check_separate(db, user_ids, course, writers):
    """Writers on DIFFERENT records (writer i: user i's record, lecture i): each record must
    hold its writer's last acknowledged write or a later one, the rule over its flags, and
    nothing on any other lecture (no request may land in another user's record)."""
    lost, inconsistent, foreign, rule_broken = [], [], [], []
    for number, user_id in enumerate(user_ids, start=1):
        writer = writers.get(str(number))
        if writer is None:
            continue
        record, entries = stored_entries(db, user_id, course)
        mine = course["lectures"][number - 1]
        entry = entries.get(mine, {})
        stored = int(entry.get("watchTime") or 0)
        if stored < writer["acked"] or (writer["acked"] and record is None):
            lost.append({"writer": number, "acked": writer["acked"], "stored": stored})
        if stored and bool(entry.get("isCompleted")) != (stored % 2 == 1):
            inconsistent.append({"writer": number, "stored": stored, "isCompleted": entry.get("isCompleted")})
        for lecture, other in entries.items():
            if lecture != mine and (other.get("watchTime") or other.get("isCompleted")):
                foreign.append({"writer": number, "lecture": str(lecture)})
        if record is not None and not rule_holds(record, course):
            rule_broken.append(number)
    return {"lost": lost, "inconsistent": inconsistent, "foreign_writes": foreign,
            "rule_broken": rule_broken}
