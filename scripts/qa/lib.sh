#!/bin/sh
# Shared helpers for the QA curl scripts in scripts/qa/. Not run directly: each script does
#
#   QA_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
#   . "$QA_DIR/lib.sh"
#
# Environment:
#   BASE_URL     server root                       (default http://127.0.0.1:4000)
#   TOKEN        JWT, sent as the cookie `token`   (default empty: no cookie)
#   PYTHON       interpreter used to read JSON     (default <checkout>/.venv/bin/python, else python3)
#   QA_TIMEOUT   curl --max-time in seconds        (default 30)
#   QA_VERBOSE   1: print the whole body after every PASS/FAIL line
#
# Functions:
#   request METHOD PATH [BODY] [extra curl args...]   with the cookie token=$TOKEN (if TOKEN set)
#   request_noauth METHOD PATH [BODY] [extra...]      without any cookie
#   request_cookie COOKIE METHOD PATH [BODY] [extra...]  with the given cookie string
#       PATH is appended to BASE_URL (a full http(s):// URL is used as is). A non-empty BODY is
#       sent verbatim with Content-Type ${REQUEST_CONTENT_TYPE:-application/json}; pass "" as
#       BODY to give extra curl args without a body. Afterwards: STATUS (000 when curl could not
#       connect), BODY_FILE (the body), BODY (its text), HEADERS_FILE (the response's header
#       lines as received), LAST_REQUEST ("METHOD URL").
#   json_get EXPR [FILE]    print a field of the last body (or FILE); status 1 if missing.
#       EXPR is dot separated; a number indexes a list (negative from the end); `#` is the
#       length; an empty EXPR is the whole document. Strings print raw, booleans true/false,
#       null as null, numbers as JSON, objects and lists as compact JSON.
#   json_words EXPR [FILE]  the items of a list, space separated.
#   header_get NAME         print a header of the last response (case-insensitive name; the
#       final response's, not a `100 Continue`'s); status 1 if it was not sent.
#   lecture_get LECTURE_ID FIELD [FILE]   print FIELD (isCompleted, watchTime, lastWatched) of
#       that lecture's entry in the last body's data.lectureProgress; status 1 if missing.
#   check NAME EXPECTED_STATUS [JSON_PATH EXPECTED_VALUE]...
#       Compares the last response; prints `PASS name (status) excerpt` or
#       `FAIL name: expected X got Y — excerpt`; counts failures. Unless CHECK_ENVELOPE=0 it
#       also checks the envelope: 2xx -> status "success"; 4xx -> status "fail" and a string
#       `message`; 5xx -> status "error"; 204 -> no body at all. EXPECTED_VALUE forms:
#         literal     equal to json_get's rendering (numbers compare numerically: 30 == 30.0)
#         @present / @absent / @nonnull / @null / @string / @number / @bool
#         @empty      an empty string (with @raw: no body at all)
#         @id         a 24-hex id          @isotime   2026-11-26T19:30:00.000Z
#         >=N >N <=N <N   numeric comparison
#         ~REGEX      matches (re.search)  !~REGEX    does not match
#       JSON_PATH `@raw` is the raw body text (e.g. `@raw '!~password'`);
#       `@header:NAME` a response header (e.g. `@header:Preference-Applied return=minimal`,
#       `@header:Preference-Applied @absent`).
#   show_response           print `HTTP <status>` and the pretty body (for a bodiless answer,
#       `(no body)` and its Preference-Applied header if any); status 0 iff 2xx.
#   post_course_action ACTION [--minimal] COURSE_ID   POST <prefix>/COURSE_ID/ACTION, then show_response.
#   random_id               a random 24-hex id.
#   finish                  print the totals; exit 1 if any check failed, else 0.

set -u
case $0 in
    lib.sh | */lib.sh)
        echo "lib.sh holds the helpers of the QA scripts; source it, do not run it" >&2
        exit 2
        ;;
esac

QA_DIR=${QA_DIR:-$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)}
QA_ROOT=$(CDPATH='' cd -- "$QA_DIR/../.." && pwd)

