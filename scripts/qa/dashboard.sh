#!/bin/sh
# GET /api/v1/progress?page=&limit= — the caller's dashboard (records across courses).
# PAGE and LIMIT are optional (server defaults: 1 and 20); a given one is sent as is.
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body; exits 0 on 2xx, 1 otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

expect_args 0 2 "[PAGE] [LIMIT]" $#

request GET "$PROGRESS_PREFIX$(page_query "$@")"
show_response
