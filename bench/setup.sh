#!/usr/bin/env bash
# Installs wrk, the load generator bench/run.py drives (Debian/Ubuntu; needs root or sudo).
set -euo pipefail
command -v wrk >/dev/null && exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
if ! command -v apt-get >/dev/null; then
  echo "bench/setup.sh: no apt-get here; install wrk with your package manager (macOS: brew install wrk)." >&2
  exit 1
fi
# Try the existing package lists first; refresh them only if that fails.
$sudo apt-get install -y wrk || { $sudo apt-get update && $sudo apt-get install -y wrk; }
