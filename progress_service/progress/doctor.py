"""`progress doctor`: one mount checked against its real database, and what to change (contract section 11).

Each check returns Findings: what it found (`ok`), what works but may surprise (`warn`), and
what stops the mount from serving (`fail`), each with the change that fixes it. Nothing here
writes, except what the service itself does on its first write with xAPI on (the outbox).
"""
from dataclasses import dataclass
from urllib.parse import urlsplit

from bson import Binary
from pymongo.errors import PyMongoError

from . import stored
from .catalog import HostCatalog, MongoCatalog
from .database import RECORDS, UNIQUE
from .exceptions import ProgressError
from .present import oid
from .signin import ALGORITHM, JwtSignIn

# MongoEngine names a Document's collection after its class: Course -> `course`.
MONGOENGINE_NAMES = {"courses": "course", "lectures": "lecture", "users": "user"}
PARSE_ID_CHANGE = ("give the catalog the parse_id of your ids, returning them as you store them "
                   "(MongoCatalog(parse_id=int | str | uuid.UUID | fn), or a parse_id method on your catalog)")


@dataclass(frozen=True)
class Finding:
    """One line of the report: `ok`, `warn` or `fail`, about `topic`, and what to change."""

    level: str
    topic: str
    text: str
    change: str = None


def examine(app, mount, course_text=None):
    """Every finding about `mount` on `app`; the catalog's course `course_text` when given."""
    findings = [*sign_in(app, mount), database(mount)]
    if findings[-1].level == "fail":
        return findings
    findings.append(unique_index(mount))
    findings.extend(catalog(mount, course_text))
    if mount.outbox is not None:
        findings.append(transactions(mount))
    return findings


def sign_in(app, mount):
    """Which sign-in the mount uses, and whether it can take the tokens the config describes."""
    signin = mount.signin
    found = [Finding("ok", "sign-in", signin.describe(app))]
    if isinstance(signin, JwtSignIn) and signin.host_manager(app) is None:
        algorithm = app.config.get("JWT_ALGORITHM") or ALGORITHM
        if algorithm != ALGORITHM or not signin.own.key:
            found.append(Finding(
                "fail", "sign-in", f"JWT_ALGORITHM is {algorithm}, but the app has no JWTManager of its own: "
                                   f"the extension's check takes HS256 tokens only",
                "create your JWTManager(app) (before or after mounting), or pass identity= to Progress"))
    return found


def where(mount):
    """The database as the operator knows it: the host's connection, or our URI without a password."""
    database = mount.database
    name = database.db().name
    if database.uses_host_connection:
        return f"the host's MongoEngine connection {database.alias!r}, database {name!r}"
    parts = urlsplit(mount.settings.mongodb_uri)
    return f"its own client for {parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}, database {name!r}"


def database(mount):
    """Whether the database answers."""
    try:
        mount.database.ping()
    except PyMongoError as exc:
        return Finding("fail", "database", f"does not answer: {exc}",
                       "check MONGODB_URI, or the connection registered under PROGRESS_DB_ALIAS")
    return Finding("ok", "database", f"answers: {where(mount)}")


def unique_index(mount):
    """The unique (user, course) index on courseprogresses: in place, or whether it can be made."""
    records = mount.database.records()
    existing = {tuple(index["key"].items()): index for index in records.list_indexes()}
    found = existing.get(UNIQUE.key_tuple)
    if found is not None:
        if found.get("unique") and "partialFilterExpression" not in found:
            return Finding("ok", "index", f"{found['name']} on {RECORDS} (user, course) is unique")
        return Finding("fail", "index", f"{found['name']} on {RECORDS} (user, course) is not unique for every "
                                        f"record: writes are refused",
                       f"drop it (db.{RECORDS}.dropIndex({found['name']!r})); the service creates the unique one")
    duplicates = list(records.aggregate([
        {"$group": {"_id": {"user": "$user", "course": "$course"}, "records": {"$sum": 1}}},
        {"$match": {"records": {"$gt": 1}}}, {"$limit": 3}]))
    if duplicates:
        return Finding("fail", "index", f"{RECORDS} holds several records for one (user, course), so its unique "
                                        f"index cannot be built: writes would be refused",
                       "merge or remove the duplicate records; the service then builds the index")
    return Finding("ok", "index", f"{UNIQUE.name} is not on {RECORDS} yet and can be made (no duplicate "
                                  f"records): the service creates it on its first request")


def catalog(mount, course_text=None):
    """The catalog finds courses, and in one of them its lectures, durations and enrollment."""
    source = mount.catalog
    if course_text is None and isinstance(source, MongoCatalog):
        course_text, problem = sample_course(mount)
        if problem is not None:
            return [problem]
    if course_text is None:
        name = type(source.host).__name__ if isinstance(source, HostCatalog) else type(source).__name__
        return [Finding("warn", "catalog", f"your own catalog ({name}): no course was checked",
                        "run it again with --course <id of one of your courses>")]
    try:
        course_id = mount.parse_id(course_text)
    except ValueError as exc:
        return [Finding("fail", "catalog", f"the course id {course_text!r} is not one parse_id takes ({exc}): "
                                           f"clients' paths would be 400", PARSE_ID_CHANGE)]
    info = source.course(course_id)
    if info is None:
        return [Finding("fail", "catalog", f"the catalog finds no course {course_text!r}{read_from(source, 'courses')}",
                        "check that the catalog reads where your courses are (docs/mounting.md, \"Your data\")")]
    found = f"finds the course {course_text!r} ({info.title!r}){read_from(source, 'courses')}"
    return [Finding("ok", "catalog", found),
            lectures(source, info), instructor(source, info), enrollment(mount, info)]


