#!/usr/bin/env bash
# The real clients the tests drive, from Debian's packages, installed once on a fresh machine:
# chromium (the player module in a real browser), ffmpeg (the clip it plays) and prometheus
# (scraping /metrics). Nothing is started here: the tests run each binary themselves on a free
# port; the prometheus package's own service is kept from starting.
set -euo pipefail
needed=()
command -v chromium >/dev/null || needed+=(chromium)
command -v ffmpeg >/dev/null || needed+=(ffmpeg)
command -v prometheus >/dev/null || needed+=(prometheus)
((${#needed[@]})) || exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "system_deps: need root (or sudo) to install: ${needed[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "system_deps: installing ${needed[*]} (Debian packages)"
# A package's service must not start: policy-rc.d answering 101 forbids it, for this install only.
policy=/usr/sbin/policy-rc.d
ours=no
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  ours=yes
fi
trap '[[ $ours == yes ]] && "${sudo[@]}" rm -f "$policy"' EXIT
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
