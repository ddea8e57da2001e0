#!/bin/sh
# End-to-end smoke test of the progress API: walks a student's whole story with exact
# assertions, then the error cases, and exits non-zero if any check failed.
#
#   scripts/qa/smoke.sh                        # seeds its own demo data (see below)
#   COURSE_ID=... LECTURE_IDS="a b c" TOKEN=... [USER_ID=...] scripts/qa/smoke.sh
#
# Environment:
#   BASE_URL      server root (default http://127.0.0.1:4000)
#   COURSE_ID, TOKEN, LECTURE_IDS (space separated, the course's lectures in course order,
#                 at least 3), USER_ID (optional: then data.user._id must equal it).
#                 If COURSE_ID or TOKEN is unset, all four come from
#                 `$FLASK progress seed-demo --lectures 3`, run in the checkout root.
#                 The token's user must have no record for the course yet (the first check is
#                 the 404 before any record), so give a freshly seeded course.
#   FLASK         default `.venv/bin/flask --app wsgi` (relative to the checkout root)
#   EXPECT_PERCENT_AFTER_FIRST   expected completionPercentage after the first PATCH
#                 (default: the contract's rule for 1 of N lectures, 33 for 3). Set it to a
#                 wrong value to see the script fail loudly.
#   INSTRUCTOR_TOKEN  optional JWT of the course's instructor (seed-demo's `instructorToken`
#                 when it prints one): then summary and students are also checked as the
#                 instructor, with exact numbers (the course must have no other records).
#   EXPECT_SUMMARY_STATUS   status of summary/students for the token's user (default 403:
#                 seed-demo's user is a student, not the course's instructor)
#   OUTSIDER_TOKEN  JWT of a user who is not enrolled in the course, not its instructor, not an
#                 admin (contract section 8: 403 `Not enrolled in this course`). Default: a token
#                 for a random id from `$FLASK progress token` (signed with the key the flask
#                 CLI uses, so set it when the server runs with another JWT_SECRET_KEY).
#   COMPLETES_AT  the position that completes the course's lectures by watching, in seconds
#                 (default 540: seed-demo's 600 s lectures at PROGRESS_COMPLETE_AT 0.9); `off`
#                 skips those checks (lectures without a duration, PROGRESS_COMPLETE_AT=off).
#   ALLOWED_ORIGIN  an origin the server allows (CLIENT_URL; default http://localhost:5173),
#                 for the CORS checks of the Prefer header
#   QA_VERBOSE=1  print every response body
# Exit status: 0 all checks passed, 1 some failed, 2 could not start (no server, no seed).
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

FLASK=${FLASK:-.venv/bin/flask --app wsgi}
COURSE_ID=${COURSE_ID:-}
LECTURE_IDS=${LECTURE_IDS:-}
USER_ID=${USER_ID:-}
INSTRUCTOR_TOKEN=${INSTRUCTOR_TOKEN:-}
OUTSIDER_TOKEN=${OUTSIDER_TOKEN:-}
COMPLETES_AT=${COMPLETES_AT:-540}
ALLOWED_ORIGIN=${ALLOWED_ORIGIN:-http://localhost:5173}

die() {
    echo "smoke: $*" >&2
    exit 2
}

# ---------------------------------------------------------------- set-up
if [ -z "$COURSE_ID" ] || [ -z "$TOKEN" ]; then
    echo "== seeding: $FLASK progress seed-demo --lectures 3   (in $QA_ROOT)"
    seed=$QA_TMP/seed.json
    # FLASK is a command line: split on purpose.
    # shellcheck disable=SC2086
    if ! (cd "$QA_ROOT" && $FLASK progress seed-demo --lectures 3) >"$seed" 2>"$QA_TMP/seed.err"; then
        cat "$QA_TMP/seed.err" "$seed" >&2
        die "seed-demo failed (is the server's database running? try 'make run')"
    fi
    sed 's/^/   seed: /' "$QA_TMP/seed.err"
    "$PYTHON" "$QA_PY" seed "$seed" || die "seed-demo printed no JSON object: $(cat "$seed")"
    COURSE_ID=$(json_get courseId "$seed") || die "seed-demo JSON has no courseId"
    TOKEN=$(json_get token "$seed") || die "seed-demo JSON has no token"
    USER_ID=$(json_get userId "$seed") || die "seed-demo JSON has no userId"
    LECTURE_IDS=$(json_words lectureIds "$seed") || die "seed-demo JSON has no lectureIds list"
    INSTRUCTOR_TOKEN=$(json_get instructorToken "$seed") || INSTRUCTOR_TOKEN=
fi
[ -n "$LECTURE_IDS" ] || die "LECTURE_IDS is not set (space separated lecture ids of COURSE_ID)"
if [ -z "$OUTSIDER_TOKEN" ]; then
    # A user in no course's enrolledStudents: any id the course does not list.
    OUTSIDER_ID=$(random_id)
    # shellcheck disable=SC2086  # FLASK is a command line
    OUTSIDER_TOKEN=$(cd "$QA_ROOT" && $FLASK progress token "$OUTSIDER_ID" 2>"$QA_TMP/token.err") ||
        die "'$FLASK progress token' failed (set OUTSIDER_TOKEN): $(cat "$QA_TMP/token.err")"
fi
case $COMPLETES_AT in
    off) ;;
    '' | . | *[!0-9.]* | *.*.*) die "COMPLETES_AT must be a number of seconds or off, got '$COMPLETES_AT'" ;;