BASE_URL=${BASE_URL:-http://127.0.0.1:4000}
BASE_URL=${BASE_URL%/}
TOKEN=${TOKEN:-}
# shellcheck disable=SC2034  # used by the scripts that source this file
PROGRESS_PREFIX=/api/v1/progress
QA_TIMEOUT=${QA_TIMEOUT:-30}
QA_VERBOSE=${QA_VERBOSE:-0}
CHECK_ENVELOPE=${CHECK_ENVELOPE:-1}

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$QA_ROOT/.venv/bin/python" ]; then
        PYTHON=$QA_ROOT/.venv/bin/python
    else
        PYTHON=python3
    fi
fi

if ! command -v curl >/dev/null 2>&1; then
    echo "qa: curl is required" >&2
    exit 2
fi

QA_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qa.XXXXXX") || exit 2
trap 'rm -rf "$QA_TMP"' EXIT
trap 'rm -rf "$QA_TMP"; exit 130' INT
trap 'rm -rf "$QA_TMP"; exit 143' TERM
BODY_FILE=$QA_TMP/body
HEADERS_FILE=$QA_TMP/headers
QA_PY=$QA_TMP/qa.py
: >"$BODY_FILE"
: >"$HEADERS_FILE"
STATUS=000
BODY=
LAST_REQUEST=
PASS_COUNT=0
FAIL_COUNT=0

cat >"$QA_PY" <<'PYEOF'
import json, math, re, secrets, sys

MISSING = object()

def load(path):
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    try:
        return raw, json.loads(raw)
    except ValueError:
        return raw, MISSING

def walk(doc, expr):
    if doc is MISSING:
        return MISSING
    cur = doc
    for part in [p for p in expr.split(".") if p != ""] if expr not in ("", ".") else []:
        if part == "#":
            if isinstance(cur, (list, dict, str)):
                cur = len(cur)
                continue
            return MISSING
        if isinstance(cur, dict):
            if part not in cur:
                return MISSING
            cur = cur[part]
        elif isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                return MISSING
        else:
            return MISSING
    return cur

def render(v):
    if v is MISSING:
        return "<missing>"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)

def num(s):
    try:
        x = float(s)
    except ValueError:
        return None
    return x if math.isfinite(x) else None

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
OID = re.compile(r"^[0-9a-f]{24}$")

def matches(v, want):
    if want == "@present":
        return v is not MISSING
    if want == "@empty":
        return v == ""
    if want == "@absent":
        return v is MISSING
    if want == "@nonnull":
        return v is not MISSING and v is not None
    if want == "@null":
        return v is None
    if want == "@string":
        return isinstance(v, str)
    if want == "@number":
        return is_num(v)
    if want == "@bool":
        return isinstance(v, bool)
    if want == "@id":
        return isinstance(v, str) and bool(OID.match(v))
    if want == "@isotime":
        return isinstance(v, str) and bool(ISO.match(v))
    if v is MISSING:
        return False
    for op in (">=", "<=", ">", "<"):
        if want.startswith(op) and num(want[len(op):]) is not None:
            if not is_num(v):
                return False
            n = num(want[len(op):])
            return {">=": v >= n, "<=": v <= n, ">": v > n, "<": v < n}[op]
    if want.startswith("!~"):
        return re.search(want[2:], render(v)) is None
    if want.startswith("~"):
        return re.search(want[1:], render(v)) is not None
    if is_num(v) and num(want) is not None:
        return v == num(want)
    return render(v) == want

def headers(path):
    """The final response's headers (curl -D writes every response, `100 Continue` included)."""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("latin-1").splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        if line.startswith("HTTP/"):
            found = {}
        elif ":" in line:
            name, _, value = line.partition(":")
            found.setdefault(name.strip().lower(), value.strip())
    return found

def lecture_entry(doc, lecture):
    entries = walk(doc, "data.lectureProgress")
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and entry.get("lecture") == lecture:
                return entry
    return MISSING

def excerpt(raw, doc, n):
    if raw == "":
        return "(no body)"
    text = raw if doc is MISSING else json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."

