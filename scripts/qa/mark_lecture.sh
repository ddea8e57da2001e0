#!/bin/sh
# PATCH /api/v1/progress/:courseId/lectures/:lectureId — set one lecture's flag, its position
# (watchTime), or both.
#   true|false   the flag; - leaves it out: a position-only body {"watchTime": WATCHTIME}, which
#                keeps the flag (and completes the lecture once WATCHTIME reaches 90 % of its
#                duration, contract section 8). `-` without WATCHTIME sends {} (a 400).
#   --minimal    send `Prefer: return=minimal`: the answer is 204 with no body
#                (Preference-Applied: return=minimal); errors are unchanged.
# The flag and WATCHTIME are inserted into the JSON body verbatim, so invalid values
# (e.g. '"yes"', 1, -5) can be sent on purpose to see the 400.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

minimal=no
if [ "${1:-}" = --minimal ]; then
    minimal=yes
    shift
fi
expect_args 3 4 "[--minimal] COURSE_ID LECTURE_ID true|false|- [WATCHTIME]" $#

if [ "$3" = - ] && [ $# -eq 3 ]; then
    body="{}"
elif [ "$3" = - ]; then
    body="{\"watchTime\": $4}"
elif [ $# -eq 4 ]; then
    body="{\"isCompleted\": $3, \"watchTime\": $4}"
else
    body="{\"isCompleted\": $3}"
fi
if [ "$minimal" = yes ]; then
    request PATCH "$PROGRESS_PREFIX/$1/lectures/$2" "$body" -H "Prefer: return=minimal"
else
    request PATCH "$PROGRESS_PREFIX/$1/lectures/$2" "$body"
fi
show_response
