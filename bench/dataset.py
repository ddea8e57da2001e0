"""Seed data in the original LMS's shape, tokens, and the request lists wrk reads.

Collections as the Node/Mongoose LMS wrote them: `users`, `courses` (ordered `lectures` ids),
`lectures`, `courseprogresses` (entries with their own `_id`, `__v`, millisecond times, and a
few records created before the course's last lecture was added, so reads must reconcile).
"""
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt
from bson import ObjectId

BATCH = 2000               # insert_many batch size
SMALL_COURSES = 10         # 10-lecture courses: 100k records = 10k users x 10 courses
SMALL_LECTURES = 10
BIG_LECTURES = 200
WRITER_LECTURES = 16       # one writer per lecture in the contention scenario
BASE_USERS = 1000          # users of the 1k phase (one record each per course size)
CHECK_USERS = 20           # of those, the last ones are only read: both apps must agree on them
EPOCH = datetime(2026, 1, 5, 8, 0, 0)
PASSWORD = "$2a$10$" + "x" * 53  # bcrypt-shaped, as the LMS stores it: never in a response


@dataclass
class Dataset:
    """Ids of what was seeded, and the secret the tokens are signed with."""
    secret: str
    users: list = field(default_factory=list)          # ObjectIds, user number = index
    small_courses: list = field(default_factory=list)  # {"_id", "lectures"}
    big_course: dict = None
    writer_course: dict = None
    small_pairs: list = field(default_factory=list)    # (user number, course index) with a record

    def token(self, user_id, lifetime=6 * 3600):
        """An HS256 JWT for the user, as the LMS's sign-in issues it (sub + exp)."""
        now = int(time.time())
        return jwt.encode({"sub": str(user_id), "iat": now, "exp": now + lifetime},
                          self.secret, algorithm="HS256")


def seed_catalog(db, secret, user_count, lms_indexes=True):
    """Users, lectures and courses (10 x 10 lectures, 1 x 200, 1 x 16), and the indexes that
    Mongoose created in the LMS's database (a shared database has them before we start)."""
    if lms_indexes:
        db.courseprogresses.create_index([("user", 1), ("course", 1)], unique=True)
    db.users.create_index("email", unique=True)
    data = Dataset(secret=secret)
    instructor = _insert_user(db, "Ada Instructor", "instructor")
    data.users = _insert_students(db, user_count)
    data.small_courses = [_insert_course(db, f"Course {i}", SMALL_LECTURES, instructor)
                          for i in range(SMALL_COURSES)]
    data.big_course = _insert_course(db, "The long course", BIG_LECTURES, instructor)
    data.writer_course = _insert_course(db, "The busy course", WRITER_LECTURES, instructor)
    return data


def new_user(db, name):
    """A fresh user without any record (the contention scenario creates its record)."""
    return _insert_user(db, name, "student")


def _insert_user(db, name, role):
    doc = {"name": name, "email": f"{ObjectId()}@example.test", "password": PASSWORD,
           "role": role}
    return db.users.insert_one(doc).inserted_id


def _insert_students(db, count):
    docs = [{"_id": ObjectId(), "name": f"Student {i}", "email": f"student{i}@example.test",
             "password": PASSWORD, "role": "student"} for i in range(count)]
    for start in range(0, count, BATCH):
        db.users.insert_many(docs[start:start + BATCH], ordered=False)
    return [doc["_id"] for doc in docs]


def _insert_course(db, title, lecture_count, instructor):
    lectures = [{"_id": ObjectId(), "title": f"{title}, part {i + 1}", "order": i + 1}
                for i in range(lecture_count)]
    db.lectures.insert_many(lectures)
    course = {"_id": ObjectId(), "title": title, "thumbnail": f"https://cdn.example.test/{title}.png",
              "instructor": instructor, "lectures": [lecture["_id"] for lecture in lectures]}
    db.courses.insert_one(course)
    return {"_id": course["_id"], "lectures": course["lectures"]}


def seed_base_records(db, data, rng):
    """The 1k phase: user i has a record on small course i % 10 and one on the 200-lecture course."""
    data.small_pairs = [(i, i % SMALL_COURSES) for i in range(BASE_USERS)]
    _insert_small(db, data, data.small_pairs, rng)
    _insert_records(db, data, [(i, data.big_course) for i in range(BASE_USERS)], rng,
                    "200-lecture")


