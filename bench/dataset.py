"""Seed data in the original LMS's shape, tokens, and the request lists wrk reads.

Collections as the Node/Mongoose LMS wrote them: `users`, `courses` (ordered `lectures` ids,
`enrolledStudents`), `lectures` (with a `duration` in seconds), `courseprogresses` (entries
with their own `_id`, `__v`, millisecond times, and a few records created before the course's
last lecture was added, so reads must reconcile).

Enrollment (contract section 8): the 200- and 1,000-lecture courses list their students in
`enrolledStudents`; the enrollment scenario's courses list 100,000 students (the callers
first) and 10, and a control lists 10 but is as large as the first (a 100,000-id list nobody
reads); the 10-lecture courses and the writers' course keep no list, so they are open to
every signed-in user. The callers come first in the long list because SecantusDB's `$in`
scans it in Python up to the first match: about 40 ms a query first, 0.3-0.5 s last. The
10-lecture courses are open because the 100k phase puts 100,000 students on the first:
SecantusDB evaluates `$in` in Python, about 5 microseconds per element scanned (60 ms a
query over 10,000), which would turn the 1k-vs-100k latency ratio into a measure of the
embedded database's array scan instead of the record count. Both apps
send the same course query either way and get the same reply, so their CPU does not depend
on it.
"""
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt
from bson import ObjectId

BATCH = 2000               # insert_many batch size
SMALL_COURSES = 10         # 10-lecture courses (the 1k phase: 100 records each)
SMALL_LECTURES = 10
EXPORT_COURSE = 0          # the 10-lecture course the 100k phase grows (the export's)
BIG_LECTURES = 200
HUGE_LECTURES = 1000       # the largest course size documented for the student endpoints
HUGE_RECORDS = 200         # users 0..199 have a record on the 1,000-lecture course (GET/PATCH)
RESET_USERS = 16           # the next ones are enrolled too: the complete/reset scenario's records
WRITER_LECTURES = 16       # one writer per lecture in the contention scenario
BASE_USERS = 1000          # users of the 1k phase (one record each per course size)
CHECK_USERS = 20           # of those, the last ones are only read: both apps must agree on them
CROWD = 100_000            # students enrolled in the enrollment scenario's big course
FEW = 10                   # ... and in its small one
ENROLLMENT_CALLERS = 10    # users enrolled in both, each with a record on both
COMPLETE_AT = 0.9          # the service's default PROGRESS_COMPLETE_AT
# The instructor's views (contract section 15): two courses of 200 lectures whose records hold
# every entry, with 100 and 10,000 students; twin 10-lecture courses with the 1k phase's
# users' records, one whose figures are kept and one whose are not; two students whose
# dashboards list 10 and 1,000 courses.
SUMMARY_LECTURES = 200
SUMMARY_STUDENTS = {"100": 100, "10k": 10_000}
TWINS = ("on", "off")
DASHBOARD_COURSES = {"10": 10, "1000": 1000}
EPOCH = datetime(2026, 1, 5, 8, 0, 0)
PASSWORD = "$2a$10$" + "x" * 53  # bcrypt-shaped, as the LMS stores it: never in a response


@dataclass
class Dataset:
    """Ids of what was seeded, and the secret the tokens are signed with."""
    secret: str
    users: list = field(default_factory=list)          # ObjectIds, user number = index
    small_courses: list = field(default_factory=list)  # {"_id", "lectures", "durations"}
    big_course: dict = None                            # 200 lectures, the 1k-phase users enrolled
    huge_course: dict = None                           # 1,000 lectures
    writer_course: dict = None                         # 16 lectures, open
    crowd_course: dict = None                          # 10 lectures, 100,000 enrolled + callers
    few_course: dict = None                            # 10 lectures, the callers only
    heavy_course: dict = None                          # the same, and 100,000 ids in another list
    callers: list = field(default_factory=list)        # ObjectIds of the enrollment callers
    instructor: object = None
    summary_courses: dict = field(default_factory=dict)  # "100", "10k": 200 lectures, every entry
    twin_courses: dict = field(default_factory=dict)     # "on", "off": figures kept or not
    dashboard_users: dict = field(default_factory=dict)  # "10", "1000": courses with a record
    small_pairs: list = field(default_factory=list)    # (user number, course index) with a record

    def token(self, user_id, lifetime=6 * 3600):
        """An HS256 JWT for the user, as the LMS's sign-in issues it (sub + exp)."""
        now = int(time.time())
        return jwt.encode({"sub": str(user_id), "iat": now, "exp": now + lifetime},
                          self.secret, algorithm="HS256")


