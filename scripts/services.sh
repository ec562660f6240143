#!/usr/bin/env bash
# Makes sure the real services the tests use are up; starts the ones that are down.
# A service that cannot be started is a loud failure, never a skip.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

deadline_wait() { # deadline_wait SECONDS CHECK...
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.2
  done
}

if ! pg_up; then
  echo "services: PostgreSQL is down; starting it" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  deadline_wait 30 pg_up || { echo "services: FAILED to start PostgreSQL on 127.0.0.1:5432" >&2; exit 1; }
fi
echo "services: PostgreSQL ready on 127.0.0.1:5432"