esac

# LECTURE_IDS is a space separated list: split on purpose.
# shellcheck disable=SC2086
set -- $LECTURE_IDS
[ $# -ge 3 ] || die "need at least 3 lectures in LECTURE_IDS, got $#"
T=$#
L0=$1
L1=$2
L2=$3

# The contract's rule: c of t lectures completed -> (200*c + t) // (2*t), exact half up.
pct() {
    echo $(((200 * $1 + T) / (2 * T)))
}
P1=$(pct 1)
P2=$(pct 2)
EXPECT_PERCENT_AFTER_FIRST=${EXPECT_PERCENT_AFTER_FIRST:-$P1}
EXPECT_SUMMARY_STATUS=${EXPECT_SUMMARY_STATUS:-403}
USER_EXPECT=${USER_ID:-@id}
P=$PROGRESS_PREFIX/$COURSE_ID
RANDOM_COURSE=$(random_id)
RANDOM_LECTURE=$(random_id)

echo "== server $BASE_URL  course $COURSE_ID  user ${USER_ID:-?}  $T lectures: $LECTURE_IDS"
request GET /healthz
[ "$STATUS" != 000 ] || die "no server at $BASE_URL: $BODY"

# ---------------------------------------------------------------- before any record
echo "== before any record"
request GET "$P"
check "GET before any record -> 404" 404 ||
    if [ "$STATUS" = 200 ]; then
        echo "     hint: this user already has a record for the course; run with a freshly seeded course"
    fi
request POST "$P/complete"
check "complete before any record -> 404" 404
request POST "$P/reset"
check "reset before any record -> 404" 404

# ---------------------------------------------------------------- the story
echo "== the story"
request PATCH "$P/lectures/$L0" '{"isCompleted": true}'
check "first PATCH lecture0 true applies its change" 200 \
    data.completionPercentage "$EXPECT_PERCENT_AFTER_FIRST" \
    data.isCompleted false \
    data.completedAt null \
    data._id @id \
    data.course._id "$COURSE_ID" \
    data.user._id "$USER_EXPECT" \
    data.lectureProgress.# "$T" \
    data.lectureProgress.0.lecture "$L0" \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.0.lastWatched @isotime \
    data.lectureProgress.1.lecture "$L1" \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.1.lastWatched null \
    data.lectureProgress.2.lecture "$L2" \
    data.resume.lecture "$L1" \
    data.lastAccessed @isotime \
    data.createdAt @isotime \
    data.updatedAt @isotime \
    @raw '!~password'
REC_ID=$(json_get data._id) || REC_ID=@id
cp "$BODY_FILE" "$QA_TMP/first_patch.json"

request GET "$P"
check "GET after first PATCH" 200 \
    data.completionPercentage "$EXPECT_PERCENT_AFTER_FIRST" \
    data._id "$REC_ID" \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.1.isCompleted false
check "GET equals the PATCH response (data)" 200 \
    data "$(json_get data "$QA_TMP/first_patch.json")"

request PATCH "$P/lectures/$L1" '{"isCompleted": true, "watchTime": 30}'
check "PATCH lecture1 true watchTime 30" 200 \
    data.completionPercentage "$P2" \
    data.isCompleted false \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.1.isCompleted true \
    data.lectureProgress.1.watchTime 30 \
    data.lectureProgress.1.lastWatched @isotime \
    data.lectureProgress.2.isCompleted false

# Sent with curl's default form Content-Type: the body is JSON whatever the type.
REQUEST_CONTENT_TYPE=application/x-www-form-urlencoded
request PATCH "$P/lectures/$L1" '{"isCompleted": false}'
REQUEST_CONTENT_TYPE=
check "PATCH lecture1 false (form Content-Type)" 200 \
    data.completionPercentage "$P1" \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.1.watchTime 30 \
    data.resume.lecture "$L1" \
    data.resume.watchTime 30

request POST "$P/complete"
check "complete" 200 \
    data.completionPercentage 100 \
    data.isCompleted true \
    message "Course marked as completed" \
    data.completedAt @isotime \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.1.isCompleted true \
    data.lectureProgress.2.isCompleted true \
    data.lectureProgress.-1.isCompleted true \
    data.resume null
COMPLETED_AT=$(json_get data.completedAt) || COMPLETED_AT=@isotime

request POST "$P/complete"
check "complete again keeps completedAt" 200 \
    data.completionPercentage 100 \
    data.completedAt "$COMPLETED_AT"

request POST "$P/reset"
check "reset" 200 \
    data.completionPercentage 0 \
    data.isCompleted false \
    message "Course progress has been reset" \
    data.completedAt null \
    data.lectureProgress.# "$T" \
    data.lectureProgress.0.isCompleted false \
    data.lectureProgress.0.lastWatched null \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.1.lastWatched null \
    data.lectureProgress.1.watchTime 0 \
    data.lectureProgress.-1.isCompleted false \
    data.resume.lecture "$L0"

request PATCH "$P/lectures" \
    "{\"lectures\": [{\"lecture\": \"$L0\", \"isCompleted\": true}, {\"lecture\": \"$L2\", \"isCompleted\": true, \"watchTime\": 5}]}"
check "batch PATCH of two lectures" 200 \
    data.completionPercentage "$P2" \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.2.isCompleted true \
    data.lectureProgress.2.watchTime 5

request PATCH "$P/lectures" \
    "{\"lectures\": [{\"lecture\": \"$L1\", \"isCompleted\": true}, {\"lecture\": \"not-an-id\", \"isCompleted\": true}]}"
check "batch with one invalid item -> 400" 400
request PATCH "$P/lectures" \
    "{\"lectures\": [{\"lecture\": \"$L1\", \"isCompleted\": true}, {\"lecture\": \"$L1\", \"isCompleted\": false}]}"
check "batch with a lecture twice -> 400" 400
request PATCH "$P/lectures" '{"lectures": []}'
check "batch with no items -> 400" 400
request PATCH "$P/lectures" "{\"lectures\": [{\"lecture\": \"$RANDOM_LECTURE\", \"isCompleted\": true}]}"
check "batch with a foreign lecture -> 400" 400
request GET "$P"
check "rejected batches changed nothing" 200 \
    data.completionPercentage "$P2" \
    data.lectureProgress.1.isCompleted false

# ---------------------------------------------------------------- dashboard
echo "== dashboard"
request GET "$PROGRESS_PREFIX"
check "dashboard" 200 \
    data.total '>=1' \
    data.page 1 \
    data.limit 20 \
    data.items.0.course._id "$COURSE_ID" \
    data.items.0.completionPercentage "$P2"
request GET "$PROGRESS_PREFIX?page=1&limit=1"
check "dashboard page=1 limit=1" 200 \
    data.limit 1 \
    data.items.# 1
request GET "$PROGRESS_PREFIX?limit=101"
check "dashboard limit=101 -> 400" 400
request GET "$PROGRESS_PREFIX?page=0"
check "dashboard page=0 -> 400" 400
request GET "$PROGRESS_PREFIX?page=abc"
check "dashboard page=abc -> 400" 400

# ---------------------------------------------------------------- 400
echo "== malformed ids and bodies (400)"
request GET "$PROGRESS_PREFIX/not-an-id"
check "GET malformed course id -> 400" 400
request PATCH "$PROGRESS_PREFIX/not-an-id/lectures/$L0" '{"isCompleted": true}'
check "PATCH malformed course id -> 400" 400
request PATCH "$P/lectures/not-an-id" '{"isCompleted": true}'
check "PATCH malformed lecture id -> 400" 400
request PATCH "$P/lectures/$RANDOM_LECTURE" '{"isCompleted": true}'
check "PATCH foreign lecture -> 400" 400
request PATCH "$P/lectures/$L1" '{"isCompleted": "yes"}'
check "isCompleted \"yes\" -> 400" 400 errors.isCompleted @present
request PATCH "$P/lectures/$L1" '{"isCompleted": 1}'
check "isCompleted 1 -> 400" 400 errors.isCompleted @present
request PATCH "$P/lectures/$L1" '{}'
check "neither isCompleted nor watchTime -> 400" 400 errors '~isCompleted|watchTime'
request PATCH "$P/lectures/$L1" '{"isCompleted": true, "completionPercentage": 100}'
check "completionPercentage in body -> 400 naming it" 400 errors.completionPercentage @present
request PATCH "$P/lectures/$L1" '{"isCompleted": true, "watchTime": -1}'
check "watchTime -1 -> 400" 400 errors.watchTime @present
request PATCH "$P/lectures/$L1" '{"isCompleted": true, "watchTime": "30"}'
check "watchTime \"30\" -> 400" 400 errors.watchTime @present
request PATCH "$P/lectures/$L1" '[true]'
check "body a JSON array -> 400" 400
request PATCH "$P/lectures/$L1" 'isCompleted=true'
check "body not JSON -> 400" 400
request PATCH "$P/lectures/$L1"
check "no body -> 400" 400
request GET "$P"
check "rejected PATCHes changed nothing" 200 \
    data.completionPercentage "$P2" \
    data.lectureProgress.1.isCompleted false

# ---------------------------------------------------------------- auth
echo "== auth (401) and origin (403)"
request_noauth GET "$P"
check "GET without token -> 401" 401
request_noauth PATCH "$P/lectures/$L1" '{"isCompleted": true}'
check "PATCH without token -> 401" 401
request_cookie "token=garbage" GET "$P"
check "GET with token=garbage -> 401" 401
request_noauth GET "$P" "" -H "Authorization: Bearer garbage"
check "GET with Bearer garbage -> 401" 401
request_noauth GET "$P" "" -H "Authorization: Bearer $TOKEN"
check "GET with a Bearer token -> 200" 200 data.completionPercentage "$P2"
request PATCH "$P/lectures/$L0" '{"isCompleted": true}' -H "Origin: http://evil.example"
check "cookie PATCH from a foreign Origin -> 403" 403
request PATCH "$P/lectures/$L0" '{"isCompleted": true}' -H "Referer: http://evil.example/page"
check "cookie PATCH from a foreign Referer -> 403" 403
request_noauth PATCH "$P/lectures/$L0" '{"isCompleted": true}' \
    -H "Authorization: Bearer $TOKEN" -H "Origin: http://evil.example"
check "Bearer PATCH from a foreign Origin is not refused" 200 data.completionPercentage "$P2"

# ---------------------------------------------------------------- 404
echo "== unknown course (404)"
request GET "$PROGRESS_PREFIX/$RANDOM_COURSE"
check "GET unknown course -> 404" 404
request PATCH "$PROGRESS_PREFIX/$RANDOM_COURSE/lectures/$L0" '{"isCompleted": true}'
check "PATCH unknown course -> 404" 404
request POST "$PROGRESS_PREFIX/$RANDOM_COURSE/complete"
check "complete unknown course -> 404" 404
request POST "$PROGRESS_PREFIX/$RANDOM_COURSE/reset"
check "reset unknown course -> 404" 404

# ---------------------------------------------------------------- order of checks
echo "== order of checks: 401 -> 403 -> 400 ids -> 400 body -> 404 course -> 400 lecture"
request_noauth GET "$PROGRESS_PREFIX/not-an-id"
check "no token + malformed id -> 401" 401
request PATCH "$PROGRESS_PREFIX/not-an-id/lectures/$L0" '{"isCompleted": true}' -H "Origin: http://evil.example"
check "foreign Origin + malformed id -> 403" 403
request PATCH "$PROGRESS_PREFIX/$RANDOM_COURSE/lectures/$L0" '{"isCompleted": "yes"}'
check "unknown course + bad body -> 400" 400
request PATCH "$PROGRESS_PREFIX/$RANDOM_COURSE/lectures/$RANDOM_LECTURE" '{"isCompleted": true}'
check "unknown course + foreign lecture -> 404" 404

# ---------------------------------------------------------------- routing
echo "== routing errors are JSON"
request DELETE "$P"
check "DELETE a course record -> 405" 405
request GET "$P/no-such-thing/here"
check "unknown path -> 404" 404

# ---------------------------------------------------------------- instructor views
echo "== instructor views as the student"
request GET "$P/summary"
check "summary as a student -> $EXPECT_SUMMARY_STATUS" "$EXPECT_SUMMARY_STATUS"
request GET "$P/students"
check "students as a student -> $EXPECT_SUMMARY_STATUS" "$EXPECT_SUMMARY_STATUS"
request GET "$PROGRESS_PREFIX/$RANDOM_COURSE/summary"
check "summary of an unknown course -> 404" 404
request GET "$PROGRESS_PREFIX/not-an-id/summary"
check "summary malformed course id -> 400" 400
request_noauth GET "$P/summary"
check "summary without token -> 401" 401
request GET "$P/students.csv"
check "students.csv as a student -> $EXPECT_SUMMARY_STATUS (JSON)" "$EXPECT_SUMMARY_STATUS"

if [ -n "$INSTRUCTOR_TOKEN" ]; then
    echo "== instructor views as the instructor"
    # State now: lectures 0 and 2 completed, lecture 1 not; one record (this student's).
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/summary"
    check "summary as the instructor" 200 \
        data.students 1 \
        data.completed 0 \
        data.averagePercentage "$P2" \
        data.lectures.# "$T" \
        data.lectures.0.lecture "$L0" \
        data.lectures.0.title @string \
        data.lectures.0.completed 1 \
        data.lectures.1.completed 0 \
        data.lectures.2.completed 1 \
        data.asOf @isotime
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students"
    check "students as the instructor" 200 \
        data.total 1 \
        data.page 1 \
        data.limit 20 \
        data.next @null \
        data.asOf @isotime \
        data.items.0.user._id "$USER_EXPECT" \
        data.items.0.user.email @string \
        data.items.0.completionPercentage "$P2" \
        data.items.0.isCompleted false \
        @raw '!~password'
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students?limit=0"
    check "students limit=0 -> 400" 400
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students?status=in_progress&sort=percentage&order=desc"
    check "students in progress, by percentage" 200 data.total 1 data.items.0.user._id "$USER_EXPECT"
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students?status=completed"
    check "students completed: none" 200 data.total 0 data.items.# 0
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students?sort=name"
    check "students sort=name -> 400" 400 errors.sort @present
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students?after=nonsense"
    check "students after=nonsense -> 400" 400 errors.after @present
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students.csv"
    CHECK_ENVELOPE=0  # a CSV file, not the envelope
    check "students.csv as the instructor" 200 \
        @header:Content-Type '~^text/csv' \
        @raw '~^user,name,email,completionPercentage,isCompleted,completedAt,lastAccessed,' \
        @raw '!~password'
    CHECK_ENVELOPE=1
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P"
    check "the instructor may read the course's record: 404 (none), not 403" 404 \
        message '!~Not enrolled'
fi

# ---------------------------------------------------------------- section 8: enrollment
echo "== enrollment (contract section 8): a user not enrolled gets 403 and no record"
NOT_ENROLLED="Not enrolled in this course"
MINIMAL="Prefer: return=minimal"
outsider() {
    request_cookie "token=$OUTSIDER_TOKEN" "$@"
}
outsider GET "$P"
check "not enrolled: GET -> 403" 403 message "$NOT_ENROLLED"
outsider PATCH "$P/lectures/$L1" '{"isCompleted": true}'
check "not enrolled: PATCH -> 403" 403 message "$NOT_ENROLLED"
outsider PATCH "$P/lectures/$L1" '{"watchTime": 30}'
check "not enrolled: position-only PATCH -> 403" 403 message "$NOT_ENROLLED"
outsider PATCH "$P/lectures" "{\"lectures\": [{\"lecture\": \"$L1\", \"isCompleted\": true}]}"
check "not enrolled: batch PATCH -> 403" 403 message "$NOT_ENROLLED"
outsider POST "$P/complete"
check "not enrolled: complete -> 403" 403 message "$NOT_ENROLLED"
outsider POST "$P/reset"
check "not enrolled: reset -> 403" 403 message "$NOT_ENROLLED"
outsider PATCH "$P/lectures/$L1" '{"watchTime": 30}' -H "$MINIMAL"
check "not enrolled: PATCH with Prefer: return=minimal -> the same 403 JSON" 403 \
    message "$NOT_ENROLLED" @header:Preference-Applied @absent
outsider POST "$P/complete" "" -H "$MINIMAL"
check "not enrolled: complete with Prefer: return=minimal -> the same 403 JSON" 403 \
    message "$NOT_ENROLLED" @header:Preference-Applied @absent
echo "== enrollment in the order of checks: 400 ids/body -> 404 course -> 403 -> 400 lecture"
outsider GET "$PROGRESS_PREFIX/not-an-id"
check "not enrolled + malformed course id -> 400" 400
outsider PATCH "$P/lectures/$L1" '{"isCompleted": "yes"}'
check "not enrolled + bad body -> 400" 400 errors.isCompleted @present
outsider PATCH "$PROGRESS_PREFIX/$RANDOM_COURSE/lectures/$L1" '{"isCompleted": true}'
check "not enrolled + unknown course -> 404" 404 message '!~Not enrolled'
outsider PATCH "$P/lectures/$RANDOM_LECTURE" '{"isCompleted": true}'
check "not enrolled + foreign lecture -> 403 (before the lecture check)" 403 message "$NOT_ENROLLED"
echo "== enrollment: nothing was created"
outsider GET "$PROGRESS_PREFIX"
check "not enrolled: dashboard lists nothing" 200 data.total 0 data.items.# 0
if [ -n "$INSTRUCTOR_TOKEN" ]; then
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students"
    check "the course still has one record (the enrolled student's)" 200 \
        data.total 1 \
        data.items.# 1 \
        data.items.0.user._id "$USER_EXPECT"
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/summary"
    check "summary still counts one student" 200 data.students 1
else
    echo "     (no INSTRUCTOR_TOKEN: the course's record count is not checked)"
fi
request GET "$P"
check "the enrolled student's record is unchanged" 200 \
    data.completionPercentage "$P2" \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.2.isCompleted true

# ---------------------------------------------------------------- section 8: position
# State: lectures 0 and 2 completed, lecture 1 not.
echo "== watch position (section 8): a position-only PATCH records it and keeps the flag"
request PATCH "$P/lectures/$L1" '{"watchTime": 120}'
check "position only on a lecture not completed: stays not completed" 200 \
    data.completionPercentage "$P2" \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.1.watchTime 120 \
    data.lectureProgress.1.lastWatched @isotime \
    data.resume.lecture "$L1" \
    data.resume.watchTime 120
request PATCH "$P/lectures/$L0" '{"watchTime": 60.5}'
check "position only on a completed lecture: stays completed" 200 \
    data.completionPercentage "$P2" \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.0.watchTime 60.5 \
    data.lectureProgress.0.lastWatched @isotime
cp "$BODY_FILE" "$QA_TMP/position.json"
request GET "$P"
check "GET equals the position-only PATCH's response (data)" 200 \
    data "$(json_get data "$QA_TMP/position.json")"

if [ "$COMPLETES_AT" != off ]; then
    # One millisecond less: the service compares whole milliseconds (contract section 8).
    JUST_UNDER=$(awk -v x="$COMPLETES_AT" 'BEGIN { printf "%.3f", x - 0.001 }')
    echo "== completion by watching (section 8): watchTime >= $COMPLETES_AT s completes the lecture"
    request PATCH "$P/lectures/$L1" "{\"watchTime\": $JUST_UNDER}"
    check "watchTime $JUST_UNDER (1 ms under) does not complete" 200 \
        data.completionPercentage "$P2" \
        data.lectureProgress.1.isCompleted false \
        data.lectureProgress.1.watchTime "$JUST_UNDER"
    request PATCH "$P/lectures/$L1" "{\"watchTime\": $COMPLETES_AT}"
    check "watchTime $COMPLETES_AT completes the lecture (and here the course)" 200 \
        data.completionPercentage 100 \
        data.isCompleted true \
        data.completedAt @isotime \
        data.lectureProgress.1.isCompleted true \
        data.lectureProgress.1.watchTime "$COMPLETES_AT"
    request PATCH "$P/lectures/$L1" '{"watchTime": 10}'
    check "a lower position does not un-complete it" 200 \
        data.completionPercentage 100 \
        data.lectureProgress.1.isCompleted true \
        data.lectureProgress.1.watchTime 10
    request PATCH "$P/lectures/$L1" '{"isCompleted": false, "watchTime": 590}'
    check "isCompleted false with watchTime 590: the explicit flag wins" 200 \
        data.completionPercentage "$P2" \
        data.isCompleted false \
        data.completedAt null \
        data.lectureProgress.1.isCompleted false \
        data.lectureProgress.1.watchTime 590
    request GET "$P"
    check "GET: still not completed at 590" 200 \
        data.completionPercentage "$P2" \
        data.lectureProgress.1.isCompleted false \
        data.lectureProgress.1.watchTime 590
    request PATCH "$P/lectures" "{\"lectures\": [{\"lecture\": \"$L1\", \"watchTime\": $COMPLETES_AT}]}"
    check "a batch item with only watchTime $COMPLETES_AT completes its lecture" 200 \
        data.completionPercentage 100 \
        data.lectureProgress.1.isCompleted true \
        data.lectureProgress.1.watchTime "$COMPLETES_AT"
fi

# ---------------------------------------------------------------- section 8: minimal answers
echo "== minimal answers (section 8): Prefer: return=minimal -> 204, Preference-Applied, no body"
request POST "$P/reset" "" -H "$MINIMAL"
check "reset, minimal -> 204" 204 @header:Preference-Applied return=minimal
request GET "$P"
check "GET shows the reset" 200 \
    data.completionPercentage 0 \
    data.completedAt null \
    data.lectureProgress.0.isCompleted false \
    data.lectureProgress.0.watchTime 0 \
    data.lectureProgress.0.lastWatched null \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.1.watchTime 0 \
    data.lectureProgress.2.isCompleted false
request PATCH "$P/lectures/$L0" '{"isCompleted": true}' -H "$MINIMAL"
check "PATCH flag, minimal -> 204" 204 @header:Preference-Applied return=minimal
request GET "$P"
check "GET shows the flag" 200 \
    data.completionPercentage "$P1" \
    data.lectureProgress.0.isCompleted true \
    data.lectureProgress.0.lastWatched @isotime
request PATCH "$P/lectures/$L1" '{"watchTime": 42}' -H "$MINIMAL"
check "PATCH position only (a video player's update), minimal -> 204" 204 \
    @header:Preference-Applied return=minimal
request GET "$P"
check "GET shows the position, flag kept" 200 \
    data.completionPercentage "$P1" \
    data.lectureProgress.1.isCompleted false \
    data.lectureProgress.1.watchTime 42 \
    data.lectureProgress.1.lastWatched @isotime \
    data.resume.lecture "$L1" \
    data.resume.watchTime 42
request PATCH "$P/lectures" \
    "{\"lectures\": [{\"lecture\": \"$L1\", \"isCompleted\": true}, {\"lecture\": \"$L2\", \"watchTime\": 7}]}" \
    -H "$MINIMAL"
check "batch PATCH, minimal -> 204" 204 @header:Preference-Applied return=minimal
request GET "$P"
check "GET shows the batch" 200 \
    data.completionPercentage "$P2" \
    data.lectureProgress.1.isCompleted true \
    data.lectureProgress.1.watchTime 42 \
    data.lectureProgress.2.isCompleted false \
    data.lectureProgress.2.watchTime 7
request POST "$P/complete" "" -H "$MINIMAL"
check "complete, minimal -> 204" 204 @header:Preference-Applied return=minimal
request GET "$P"
check "GET shows the course completed" 200 \
    data.completionPercentage 100 \
    data.isCompleted true \
    data.completedAt @isotime \
    data.lectureProgress.2.isCompleted true
request PATCH "$P/lectures/$L2" '{"watchTime": 8}' -H "Prefer: handling=lenient, return=minimal"
check "return=minimal among other preferences -> 204" 204 @header:Preference-Applied return=minimal
request PATCH "$P/lectures/$L2" '{"watchTime": 9}' -H "Prefer: return=representation"
check "Prefer: return=representation -> the usual 200 with the record" 200 \
    data.lectureProgress.2.watchTime 9 \
    @header:Preference-Applied @absent
echo "== minimal answers: errors are unchanged JSON"
request PATCH "$P/lectures/$L1" '{"isCompleted": "yes"}' -H "$MINIMAL"
check "bad body, minimal -> 400 JSON" 400 errors.isCompleted @present @header:Preference-Applied @absent
request PATCH "$P/lectures/$RANDOM_LECTURE" '{"watchTime": 5}' -H "$MINIMAL"
check "foreign lecture, minimal -> 400 JSON" 400 @header:Preference-Applied @absent
request PATCH "$P/lectures" '{"lectures": []}' -H "$MINIMAL"
check "empty batch, minimal -> 400 JSON" 400 @header:Preference-Applied @absent
request POST "$PROGRESS_PREFIX/$RANDOM_COURSE/complete" "" -H "$MINIMAL"
check "complete unknown course, minimal -> 404 JSON" 404 @header:Preference-Applied @absent
request POST "$PROGRESS_PREFIX/not-an-id/reset" "" -H "$MINIMAL"
check "reset malformed course id, minimal -> 400 JSON" 400 @header:Preference-Applied @absent
request_noauth PATCH "$P/lectures/$L1" '{"watchTime": 5}' -H "$MINIMAL"
check "no token, minimal -> 401 JSON" 401 @header:Preference-Applied @absent
request GET "$P"
check "rejected minimal writes changed nothing" 200 \
    data.completionPercentage 100 \
    data.lectureProgress.1.watchTime 42 \
    data.lectureProgress.2.watchTime 9
echo "== minimal answers cross-origin (CORS for $ALLOWED_ORIGIN)"
request_noauth OPTIONS "$P/lectures/$L1" "" -H "Origin: $ALLOWED_ORIGIN" \
    -H "Access-Control-Request-Method: PATCH" -H "Access-Control-Request-Headers: content-type, prefer"
case $STATUS in
    200 | 204) preflight=$STATUS ;;
    *) preflight=200 ;;
