#!/bin/sh
# GET /api/v1/progress/:courseId/students?page=&limit= — per-student progress (instructor of
# the course or admin; 403 for anyone else). PAGE and LIMIT are optional.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

usage() {
    echo "usage: $0 COURSE_ID [PAGE] [LIMIT]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    usage
fi

query=
if [ $# -ge 2 ]; then
    query="?page=$2"
fi
if [ $# -ge 3 ]; then
    query="$query&limit=$3"
fi
request GET "$PROGRESS_PREFIX/$1/students$query"
show_response