def seed_catalog(db, secret, user_count, lms_indexes=True, huge_users=HUGE_RECORDS + RESET_USERS):
    """Users, lectures and courses (10 x 10 lectures, 1 x 200, 1 x 1,000, 1 x 16, and the
    enrollment scenario's two of 10), and the indexes that Mongoose created in the LMS's
    database (a shared database has them before we start). `huge_users`: how many of the
    first users are enrolled in the 1,000-lecture course."""
    if lms_indexes:
        db.courseprogresses.create_index([("user", 1), ("course", 1)], unique=True)
    db.users.create_index("email", unique=True)
    data = Dataset(secret=secret)
    instructor = data.instructor = _insert_user(db, "Ada Instructor", "instructor")
    data.users = insert_students(db, user_count)
    data.small_courses = [insert_course(db, f"Course {i}", SMALL_LECTURES, instructor)
                          for i in range(SMALL_COURSES)]
    data.big_course = insert_course(db, "The long course", BIG_LECTURES, instructor,
                                     enrolled=data.users[:BASE_USERS])
    data.huge_course = insert_course(db, "The longest course", HUGE_LECTURES, instructor,
                                      enrolled=data.users[:huge_users])
    data.writer_course = insert_course(db, "The busy course", WRITER_LECTURES, instructor)
    data.callers = [new_user(db, f"Enrolled caller {i}") for i in range(ENROLLMENT_CALLERS)]
    # Someone else's ids: the crowd need not be users, only a long list to look the caller up in.
    crowd = [ObjectId() for _ in range(CROWD)]
    data.crowd_course = insert_course(db, "The crowded course", SMALL_LECTURES, instructor,
                                       enrolled=data.callers + crowd)
    others = [ObjectId() for _ in range(max(0, FEW - ENROLLMENT_CALLERS))]
    data.few_course = insert_course(db, "The quiet course", SMALL_LECTURES, instructor,
                                     enrolled=others + data.callers)
    # The control: 10 enrolled too, but as large a document as the crowded course (a list
    # nobody reads), so the database takes as long to answer its query.
    data.heavy_course = insert_course(db, "The heavy course", SMALL_LECTURES, instructor,
                                       enrolled=others + data.callers,
                                       extra={"waitingList": [ObjectId() for _ in range(CROWD)]})
    return data


def new_user(db, name, role="student"):
    """A fresh user without any record (the contention scenario creates its record)."""
    return _insert_user(db, name, role)


def _insert_user(db, name, role):
    doc = {"name": name, "email": f"{ObjectId()}@example.test", "password": PASSWORD,
           "role": role}
    return db.users.insert_one(doc).inserted_id


def insert_students(db, count, first=0):
    """`count` students, numbered from `first` (names and emails are unique by number)."""
    docs = [{"_id": ObjectId(), "name": f"Student {i}", "email": f"student{i}@example.test",
             "password": PASSWORD, "role": "student"} for i in range(first, first + count)]
    for start in range(0, count, BATCH):
        db.users.insert_many(docs[start:start + BATCH], ordered=False)
    return [doc["_id"] for doc in docs]


def lecture_duration(number):
    """A lecture's length in seconds: 4 to 20 minutes, the same in every run."""
    return 240 + (number * 53) % 960


def insert_course(db, title, lecture_count, instructor, enrolled=None, extra=None):
    """A course and its lectures; `enrolled` None: no `enrolledStudents` field (open)."""
    lectures = [{"_id": ObjectId(), "title": f"{title}, part {i + 1}", "order": i + 1,
                 "duration": lecture_duration(i)} for i in range(lecture_count)]
    db.lectures.insert_many(lectures)
    course = {"_id": ObjectId(), "title": title, "thumbnail": f"https://cdn.example.test/{title}.png",
              "instructor": instructor, "lectures": [lecture["_id"] for lecture in lectures]}
    if enrolled is not None:
        course["enrolledStudents"] = list(enrolled)
    db.courses.insert_one({**course, **(extra or {})})
    return {"_id": course["_id"], "lectures": course["lectures"],
            "durations": {lecture["_id"]: lecture["duration"] for lecture in lectures}}


