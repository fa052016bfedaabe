#!/usr/bin/env bash
# Installs or checks what `make bench` needs: wrk and hey (load generators),
# h2load (HTTP/2 load, from nghttp2-client), nginx and HAProxy (the peers),
# taskset (pinning). As root, whatever is
# missing comes from apt-get; otherwise missing tools are listed and the
# harness skips those peers (it never fakes one). Exits non-zero only when
# no load generator can be had.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

declare -A pkg=([wrk]=wrk [hey]=hey [h2load]=nghttp2-client [nginx]=nginx [haproxy]=haproxy [taskset]=util-linux [getconf]=libc-bin)
missing=()
for tool in wrk hey h2load nginx haproxy taskset getconf; do
  have "$tool" || missing+=("${pkg[$tool]}")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench/setup.sh: installing ${missing[*]}"
    start=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    # Installing nginx or HAProxy must not start them as system services on
    # ports 80/443: deny service starts during the install.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod +x "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -q >/dev/null
    # One package that cannot be had must not stop the others.
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
      for p in "${missing[@]}"; do
        apt-get install -y -q --no-install-recommends "$p" >/dev/null || echo "bench/setup.sh: cannot install $p"
      done
    echo "bench/setup.sh: installed in $(($(date +%s) - start))s"
  else
    echo "bench/setup.sh: missing ${missing[*]} (run as root to install them with apt-get); those peers are skipped"
  fi
fi

for tool in wrk hey h2load nginx haproxy taskset; do
  if have "$tool"; then echo "bench/setup.sh: $tool ok"; else echo "bench/setup.sh: $tool MISSING"; fi
done
if ! have wrk && ! have hey; then
  echo "bench/setup.sh: no load generator (wrk or hey): cannot benchmark" >&2
  exit 1
fi
