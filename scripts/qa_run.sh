#!/usr/bin/env bash
# `make qa` (and `make fuzz`): start the app on a throwaway embedded database, run the curl
# smoke test and the Schemathesis fuzzing against it, and stop everything on exit.
#
#   scripts/qa_run.sh [smoke] [fuzz]     (default: both)
#
# It never touches `make run`'s database: its own free ports (QA_PORT, QA_DB_PORT to choose
# them), its own var dir (data and development key) removed afterwards unless QA_KEEP=1.
# MONGODB_URI is ignored on purpose: QA seeds demo data, never into a real LMS database.
# QA_FUZZ_EXAMPLES caps Schemathesis's test cases per operation and phase (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STEPS=("$@")
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(smoke fuzz)

free_port() {
  "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

QA_VAR=$(mktemp -d "${TMPDIR:-/tmp}/progress-qa.XXXXXX")
unset MONGODB_URI JWT_SECRET_KEY
export PORT=${QA_PORT:-$(free_port)}
export EMBEDDED_DB_PORT=${QA_DB_PORT:-$(free_port)}
export PROGRESS_VAR_DIR=$QA_VAR PROGRESS_ENV=development HOST=127.0.0.1 WEB_CONCURRENCY=2
export BASE_URL=http://127.0.0.1:$PORT
# Schemathesis's Hypothesis keeps caches in ./.hypothesis by default: not in the checkout.
export HYPOTHESIS_STORAGE_DIRECTORY=$QA_VAR/hypothesis
SERVER_LOG=$QA_VAR/server.log
server=
step=

in_background() {
  # Run a step as a background job and wait for it: bash handles a signal only after a
  # foreground child ends, while `wait` returns at once, so Ctrl-C or SIGTERM stops at once.
  "$@" &
  step=$!
  wait "$step"
}

stop_server() {
  # run.sh stops the database and gunicorn it started when it gets SIGTERM.
  trap - EXIT INT TERM
  if [[ -n "$step" ]] && kill -0 "$step" 2>/dev/null; then
    kill -TERM "$step" 2>/dev/null || true
  fi
  if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [[ "${QA_KEEP:-0}" == 1 ]]; then
    echo "qa: kept $QA_VAR (server.log, the database, fuzz reports)"
  else
    rm -rf "$QA_VAR"
  fi
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "qa: FAILED: $*" >&2
  exit 1
}

server_failed() {
  echo "qa: last lines of the server log:" >&2
  tail -n 30 "$SERVER_LOG" >&2 || true
  fail "$*"
}

echo "qa: starting the app on $BASE_URL (embedded database on 127.0.0.1:$EMBEDDED_DB_PORT, var $QA_VAR)"
./scripts/run.sh >"$SERVER_LOG" 2>&1 &
server=$!
deadline=$((SECONDS + 90))
until curl -fsS -o /dev/null --max-time 2 "$BASE_URL/readyz" 2>/dev/null; do
  kill -0 "$server" 2>/dev/null || server_failed "the server exited before it was ready"
  ((SECONDS < deadline)) || server_failed "the server was not ready within 90 s"
  sleep 0.5
done
echo "qa: ready"

run_smoke() {
  echo "== qa: smoke (scripts/qa/smoke.sh)"
  in_background ./scripts/qa/smoke.sh || fail "smoke.sh failed"
  # The smoke test must be able to fail: against a wrong expectation it has to exit 1.
  echo "== qa: smoke self-check (a wrong expected percentage must fail)"
  local out=$QA_VAR/smoke-self-check.log status=0
  EXPECT_PERCENT_AFTER_FIRST=34 in_background ./scripts/qa/smoke.sh >"$out" 2>&1 || status=$?
  if [[ $status -ne 1 ]] || ! grep -q '^FAIL ' "$out"; then
    tail -n 20 "$out"
    fail "smoke.sh did not fail against a wrong expected percentage (exit $status)"
  fi
  grep '^FAIL ' "$out" | head -n 3 | sed 's/^/   (expected) /'
  echo "qa: smoke self-check ok: smoke.sh failed loudly (exit 1) as it should"
}

run_fuzz() {
  local seeded
  # A fresh demo student, instructor, course and lectures in the QA database.
  seeded=$("$BIN/flask" --app wsgi progress seed-demo --lectures 3 2>"$QA_VAR/seed.err") \
    || { cat "$QA_VAR/seed.err" >&2; fail "seed-demo failed"; }
  # One credential type per run (contract section 4: the cookie, or the Bearer header), and
  # one of the two users who may use the course (section 8): the enrolled student by cookie,
  # the course's instructor by Bearer, so that the instructor views answer 200s too (for the
  # student they can only be 403s). Anyone else would meet only 403s: not enrolled.
  fuzz_as cookie cookieAuth api_key token "$seeded"
  fuzz_as bearer bearerAuth bearer instructorToken "$seeded"
}

fuzz_config() {
  # The shared settings, this run's credential, and the demo's ids, so that requests also
  # reach a real course and its record (200s, 204s, 403s), not only 404s.
  local scheme=$1 key=$2 who=$3 seeded=$4
  cat scripts/schemathesis.toml
  "$BIN/python" - "$scheme" "$key" "$who" "$seeded" "$QA_VAR/schemathesis-cache" <<'PY'
import json, sys
scheme, key, who, seeded, cache = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
quoted = lambda values: ", ".join(json.dumps(value) for value in values)
print(f"\n[auth.openapi.{scheme}]\n{key} = {json.dumps(seeded[who])}")
# Replay data (`st replay ID`) in the QA var dir, not in the checkout.
print(f"\n[cache]\ndirectory = {json.dumps(cache)}")
print(f"\n[dictionaries.courses]\nvalues = [{quoted([seeded['courseId']])}]")
print(f"\n[dictionaries.lectures]\nvalues = [{quoted(seeded['lectureIds'])}]")
print(f"\n[dictionaries.prefer]\nvalues = [{quoted(['return=minimal', 'return=representation'])}]")
print("\n[parameters]")
# Course ids: half real, half drawn (404s). Lecture ids: the course's own, so that valid
# requests reach real writes (200s) rather than the 400 for a lecture of no course. Prefer:
# half the time a real preference, so that the writes' minimal answers (204 with
# Preference-Applied, contract section 8) are checked against the document too; a string
# drawn from the schema is almost never `return=minimal`.
for name, dictionary, probability in (("path.courseId", "courses", 0.5),
                                      ("path.lectureId", "lectures", 1.0),
                                      ("body.lectures[*].lecture", "lectures", 1.0),
                                      ("header.Prefer", "prefer", 0.5)):
    print(f'"{name}" = {{ dictionary = "{dictionary}", probability = {probability} }}')
PY
}

fuzz_as() {
  local name=$1 scheme=$2 key=$3 who=$4 seeded=$5 config=$QA_VAR/schemathesis-$1.toml
  echo "== qa: schemathesis, authenticated by $name only (seed-demo's $who)"
  fuzz_config "$scheme" "$key" "$who" "$seeded" >"$config"
  in_background "$BIN/schemathesis" --config-file "$config" run \
    "$BASE_URL/api/v1/progress/openapi.json" \
    --phases examples,coverage,fuzzing,stateful --mode all \
    --max-examples "${QA_FUZZ_EXAMPLES:-100}" --seed "${QA_FUZZ_SEED:-20261126}" \
    --report junit --report-dir "$QA_VAR/schemathesis-$name" \
    || fail "schemathesis ($name) found failures"
}

for step in "${STEPS[@]}"; do
  case $step in
    smoke) run_smoke ;;
    fuzz) run_fuzz ;;
    *) echo "qa: unknown step '$step' (smoke, fuzz)" >&2; exit 2 ;;
  esac
done
echo "qa: all passed"