def seed_base_records(db, data, rng, huge_records=HUGE_RECORDS):
    """The 1k phase: user i has a record on small course i % 10 and one on the 200-lecture
    course; the first `huge_records` users one on the 1,000-lecture course; the enrollment
    callers one on each of that scenario's courses."""
    data.small_pairs = [(i, i % SMALL_COURSES) for i in range(BASE_USERS)]
    _insert_small(db, data, data.small_pairs, rng)
    insert_records(db, data, [(i, data.big_course) for i in range(BASE_USERS)], rng,
                    "200-lecture")
    insert_records(db, data, [(i, data.huge_course) for i in range(huge_records)], rng,
                    "1,000-lecture", batch=50)
    db.courseprogresses.insert_many(
        [progress_record(user, course, rng) for user in data.callers
         for course in (data.crowd_course, data.few_course, data.heavy_course)])


def seed_instructor_views(db, data, rng):
    """The courses and students of the instructor's views and the dashboard (see SUMMARY_*,
    TWINS, DASHBOARD_COURSES). Open courses (no enrollment list), like the 10-lecture ones:
    the instructor's views never ask about enrollment, and a 10,000-id list would make the
    embedded database's reading of the course document grow with the students."""
    for label, students in SUMMARY_STUDENTS.items():
        course = insert_course(db, f"Summary of {label}", SUMMARY_LECTURES, data.instructor)
        insert_records(db, data, [(u, course) for u in range(students)], rng,
                       f"summary {label}", batch=200, every_lecture=True)
        data.summary_courses[label] = course
    # Some students of the small one finished and some never started, for the list's filters.
    course = data.summary_courses["100"]
    for users, done in ((data.users[:10], True), (data.users[10:20], False)):
        db.courseprogresses.update_many(
            {"course": course["_id"], "user": {"$in": users}},
            {"$set": {"lectureProgress.$[].isCompleted": done, "completionPercentage": 100 if done else 0,
                      "isCompleted": done}})
    for twin in TWINS:
        course = insert_course(db, f"Twin, figures {twin}", SMALL_LECTURES, data.instructor)
        insert_records(db, data, [(u, course) for u in range(BASE_USERS)], rng, f"twin {twin}")
        data.twin_courses[twin] = course
    most = max(DASHBOARD_COURSES.values())
    for label in DASHBOARD_COURSES:
        data.dashboard_users[label] = new_user(db, f"Dashboard student of {label}")
    courses = insert_courses(db, "Dashboard course", most, SMALL_LECTURES, data.instructor,
                             enrolled=list(data.dashboard_users.values()))
    db.courseprogresses.insert_many(
        [progress_record(user, course, rng) for label, user in data.dashboard_users.items()
         for course in courses[:DASHBOARD_COURSES[label]]])


def remove_instructor_records(db, data):
    """The records seed_instructor_views inserted (their courses and users stay)."""
    courses = [course["_id"] for course in (*data.summary_courses.values(), *data.twin_courses.values())]
    db.courseprogresses.delete_many({"course": {"$in": courses}})
    db.courseprogresses.delete_many({"user": {"$in": list(data.dashboard_users.values())}})


def insert_courses(db, title, count, lecture_count, instructor, enrolled=None):
    """`count` courses of `lecture_count` lectures each, in a few batched commands."""
    courses, lectures = [], []
    for number in range(count):
        ids = [ObjectId() for _ in range(lecture_count)]
        lectures += [{"_id": lecture, "title": f"{title} {number}, part {i + 1}", "order": i + 1,
                      "duration": lecture_duration(i)} for i, lecture in enumerate(ids)]
        courses.append({"_id": ObjectId(), "title": f"{title} {number}", "thumbnail": None,
                        "instructor": instructor, "lectures": ids,
                        **({"enrolledStudents": list(enrolled)} if enrolled is not None else {})})
    for start in range(0, len(lectures), BATCH):
        db.lectures.insert_many(lectures[start:start + BATCH])
    db.courses.insert_many(courses)
    return [{"_id": course["_id"], "lectures": course["lectures"],
             "durations": {lecture: lecture_duration(i) for i, lecture in enumerate(course["lectures"])}}
            for course in courses]


def grow_small_records(db, data, total, rng):
    """The 100k phase: records on the first 10-lecture course (EXPORT_COURSE) until it has
    `total`, one per user: the collection then holds that many records and more, and the
    instructor's export has that many students to stream."""
    if total > len(data.users):
        data.users += insert_students(db, total - len(data.users), first=len(data.users))
    existing = set(data.small_pairs)
    pairs = [(u, EXPORT_COURSE) for u in range(total) if (u, EXPORT_COURSE) not in existing]
    _insert_small(db, data, pairs, rng)
    data.small_pairs += pairs


