"""In-process CPU per request of one checkout, for before/after comparisons of a change.

    git worktree add --detach /tmp/before <commit>^ && git worktree add --detach /tmp/after <commit>
    .venv/bin/python bench/inprocess.py /tmp/before; .venv/bin/python bench/inprocess.py /tmp/after

Starts a SecantusDB of its own, seeds courses of 10, 200 and 1,000 lectures (the student
enrolled, lectures of 600 s), then through Flask's test client measures the serving thread's
CPU per request (and wall time) for GET and PATCH at 10 and 200 lectures, a heartbeat at 200
(position only, Prefer: return=minimal) and complete/reset alternating at 1,000: the best of
3 rounds. Prints one JSON line {key: [cpu_ms, wall_ms]}. One process, no gunicorn: it shows
what a change does to our Python, not what a deployment serves (that is make bench).
"""
import os, sys, time, json, subprocess, socket, logging
from pathlib import Path
ROOT = sys.argv[1]
sys.path.insert(0, ROOT)
SECANTUSD = str(Path(sys.executable).parent / "secantusd-py")
import pymongo
from bson import ObjectId
import jwt as pyjwt
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
import tempfile
dbdir = tempfile.mkdtemp(prefix="inprocess-db-")
proc = subprocess.Popen([SECANTUSD, "--port", str(port), "--storage-path", dbdir, "--log-level", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    uri = f"mongodb://127.0.0.1:{port}/ab?directConnection=true"
    for _ in range(100):
        try:
            pymongo.MongoClient(uri, serverSelectionTimeoutMS=300).admin.command("ping"); break
        except Exception: time.sleep(0.2)
    SECRET = "x" * 48
    os.environ.update(MONGODB_URI=uri, JWT_SECRET_KEY=SECRET)
    db = pymongo.MongoClient(uri, tz_aware=True).get_default_database()
    student = ObjectId(); instructor = ObjectId()
    db.users.insert_one({"_id": student, "name": "S", "email": "s@x", "role": "student", "password": "p"})
    courses = {}
    for n in (10, 200, 1000):
        lectures = [ObjectId() for _ in range(n)]
        db.lectures.insert_many([{"_id": l, "title": f"L{i}", "duration": 600} for i, l in enumerate(lectures)])
        cid = ObjectId()
        db.courses.insert_one({"_id": cid, "title": f"C{n}", "thumbnail": None, "instructor": instructor, "lectures": lectures, "enrolledStudents": [student]})
        courses[n] = (cid, lectures)
    token = pyjwt.encode({"sub": str(student), "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
    H = {"Authorization": f"Bearer {token}"}
    from progress_service import create_app
    app = create_app({"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": uri})
    logging.getLogger("progress_service").handlers[:] = []; logging.getLogger("progress_service").propagate = False
    c = app.test_client()
    def measure(method, path, body, n, headers=H, alt=None):
        for _ in range(5): c.open(path, method=method, json=body, headers=headers)
        best = None
        for _ in range(3):
            t, w = time.thread_time(), time.perf_counter()
            for i in range(n):
                if alt and i % 2: r = c.open(alt, method=method, json=body, headers=headers)
                else: r = c.open(path, method=method, json=body, headers=headers)
                assert r.status_code in (200, 204), (path, r.status_code, r.get_data()[:200])
            cpu, wall = (time.thread_time() - t) / n * 1000, (time.perf_counter() - w) / n * 1000
            best = (cpu, wall) if best is None or cpu < best[0] else best
        return best
    out = {}
    for n in (10, 200, 1000):
        cid, lectures = courses[n]; P = f"/api/v1/progress/{cid}"
        c.patch(f"{P}/lectures/{lectures[0]}", json={"isCompleted": True}, headers=H)
    for n in (10, 200):
        cid, lectures = courses[n]; P = f"/api/v1/progress/{cid}"
        out[f"GET{n}"] = measure("GET", P, None, 150)
        out[f"PATCH{n}"] = measure("PATCH", f"{P}/lectures/{lectures[1]}", {"isCompleted": True}, 150)
    cid, lectures = courses[200]; P = f"/api/v1/progress/{cid}"
    out["HB200"] = measure("PATCH", f"{P}/lectures/{lectures[2]}", {"watchTime": 5}, 150, dict(H, Prefer="return=minimal"))
    cid, lectures = courses[1000]; P = f"/api/v1/progress/{cid}"
    out["COMPLETE_RESET1000"] = measure("POST", f"{P}/complete", None, 10, alt=f"{P}/reset")
    print(json.dumps({k: [round(v[0], 3), round(v[1], 2)] for k, v in out.items()}))
finally:
    proc.terminate(); proc.wait()
    subprocess.run(["rm", "-rf", dbdir])
    os._exit(0)