def main(argv):
    cmd = argv[0]
    if cmd == "randhex":
        print(secrets.token_hex(12))
        return 0
    if cmd == "get":
        _, doc = load(argv[1])
        v = walk(doc, argv[2])
        if v is MISSING:
            return 1
        print(render(v))
        return 0
    if cmd == "header":
        v = headers(argv[1]).get(argv[2].lower())
        if v is None:
            return 1
        print(v)
        return 0
    if cmd == "lecture":
        _, doc = load(argv[1])
        entry = lecture_entry(doc, argv[2])
        v = entry.get(argv[3], MISSING) if entry is not MISSING else MISSING
        if v is MISSING:
            return 1
        print(render(v))
        return 0
    if cmd == "words":
        _, doc = load(argv[1])
        v = walk(doc, argv[2])
        if not isinstance(v, list):
            return 1
        print(" ".join(render(x) for x in v))
        return 0
    if cmd == "excerpt":
        raw, doc = load(argv[1])
        print(excerpt(raw, doc, int(argv[2])))
        return 0
    if cmd == "pretty":
        raw, doc = load(argv[1])
        print(raw if doc is MISSING else json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    if cmd == "seed":
        # Find the JSON object in a command's output (other lines may surround it).
        with open(argv[1], "rb") as f:
            raw = f.read().decode("utf-8", "replace")
        found = None
        try:
            found = json.loads(raw)
        except ValueError:
            for line in raw.splitlines():
                line = line.strip()
                if line.startswith("{"):
                    try:
                        found = json.loads(line)
                    except ValueError:
                        continue
        if not isinstance(found, dict):
            return 1
        with open(argv[1], "w") as f:
            json.dump(found, f)
        return 0
    if cmd == "check":
        raw, doc = load(argv[1])
        sent = headers(argv[2])
        pairs = argv[3:]
        problems = []
        for i in range(0, len(pairs) - 1, 2):
            path, want = pairs[i], pairs[i + 1]
            if path.startswith("@header:"):
                v = sent.get(path[len("@header:"):].lower(), MISSING)
            else:
                v = raw if path == "@raw" else walk(doc, path)
            if not matches(v, want):
                if path.startswith("@header:"):
                    got = "<not sent>" if v is MISSING else repr(v)
                elif path == "@raw":
                    got = "<no body>" if raw == "" else "<body>"
                else:
                    got = "<body not JSON>" if doc is MISSING else render(v)
                problems.append("expected %s=%s got %s" % (path, want, got))
        if problems:
            print("; ".join(problems))
            return 1
        return 0
    print("qa.py: unknown command %r" % cmd, file=sys.stderr)
    return 2

sys.exit(main(sys.argv[1:]))
PYEOF

if ! "$PYTHON" "$QA_PY" randhex >/dev/null 2>&1; then
    echo "qa: cannot run Python as '$PYTHON' (set PYTHON)" >&2
    exit 2
fi

_qa_request() {
    _qa_cookie=$1
    _qa_method=$2
    _qa_path=$3
    shift 3
    _qa_body=
    if [ $# -gt 0 ]; then
        _qa_body=$1
        shift
    fi
    case $_qa_path in
        http://* | https://*) _qa_url=$_qa_path ;;
        *) _qa_url=$BASE_URL$_qa_path ;;
    esac
    if [ -n "$_qa_body" ]; then
        set -- --data-raw "$_qa_body" -H "Content-Type: ${REQUEST_CONTENT_TYPE:-application/json}" "$@"
    fi
    if [ -n "$_qa_cookie" ]; then
        set -- --cookie "$_qa_cookie" "$@"
    fi
    LAST_REQUEST="$_qa_method $_qa_url"
    : >"$BODY_FILE"
    : >"$HEADERS_FILE"
    if STATUS=$(curl -sS --max-time "$QA_TIMEOUT" -o "$BODY_FILE" -D "$HEADERS_FILE" -w '%{http_code}' \
        -X "$_qa_method" "$@" "$_qa_url" 2>"$QA_TMP/curl.err"); then
        :
    else
        STATUS=000
        {
            printf 'curl could not complete %s: ' "$LAST_REQUEST"
            cat "$QA_TMP/curl.err"
        } >"$BODY_FILE"
    fi
    # shellcheck disable=SC2034  # for the scripts that source this file
    BODY=$(cat "$BODY_FILE")
    return 0
}

request() {
    if [ -n "$TOKEN" ]; then
        _qa_request "token=$TOKEN" "$@"
    else
        _qa_request "" "$@"
    fi
}

request_noauth() {
    _qa_request "" "$@"
}

request_cookie() {
    _qa_c=$1
    shift
    _qa_request "$_qa_c" "$@"
}

json_get() {
    "$PYTHON" "$QA_PY" get "${2:-$BODY_FILE}" "$1"
}

json_words() {
    "$PYTHON" "$QA_PY" words "${2:-$BODY_FILE}" "$1"
}

header_get() {
    "$PYTHON" "$QA_PY" header "$HEADERS_FILE" "$1"
}

lecture_get() {
    "$PYTHON" "$QA_PY" lecture "${3:-$BODY_FILE}" "$1" "$2"
}

random_id() {
    "$PYTHON" "$QA_PY" randhex
}

body_excerpt() {
    "$PYTHON" "$QA_PY" excerpt "$BODY_FILE" "${1:-200}"
}

check() {
    if [ $# -lt 2 ] || [ $(($# % 2)) -ne 0 ]; then
        FAIL_COUNT=$((FAIL_COUNT + 1))
        echo "FAIL ${1:-?}: check needs NAME STATUS [PATH VALUE]... (got $# arguments)"
        return 1
    fi
    _qa_name=$1
    _qa_want=$2
    shift 2
    _qa_problems=
    if [ "$STATUS" != "$_qa_want" ]; then
        _qa_problems="expected status $_qa_want got $STATUS"
    else
        if [ "$CHECK_ENVELOPE" != 0 ]; then
            case $_qa_want in
                204) set -- @raw @empty "$@" ;;
                2??) set -- status success "$@" ;;
                4??) set -- status fail message @string "$@" ;;
                5??) set -- status error message @string "$@" ;;
            esac
        fi
        if [ $# -gt 0 ]; then
            _qa_problems=$("$PYTHON" "$QA_PY" check "$BODY_FILE" "$HEADERS_FILE" "$@") || true
        fi
    fi
    if [ -n "$_qa_problems" ]; then
        FAIL_COUNT=$((FAIL_COUNT + 1))
        printf 'FAIL %s: %s — %s\n' "$_qa_name" "$_qa_problems" "$(body_excerpt 200)"
        printf '     (%s)\n' "$LAST_REQUEST"
        _qa_rc=1
    else
        PASS_COUNT=$((PASS_COUNT + 1))
        printf 'PASS %s (%s) %s\n' "$_qa_name" "$STATUS" "$(body_excerpt 100)"
        _qa_rc=0
    fi
    if [ "$QA_VERBOSE" = 1 ]; then
        "$PYTHON" "$QA_PY" pretty "$BODY_FILE" | sed 's/^/     | /'
    fi
    return $_qa_rc
}