def _insert_small(db, data, pairs, rng):
    insert_records(db, data, [(u, data.small_courses[c]) for u, c in pairs], rng, "10-lecture")


def insert_records(db, data, pairs, rng, label, batch=BATCH, every_lecture=False):
    """insert_many in batches (SecantusDB takes a few thousand documents a second), with progress."""
    started = time.monotonic()
    for start in range(0, len(pairs), batch):
        docs = [progress_record(data.users[u], course, rng, every_lecture)
                for u, course in pairs[start:start + batch]]
        db.courseprogresses.insert_many(docs, ordered=False)
        done = start + len(docs)
        if len(pairs) > BATCH:
            rate = done / (time.monotonic() - started)
            print(f"    {label} records: {done:,}/{len(pairs):,} ({rate:,.0f}/s)", flush=True)


def progress_record(user_id, course, rng, every_lecture=False):
    """A record as Mongoose saved it: some lectures done, some watched, `__v` > 0 or not."""
    lectures = course["lectures"]
    # One in twenty was created before the course's last lecture was added (unless
    # `every_lecture`: then each record holds an entry for each lecture).
    known = lectures[:-1] if rng.random() < 0.05 and not every_lecture else lectures
    created = EPOCH + timedelta(milliseconds=rng.randrange(90 * 86_400_000))
    entries = [_entry(lecture, created, rng) for lecture in known]
    done = sum(1 for entry in entries if entry["isCompleted"])
    percent = round(done / len(lectures) * 100)  # what the original stored
    touched = created + timedelta(milliseconds=rng.randrange(30 * 86_400_000))
    return {"_id": ObjectId(), "user": user_id, "course": course["_id"],
            "isCompleted": percent == 100, "completionPercentage": percent,
            "lectureProgress": entries, "lastAccessed": touched, "createdAt": created,
            "updatedAt": touched, "__v": rng.randrange(len(known) + 1)}


def reset_record(user_id, course):
    """A record as POST reset leaves it (nothing completed, watched or timed), for the
    complete/reset scenario to start every run from."""
    entries = [{"_id": ObjectId(), "lecture": lecture, "isCompleted": False, "watchTime": 0,
                "lastWatched": None} for lecture in course["lectures"]]
    return {"_id": ObjectId(), "user": user_id, "course": course["_id"], "isCompleted": False,
            "completionPercentage": 0, "lectureProgress": entries, "lastAccessed": EPOCH,
            "createdAt": EPOCH, "updatedAt": EPOCH, "__v": 1}


def replace_records(db, user_ids, course):
    """Put each user's record on `course` back to the reset state (a fresh document)."""
    db.courseprogresses.delete_many({"user": {"$in": list(user_ids)}, "course": course["_id"]})
    db.courseprogresses.insert_many([reset_record(user, course) for user in user_ids])


def _entry(lecture, created, rng):
    completed = rng.random() < 0.4
    watched = completed or rng.random() < 0.2
    return {"_id": ObjectId(), "lecture": lecture, "isCompleted": completed,
            "watchTime": rng.randrange(1, 1800) if watched else 0,
            "lastWatched": created + timedelta(milliseconds=rng.randrange(86_400_000))
            if watched else None}


# ---- request lists for wrk: METHOD \t PATH \t TOKEN \t BODY -------------------------------

MINIMAL = "Prefer: return=minimal"


def get_line(data, user, course):
    return get_line_for(data, data.users[user], course)


def get_line_for(data, user_id, course, label=None):
    """A GET line; `label` goes in an X-Bench-Label header (CPU counted per label)."""
    extra = f"\tX-Bench-Label: {label}" if label else ""  # after the (empty) body
    return f"GET\t/api/v1/progress/{course['_id']}\t{data.token(user_id)}\t{extra}"


def patch_line(data, user, course, lecture, flag):
    path = f"/api/v1/progress/{course['_id']}/lectures/{lecture}"
    body = '{"isCompleted": %s}' % ("true" if flag else "false")
    return f"PATCH\t{path}\t{data.token(data.users[user])}\t{body}"


def heartbeat_line(data, user, course, lecture, watch_time, at_ms=None):
    """A video player's position update: only watchTime, and no answer body wanted. With
    `at_ms`, as the player module sends it: the 15 s played since the last report, and when."""
    path = f"/api/v1/progress/{course['_id']}/lectures/{lecture}"
    body = {"watchTime": watch_time}
    if at_ms is not None:
        body.update(played=[[max(0, watch_time - 15), watch_time]], at=at_ms)
    return f"PATCH\t{path}\t{data.token(data.users[user])}\t{json.dumps(body)}\t{MINIMAL}"


