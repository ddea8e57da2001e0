#!/bin/sh
# PATCH /api/v1/progress/:courseId/lectures/:lectureId — mark one lecture (not) completed.
# The true|false argument and WATCHTIME are inserted into the JSON body verbatim, so invalid values
# (e.g. '"yes"', 1, -5) can be sent on purpose to see the 400.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

expect_args 3 4 "COURSE_ID LECTURE_ID true|false [WATCHTIME]" $#

if [ $# -eq 4 ]; then
    body="{\"isCompleted\": $3, \"watchTime\": $4}"
else
    body="{\"isCompleted\": $3}"
fi
request PATCH "$PROGRESS_PREFIX/$1/lectures/$2" "$body"
show_response