# expect_args MIN MAX USAGE ARGC: exit 2 with "usage: <script> USAGE" unless MIN <= ARGC <= MAX.
expect_args() {
    if [ "$4" -lt "$1" ] || [ "$4" -gt "$2" ]; then
        echo "usage: $0 $3" >&2
        exit 2
    fi
}

# page_query [PAGE] [LIMIT]: the list endpoints' "?page=..&limit=.." (empty without arguments).
page_query() {
    if [ $# -ge 1 ]; then
        printf '?page=%s' "$1"
    fi
    if [ $# -ge 2 ]; then
        printf '&limit=%s' "$2"
    fi
}

show_response() {
    echo "HTTP $STATUS"
    if [ -s "$BODY_FILE" ]; then
        "$PYTHON" "$QA_PY" pretty "$BODY_FILE"
    elif _qa_applied=$(header_get Preference-Applied); then
        echo "(no body; Preference-Applied: $_qa_applied)"
    else
        echo "(no body)"
    fi
    case $STATUS in
        2??) return 0 ;;
        *) return 1 ;;
    esac
}

finish() {
    echo
    echo "$PASS_COUNT passed, $FAIL_COUNT failed"
    if [ "$FAIL_COUNT" -gt 0 ]; then
        exit 1
    fi
    exit 0
}

# post_course_action ACTION [--minimal] COURSE_ID: POST <prefix>/COURSE_ID/ACTION (complete,
# reset) as the script's caller asked, then show the answer; exits as show_response says.
post_course_action() {
    action=$1
    shift
    minimal=no
    if [ "${1:-}" = --minimal ]; then
        minimal=yes
        shift
    fi
    expect_args 1 1 "[--minimal] COURSE_ID" $#
    if [ "$minimal" = yes ]; then
        request POST "$PROGRESS_PREFIX/$1/$action" "" -H "Prefer: return=minimal"
    else
        request POST "$PROGRESS_PREFIX/$1/$action"
    fi
    show_response
}
