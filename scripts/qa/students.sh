#!/bin/sh
# GET /api/v1/progress/:courseId/students — per-student progress (instructor of the course or
# admin; 403 for anyone else): a page by number (PAGE) or by cursor (--after), filtered and
# sorted. --csv: GET /api/v1/progress/:courseId/students.csv instead, every student as CSV.
#
# Usage: students.sh [--sort createdAt|lastAccessed|percentage] [--order asc|desc]
#                    [--status not_started|in_progress|completed] [--after NEXT] [--csv]
#                    COURSE_ID [PAGE] [LIMIT]
# --after takes the "next" of the previous page: send it with the same sort, order, status
# and LIMIT, and "-" as PAGE (a page number and a cursor together are a 400).
#
# Environment: BASE_URL (default http://127.0.0.1:4000), TOKEN (JWT, sent as cookie "token").
# Prints the HTTP status and the pretty JSON body (the CSV as it is); exits 0 on 2xx, 1
# otherwise, 2 on misuse.
set -u
QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
# shellcheck source=SCRIPTDIR/lib.sh
. "$QA_DIR/lib.sh"

usage="[--sort S] [--order O] [--status S] [--after NEXT] [--csv] COURSE_ID [PAGE|-] [LIMIT]"
query=""
csv=0
while [ $# -gt 0 ]; do
    case $1 in
        --sort | --order | --status | --after)
            [ $# -ge 2 ] || { echo "usage: $0 $usage" >&2; exit 2; }
            query="$query&${1#--}=$2"
            shift 2
            ;;
        --csv) csv=1; shift ;;
        --*) echo "usage: $0 $usage" >&2; exit 2 ;;
        *) break ;;
    esac
done
expect_args 1 3 "$usage" $#

course=$1
if [ "$csv" = 1 ]; then
    request GET "$PROGRESS_PREFIX/$course/students.csv"
    case $STATUS in
        2??) echo "HTTP $STATUS"; cat "$BODY_FILE"; exit 0 ;;
        *) show_response; exit 1 ;;
    esac
fi
[ $# -ge 2 ] && [ "$2" != "-" ] && query="$query&page=$2"
[ $# -ge 3 ] && query="$query&limit=$3"
request GET "$PROGRESS_PREFIX/$course/students${query:+?${query#&}}"
show_response
