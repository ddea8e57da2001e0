#!/bin/sh
# POST /api/v1/progress/:courseId/reset — reset the caller's progress in the course.
#   --minimal    send `Prefer: return=minimal`: the answer is 204 with no body
#                (Preference-Applied: return=minimal); errors are unchanged.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

post_course_action reset "$@"
