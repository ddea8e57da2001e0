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
check "isCompleted missing -> 400" 400 errors.isCompleted @present
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
        data.lectures.2.completed 1
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students"
    check "students as the instructor" 200 \
        data.total 1 \
        data.page 1 \
        data.limit 20 \
        data.items.0.user._id "$USER_EXPECT" \
        data.items.0.user.email @string \
        data.items.0.completionPercentage "$P2" \
        data.items.0.isCompleted false \
        @raw '!~password'
    request_cookie "token=$INSTRUCTOR_TOKEN" GET "$P/students?limit=0"
    check "students limit=0 -> 400" 400
fi

finish
