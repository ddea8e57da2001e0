#!/bin/sh
# PATCH /api/v1/progress/:courseId/lectures — batch update (offline sync), all or none.
# JSON_BODY is sent verbatim, e.g.
#   '{"lectures":[{"lecture":"<id>","isCompleted":true,"watchTime":12}]}'
# A JSON_BODY of - reads the body from standard input.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

expect_args 2 2 "COURSE_ID JSON_BODY|-" $#

body=$2
if [ "$body" = - ]; then
    body=$(cat)
fi
request PATCH "$PROGRESS_PREFIX/$1/lectures" "$body"
show_response
