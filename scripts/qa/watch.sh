#!/bin/sh
# Play a lecture the way a video player reports it (contract section 8): every N seconds
# PATCH /api/v1/progress/:courseId/lectures/:lectureId {"watchTime": <position>} with
# `Prefer: return=minimal`, the position advancing by N each time, one line per request:
#
#   00:41:07  position 540  HTTP 204  completed yes
#
# The completed column comes from a GET after each successful PATCH until the lecture is seen
# completed (watching never un-completes it, so no more GETs after that); with `--get end`
# there is no GET while playing (the column shows -), only the one for the summary.
# It runs until Ctrl-C or SIGTERM, or until the position reaches --until (its last PATCH is at
# exactly that position), then prints one summary line from a final GET:
#
#   watch: interrupted (SIGINT); 12 PATCHes (12 ok, 0 failed), positions 0..55; lecture completed: no, stored watchTime 55
#
# A 4xx answer (but 408, 409, 429) ends it at once: repeating the same request cannot help
# (401 token, 403 not enrolled, 404 course, 400 lecture not in this course). A 5xx or no answer
# (000) is printed and playing goes on, as a player would retry (e.g. across a restart).
#
# Options (each also from the environment):
#   --every N          seconds between PATCHes and the position's step (WATCH_EVERY, default 5;
#                      decimals allowed, > 0)
#   --from SECONDS     the first position sent (WATCH_FROM, default 0)
#   --until SECONDS    stop after sending this position (WATCH_UNTIL, default: never)
#   --get each|end     when to GET the record for the completed column (WATCH_GET, default each)
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Exits 0 when every PATCH was answered 2xx (whether stopped by --until, Ctrl-C or SIGTERM),
# 1 when some were not, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

USAGE="[--every N] [--from SECONDS] [--until SECONDS] [--get each|end] COURSE_ID LECTURE_ID"
usage() {
    echo "usage: $0 $USAGE" >&2
    exit 2
}
misuse() {
    echo "watch: $*" >&2
    usage
}

EVERY=${WATCH_EVERY:-5}
FROM=${WATCH_FROM:-0}
UNTIL=${WATCH_UNTIL:-}
GET_MODE=${WATCH_GET:-each}

while [ $# -gt 0 ]; do
    case $1 in
        -h | --help)
            echo "usage: $0 $USAGE"
            exit 0
            ;;
        --every | --from | --until | --get)
            [ $# -ge 2 ] || misuse "$1 needs a value"
            _opt=$1
            _val=$2
            shift 2
            ;;
        --every=* | --from=* | --until=* | --get=*)
            _opt=${1%%=*}
            _val=${1#*=}
            shift
            ;;
        --)
            shift
            break
            ;;
        -?*) misuse "unknown option $1" ;;
        *) break ;;
    esac
    case $_opt in
        --every) EVERY=$_val ;;
        --from) FROM=$_val ;;
        --until) UNTIL=$_val ;;
        --get) GET_MODE=$_val ;;
    esac
done
[ $# -eq 2 ] || usage
COURSE_ID=$1
LECTURE_ID=$2

# A plain non-negative decimal: what JSON and awk both read the same way.
is_number() {
    case $1 in
        '' | . | *[!0-9.]* | *.*.*) return 1 ;;
    esac
    return 0
}
# awk does the decimal arithmetic (sh has integers only); positions are rounded to whole
# milliseconds, as the service compares them, and printed without trailing zeros.
calc() {
    awk -v a="$1" -v b="${2:-0}" -v k="${3:-0}" "BEGIN {
        x = $4
        if (x == \"true\" || x == \"false\") { print x; exit }
        s = sprintf(\"%.3f\", x); sub(/0+\$/, \"\", s); sub(/\\.\$/, \"\", s); print s }"
}

is_number "$EVERY" || misuse "--every must be a number of seconds, got '$EVERY'"
[ "$(calc "$EVERY" 0 0 '(a > 0) ? "true" : "false"')" = true ] || misuse "--every must be more than 0"
is_number "$FROM" || misuse "--from must be a position in seconds (>= 0), got '$FROM'"
if [ -n "$UNTIL" ]; then
    is_number "$UNTIL" || misuse "--until must be a position in seconds (>= 0), got '$UNTIL'"
    [ "$(calc "$UNTIL" "$FROM" 0 '(a >= b) ? "true" : "false"')" = true ] ||
        misuse "--until ($UNTIL) is before --from ($FROM)"
fi
case $GET_MODE in
    each | end) ;;
    *) misuse "--get must be each or end, got '$GET_MODE'" ;;
