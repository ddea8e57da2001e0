#!/bin/sh
# GET /api/v1/progress/:courseId — the caller's progress record for a course.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

usage() {
    echo "usage: $0 COURSE_ID" >&2
    exit 2
}

[ $# -eq 1 ] || usage

request GET "$PROGRESS_PREFIX/$1"
show_response