esac
CHECK_ENVELOPE=0
check "preflight allows the Prefer request header" "$preflight" \
    @header:Access-Control-Allow-Origin "$ALLOWED_ORIGIN" \
    @header:Access-Control-Allow-Headers '~(?i)(^|[ ,])prefer($|[ ,])'
CHECK_ENVELOPE=1
request PATCH "$P/lectures/$L2" '{"watchTime": 10}' -H "$MINIMAL" -H "Origin: $ALLOWED_ORIGIN"
check "cookie PATCH from the allowed origin, minimal -> 204 exposing Preference-Applied" 204 \
    @header:Preference-Applied return=minimal \
    @header:Access-Control-Allow-Origin "$ALLOWED_ORIGIN" \
    @header:Access-Control-Expose-Headers '~(?i)(^|[ ,])preference-applied($|[ ,])'

if [ -n "$INSTRUCTOR_TOKEN" ]; then
    echo "== the course's instructor may write too; a position update creates the record (section 8)"
    request_cookie "token=$INSTRUCTOR_TOKEN" PATCH "$P/lectures/$L0" '{"watchTime": 30}' -H "$MINIMAL"
    check "instructor's first PATCH, position only, minimal -> 204" 204 \
        @header:Preference-Applied return=minimal
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P"
    check "instructor's new record: the position, no lecture completed" 200 \
        data.completionPercentage 0 \
        data.lectureProgress.# "$T" \
        data.lectureProgress.0.isCompleted false \
        data.lectureProgress.0.watchTime 30 \
        data.lectureProgress.0.lastWatched @isotime \
        data.lectureProgress.1.lastWatched null
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students"
    check "the course now has two records" 200 data.total 2
fi

finish