esac

URL_PATH=$PROGRESS_PREFIX/$COURSE_ID/lectures/$LECTURE_ID
SENT=0
OK=0
FAILED=0
FIRST_POS=
LAST_POS=
SEEN_COMPLETED=no
SLEEPER=

# The lecture's completed flag from the last body (yes/no), or "?" if it is not there.
completed_in_body() {
    case $(lecture_get "$LECTURE_ID" isCompleted) in
        true) echo yes ;;
        false) echo no ;;
        *) echo "?" ;;
    esac
}

summary() {
    # A second Ctrl-C while the final GET runs leaves at once.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if [ -n "$SLEEPER" ]; then
        kill "$SLEEPER" 2>/dev/null
        SLEEPER=
    fi
    # shellcheck disable=SC2034  # read by lib.sh's request
    QA_TIMEOUT=5
    request GET "$PROGRESS_PREFIX/$COURSE_ID"
    if [ "$STATUS" != 200 ]; then
        state="lecture completed: unknown (GET answered $STATUS)"
    elif stored=$(lecture_get "$LECTURE_ID" watchTime); then
        state="lecture completed: $(completed_in_body), stored watchTime $stored"
    else
        state="lecture completed: unknown (the record has no such lecture)"
    fi
    if [ -z "$FIRST_POS" ]; then
        positions="no position"
    elif [ "$LAST_POS" = "$FIRST_POS" ]; then
        positions="position $FIRST_POS"
    else
        positions="positions $FIRST_POS..$LAST_POS"
    fi
    plural=es
    [ "$SENT" -ne 1 ] || plural=
    echo "watch: $1; $SENT PATCH$plural ($OK ok, $FAILED failed), $positions; $state"
    if [ "$FAILED" -gt 0 ]; then
        exit 1
    fi
    exit 0
}
trap 'summary "interrupted (SIGINT)"' INT
trap 'summary "terminated (SIGTERM)"' TERM

echo "watch: PATCH $BASE_URL$URL_PATH {\"watchTime\": ...} with Prefer: return=minimal," \
    "every $EVERY s from $FROM${UNTIL:+ until $UNTIL}; Ctrl-C to stop"
step=0
while :; do
    position=$(calc "$FROM" "$EVERY" "$step" 'a + k * b')
    last=no
    if [ -n "$UNTIL" ] && [ "$(calc "$position" "$UNTIL" 0 '(a >= b) ? "true" : "false"')" = true ]; then
        position=$(calc "$UNTIL" 0 0 a)
        last=yes
    fi
    request PATCH "$URL_PATH" "{\"watchTime\": $position}" -H "Prefer: return=minimal"
    patch_status=$STATUS
    SENT=$((SENT + 1))
    FIRST_POS=${FIRST_POS:-$position}
    LAST_POS=$position
    detail=
    case $patch_status in
        2??)
            OK=$((OK + 1))
            if [ -s "$BODY_FILE" ]; then
                # A server that ignored the preference answered the whole record.
                completed=$(completed_in_body)
                detail="  (answered a body: Prefer: return=minimal not applied)"
            elif [ "$SEEN_COMPLETED" = yes ]; then
                completed=yes
            elif [ "$GET_MODE" = each ]; then
                request GET "$PROGRESS_PREFIX/$COURSE_ID"
                if [ "$STATUS" = 200 ]; then
                    completed=$(completed_in_body)
                else
                    completed="? (GET $STATUS)"
                fi
            else
                completed=-
            fi
            [ "$completed" != yes ] || SEEN_COMPLETED=yes
            ;;
        *)
            FAILED=$((FAILED + 1))
            completed=-
            detail="  $(body_excerpt 160)"
            ;;
    esac
    printf '%s  position %s  HTTP %s  completed %s%s\n' \
        "$(date +%H:%M:%S)" "$position" "$patch_status" "$completed" "$detail"
    case $patch_status in
        408 | 409 | 429) ;;
        4??) summary "stopped: HTTP $patch_status (repeating the same request cannot help)" ;;
    esac
    if [ "$last" = yes ]; then
        summary "reached --until $position"
    fi
    step=$((step + 1))
    # In the background so that SIGTERM (and Ctrl-C) stops the wait at once, not after it.
    sleep "$EVERY" &
    SLEEPER=$!
    wait "$SLEEPER"
    SLEEPER=
done
