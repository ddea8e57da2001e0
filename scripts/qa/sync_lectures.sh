#!/bin/sh
# PATCH /api/v1/progress/:courseId/lectures — batch update (offline sync), all or none.
# JSON_BODY is sent verbatim; each item has a lecture and isCompleted, watchTime or both (an
# item with only watchTime records the position and keeps the flag, contract section 8), e.g.
#   '{"lectures":[{"lecture":"<id>","isCompleted":true,"watchTime":12},{"lecture":"<id>","watchTime":300}]}'
# A JSON_BODY of - reads the body from standard input.
#   --minimal    send `Prefer: return=minimal`: the answer is 204 with no body
#                (Preference-Applied: return=minimal); errors are unchanged.
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
expect_args 2 2 "[--minimal] COURSE_ID JSON_BODY|-" $#

body=$2
if [ "$body" = - ]; then
    body=$(cat)
fi
if [ "$minimal" = yes ]; then
    request PATCH "$PROGRESS_PREFIX/$1/lectures" "$body" -H "Prefer: return=minimal"
else
    request PATCH "$PROGRESS_PREFIX/$1/lectures" "$body"
fi
show_response
