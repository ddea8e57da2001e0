#!/usr/bin/env bash
# `make run`: the standalone app under gunicorn, with the embedded MongoDB-wire server when
# MONGODB_URI is unset. Ctrl-C or SIGTERM stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-4000}
WEB_CONCURRENCY=${WEB_CONCURRENCY:-2}
export EMBEDDED_DB_PORT=${EMBEDDED_DB_PORT:-27018}  # the app and the flask CLI read it too
export PROGRESS_ENV=${PROGRESS_ENV:-development}
# The embedded database's data and the development key; `make qa` uses a throwaway one.
export PROGRESS_VAR_DIR=${PROGRESS_VAR_DIR:-var}
VAR_DIR=$PROGRESS_VAR_DIR
mkdir -p "$VAR_DIR"
# The workers' metric files, summed by /metrics; scripts/gunicorn.conf.py empties it at start.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$VAR_DIR/metrics}

pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${MONGODB_URI:-}" ]]; then
  echo "run: MONGODB_URI is unset: starting the embedded database on 127.0.0.1:$EMBEDDED_DB_PORT (data in $VAR_DIR/db)"
  "$BIN/secantusd-py" --host 127.0.0.1 --port "$EMBEDDED_DB_PORT" --storage-path "$VAR_DIR/db" \
    --log-level WARNING >>"$VAR_DIR/embedded-db.log" 2>&1 &
  pids+=($!)
  "$BIN/python" scripts/wait_for_db.py "mongodb://127.0.0.1:$EMBEDDED_DB_PORT/?directConnection=true" \
    || { echo "run: the embedded database did not start (see $VAR_DIR/embedded-db.log)" >&2; exit 1; }
fi

if [[ -z "${JWT_SECRET_KEY:-}" ]]; then
  # Generated once, kept in var/ (ignored by git); the flask CLI uses the same key.
  "$BIN/python" -c 'import sys; from progress_service.standalone.config import dev_secret; dev_secret(sys.argv[1])' "$VAR_DIR"
  echo "run: JWT_SECRET_KEY is unset: using the development key in $VAR_DIR/dev-secret"
fi

echo "run: serving on http://$HOST:$PORT with $WEB_CONCURRENCY workers"
"$BIN/gunicorn" --bind "$HOST:$PORT" --workers "$WEB_CONCURRENCY" --config scripts/gunicorn.conf.py wsgi:app &
pids+=($!)
wait -n "${pids[@]}"