def post_line(data, user_id, course, action):
    """POST complete or reset (no body; the full answer)."""
    return f"POST\t/api/v1/progress/{course['_id']}/{action}\t{data.token(user_id)}\t"


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


def heartbeat_list(data, course, rng, count=4000, played=False):
    """Position updates over the 1k-phase users' records on `course`, each below the share of
    its lecture that completes it (so none completes: the cheap path). The course's last
    lecture is left out: one record in twenty was created before it was added and has no
    entry for it, which sends a position update down the full path. `played`: each carries
    its played interval and an `at` (the last hour's, so some are older than the stored one)."""
    users = range(BASE_USERS - CHECK_USERS)
    lectures = course["lectures"][:-1]
    now_ms = int(time.time() * 1000)
    lines = []
    for _ in range(count):
        lecture = rng.choice(lectures)
        below = int(course["durations"][lecture] * COMPLETE_AT) - 1
        at_ms = now_ms - rng.randrange(3_600_000) if played else None
        lines.append(heartbeat_line(data, rng.choice(users), course, lecture, rng.randrange(1, below), at_ms))
    return lines


def huge_lists(data, rng, patches_per_user=4):
    """GET and PATCH lines over the users with a 1,000-lecture record (all of them written)."""
    course = data.huge_course
    users = range(HUGE_RECORDS)
    gets = [get_line(data, u, course) for u in users]
    patches = [patch_line(data, u, course, rng.choice(course["lectures"]), rng.random() < 0.5)
               for u in users for _ in range(patches_per_user)]
    return gets, patches


def pair_lines(data, user_ids, course):
    """For wrk's pair mode: thread i alternates POST complete and POST reset on user i's record."""
    lines = []
    for user in user_ids:
        lines += [post_line(data, user, course, "complete"), post_line(data, user, course, "reset")]
    return lines


def enrollment_lists(data):
    """GET lines of the callers: on the course with 100,000 enrolled, on the one with 10, and
    those two and the heavy control mixed, labelled "100k", "10" and "10-heavy" (one run,
    each request picks one at random)."""
    crowd = [get_line_for(data, user, data.crowd_course) for user in data.callers]
    few = [get_line_for(data, user, data.few_course) for user in data.callers]
    mixed = [get_line_for(data, user, course, label) for user in data.callers
             for course, label in ((data.crowd_course, "100k"), (data.few_course, "10"),
                                   (data.heavy_course, "10-heavy"))]
    return crowd, few, mixed


def threaded_writer_lines(data, user_ids):
    """For wrk's writer mode, writers on DIFFERENT records: writer i PATCHes lecture i of the
    writers' course on user i's own record."""
    course = data.writer_course
    return [f"PATCH\t/api/v1/progress/{course['_id']}/lectures/{course['lectures'][i]}\t"
            f"{data.token(user)}\t" for i, user in enumerate(user_ids)]


def spread_lists(data, rng, count=2000):
    """GET and PATCH lines over random records of the whole (100k) set."""
    readonly = range(BASE_USERS - CHECK_USERS, BASE_USERS)
    sample = rng.sample(data.small_pairs, min(count, len(data.small_pairs)))
    picks = [(u, data.small_courses[c]) for u, c in sample if u not in readonly]
    gets = [get_line(data, u, c) for u, c in picks]
    patches = [patch_line(data, u, c, rng.choice(c["lectures"]), rng.random() < 0.5) for u, c in picks]
    return gets, patches


def flipping_lines(data, course, count, first=0):
    """For wrk's writer mode, `count` writers on different records of `course`: writer i
    PATCHes lecture i of the 1k-phase user first+i's record, its flag alternating (every PATCH
    after a writer's first flips a flag)."""
    lectures = course["lectures"]
    return [f"PATCH\t/api/v1/progress/{course['_id']}/lectures/{lectures[i % len(lectures)]}\t"
            f"{data.token(data.users[first + i])}\t" for i in range(count)]


def writer_lines(data, user_id):
    """One PATCH line per lecture of the writer course, all for one user (one record)."""
    token = data.token(user_id)
    course = data.writer_course
    return [f"PATCH\t/api/v1/progress/{course['_id']}/lectures/{lecture}\t{token}\t"
            for lecture in course["lectures"]]