def grow_small_records(db, data, total, rng):
    """Add records on the 10-lecture courses until there are `total` of them (every user, every course)."""
    if total > len(data.users) * SMALL_COURSES:
        raise ValueError(f"{total} records need {total // SMALL_COURSES} users")
    existing = set(data.small_pairs)
    pairs = [(u, c) for u in range(len(data.users)) for c in range(SMALL_COURSES)
             if (u, c) not in existing][:total - len(existing)]
    _insert_small(db, data, pairs, rng)
    data.small_pairs += pairs


def _insert_small(db, data, pairs, rng):
    _insert_records(db, data, [(u, data.small_courses[c]) for u, c in pairs], rng, "10-lecture")


def _insert_records(db, data, pairs, rng, label):
    """insert_many in batches (SecantusDB takes a few thousand documents a second), with progress."""
    started = time.monotonic()
    for start in range(0, len(pairs), BATCH):
        batch = [progress_record(data.users[u], course, rng) for u, course in pairs[start:start + BATCH]]
        db.courseprogresses.insert_many(batch, ordered=False)
        done = start + len(batch)
        if len(pairs) > BATCH:
            rate = done / (time.monotonic() - started)
            print(f"    {label} records: {done:,}/{len(pairs):,} ({rate:,.0f}/s)", flush=True)


def progress_record(user_id, course, rng):
    """A record as Mongoose saved it: some lectures done, some watched, `__v` > 0 or not."""
    lectures = course["lectures"]
    # One in twenty was created before the course's last lecture was added.
    known = lectures[:-1] if rng.random() < 0.05 else lectures
    created = EPOCH + timedelta(milliseconds=rng.randrange(90 * 86_400_000))
    entries = [_entry(lecture, created, rng) for lecture in known]
    done = sum(1 for entry in entries if entry["isCompleted"])
    percent = round(done / len(lectures) * 100)  # what the original stored
    touched = created + timedelta(milliseconds=rng.randrange(30 * 86_400_000))
    return {"_id": ObjectId(), "user": user_id, "course": course["_id"],
            "isCompleted": percent == 100, "completionPercentage": percent,
            "lectureProgress": entries, "lastAccessed": touched, "createdAt": created,
            "updatedAt": touched, "__v": rng.randrange(len(known) + 1)}


def _entry(lecture, created, rng):
    completed = rng.random() < 0.4
    watched = completed or rng.random() < 0.2
    return {"_id": ObjectId(), "lecture": lecture, "isCompleted": completed,
            "watchTime": rng.randrange(1, 1800) if watched else 0,
            "lastWatched": created + timedelta(milliseconds=rng.randrange(86_400_000))
            if watched else None}


# ---- request lists for wrk: METHOD \t PATH \t TOKEN \t BODY -------------------------------

def get_line(data, user, course):
    return f"GET\t/api/v1/progress/{course['_id']}\t{data.token(data.users[user])}\t"


def patch_line(data, user, course, lecture, flag):
    path = f"/api/v1/progress/{course['_id']}/lectures/{lecture}"
    body = '{"isCompleted": %s}' % ("true" if flag else "false")
    return f"PATCH\t{path}\t{data.token(data.users[user])}\t{body}"


def write_lines(path, lines):
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def check_pairs(data):
    """(user number, course) pairs only ever read, to compare the two apps' answers."""
    return [(u, data.small_courses[u % SMALL_COURSES]) for u in range(BASE_USERS - CHECK_USERS, BASE_USERS)]


def base_lists(data, course_of, rng, patches_per_user=4):
    """GET and PATCH lines over the 1k-phase users, each on its own record (not the check users)."""
    users = range(BASE_USERS - CHECK_USERS)
    gets = [get_line(data, u, course_of(u)) for u in users]
    patches = [patch_line(data, u, course_of(u), rng.choice(course_of(u)["lectures"]), rng.random() < 0.5)
               for u in users for _ in range(patches_per_user)]
    return gets, patches


def spread_lists(data, rng, count=2000):
    """GET and PATCH lines over random records of the whole (100k) set."""
    readonly = range(BASE_USERS - CHECK_USERS, BASE_USERS)
    sample = rng.sample(data.small_pairs, min(count, len(data.small_pairs)))
    picks = [(u, data.small_courses[c]) for u, c in sample if u not in readonly]
    gets = [get_line(data, u, c) for u, c in picks]
    patches = [patch_line(data, u, c, rng.choice(c["lectures"]), rng.random() < 0.5) for u, c in picks]
    return gets, patches


def writer_lines(data, user_id):
    """One PATCH line per lecture of the writer course, all for one user (one record)."""
    token = data.token(user_id)
    course = data.writer_course
    return [f"PATCH\t/api/v1/progress/{course['_id']}/lectures/{lecture}\t{token}\t"
            for lecture in course["lectures"]]
