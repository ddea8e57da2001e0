#!/bin/sh
# GET /api/v1/progress/:courseId/summary — course summary (instructor of the course or admin;
# 403 for anyone else); data.asOf says when the figures were exact.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

expect_args 1 1 "COURSE_ID" $#

request GET "$PROGRESS_PREFIX/$1/summary"
show_response