def read_from(source, name):
    """' in `collection`' for a MongoCatalog, else nothing (a host's catalog reads its own way)."""
    return f" in `{source.collections[name]}`" if isinstance(source, MongoCatalog) else ""


def sample_course(mount):
    """(one course's id as text, None), or (None, why the MongoCatalog's courses cannot be used)."""
    source = mount.catalog
    db = mount.database.db()
    courses = source.collections["courses"]
    raw = db[courses].find_one({}, {"_id": 1})
    if raw is None:
        present = sorted(name for name in db.list_collection_names() if not name.startswith("system."))
        renamed = {role: name for role, name in MONGOENGINE_NAMES.items() if name in present}
        change = "point the catalog at your collections: MongoCatalog(courses=..., lectures=..., users=...)"
        if renamed:
            change = ("your documents look like MongoEngine's defaults: MongoCatalog(" +
                      ", ".join(f"{role}={name!r}" for role, name in renamed.items()) + ")")
        return None, Finding("fail", "catalog", f"no course in `{courses}`: every course would be 404 (the database "
                                                f"has: {', '.join(present) or 'no collections'})", change)
    stored = raw["_id"]
    if isinstance(stored, Binary) and stored.subtype == 3:
        return None, Finding("fail", "catalog", f"course ids in `{courses}` are UUIDs stored the legacy way (binary "
                                                f"subtype 3, MongoEngine's default), which the mount's client does not "
                                                f"read", "add uuidRepresentation=pythonLegacy to MONGODB_URI (or mount "
                                                         "on the host's connection)")
    text = oid(stored)
    try:
        parsed = source.parse_id(text)
    except ValueError as exc:
        return None, Finding("fail", "catalog", f"the course id {text!r} in `{courses}` is not one parse_id takes "
                                                f"({exc}): clients' paths would be 400", PARSE_ID_CHANGE)
    if parsed != stored:
        return None, Finding("fail", "catalog", f"the course id {text!r} is stored as {type(stored).__name__} but "
                                                f"parse_id makes a {type(parsed).__name__}: no query would find it",
                             PARSE_ID_CHANGE)
    return text, None


def lectures(source, info):
    """The sampled course's lectures: how many the catalog finds, and with durations."""
    ids = list(dict.fromkeys(info.lecture_ids))
    titles = source.lecture_titles(ids) if ids else {}
    durations = source.lecture_durations(ids) if ids else {}
    text = (f"{len(ids)} lectures listed, {len(titles)} found{read_from(source, 'lectures')}, "
            f"{len(durations)} with a duration")
    if not ids:
        return Finding("warn", "lectures", text + ": its progress is always 0 %",
                       "check the course's `lectures` (ordered lecture ids)")
    if len(titles) < len(ids):
        return Finding("warn", "lectures", text + ": the instructor's summary shows the missing ones untitled",
                       "check that the lecture ids of the course are the `_id`s of its lectures")
    if len(durations) < len(ids):
        return Finding("warn", "lectures", text + ": lectures without one complete only when marked",
                       "give lectures a `duration` in seconds, for completion by watching")
    return Finding("ok", "lectures", text)


def instructor(source, info):
    """The sampled course's instructor, as the catalog finds users."""
    if info.instructor is None:
        return Finding("warn", "users", "the course has no instructor: only admins see its summary",
                       "set the course's `instructor` to its teacher's user id")
    user = source.user(info.instructor)
    if user is None:
        return Finding("warn", "users", f"its instructor {oid(info.instructor)!r} is not found"
                                        f"{read_from(source, 'users')}: answers show users without names, and "
                                        f"nobody is known as an admin", "check where the catalog reads users")
    return Finding("ok", "users", f"finds its instructor {user.name!r}{read_from(source, 'users')}")


def enrollment(mount, info):
    """Who may use the sampled course."""
    if not mount.settings.enrollment_required:
        return Finding("ok", "enrollment", "off (PROGRESS_ENROLLMENT=off): every signed-in user may use every course")
    source = mount.catalog
    if isinstance(source, HostCatalog):
        if source.answers_enrollment:
            return Finding("ok", "enrollment", "your catalog's is_enrolled decides")
        return Finding("warn", "enrollment", "your catalog has no is_enrolled: every signed-in user may use any course",
                       "add is_enrolled(course_id, user_id) to your catalog")
    courses = mount.database.db()[source.collections["courses"]]
    raw = courses.find_one({"_id": info.id}, {"listed": {"$isArray": "$enrolledStudents"},
                                              "count": {"$size": stored.array_expression("$enrolledStudents")}})
    if not raw.get("listed"):
        return Finding("warn", "enrollment", "the course has no `enrolledStudents`: every signed-in user may use it",
                       "list its students in `enrolledStudents`, or set PROGRESS_ENROLLMENT=off to say it is meant")
    count = raw["count"]
    return Finding("ok", "enrollment", f"`enrolledStudents` lists {count} student{'' if count == 1 else 's'}")


def transactions(mount):
    """xAPI statements are stored with the change, in a transaction: the database must take them."""
    try:
        mount.outbox.check_deployment()
    except ProgressError as exc:
        return Finding("fail", "xapi", exc.message,
                       "run MongoDB as a replica set (one node is enough), or unset PROGRESS_XAPI_ENDPOINT")
    return Finding("ok", "xapi", "the database takes transactions: statements are stored with each change")
