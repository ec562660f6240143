#!/usr/bin/env bash
# moto's S3 server (PyPI `moto[server]`) for the audit export tests, installed idempotently into
# scripts/.venv-moto (or the venv named by MOTO_VENV).
#
#   scripts/moto.sh install        install if missing; print the path of the moto_server executable
#   scripts/moto.sh start [PORT]   install if missing, then run moto_server on 127.0.0.1:PORT (default 5000)
#
# The API tests (crates/cli/tests/api/audit_export.rs) call `install` once and start moto_server
# themselves on a free loopback port. A failed install fails those tests: they never skip.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MOTO_VENV:-$repo/scripts/.venv-moto}"
server="$venv/bin/moto_server"

install() {
  if [[ -x "$server" ]] && "$venv/bin/python" -c 'import moto.server, flask, flask_cors' 2>/dev/null; then
    return 0
  fi
  # One installer at a time (parallel test processes may all ask).
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv" >&2
  fi
  if ! "$venv/bin/python" -c 'import moto.server, flask, flask_cors' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >&2
  fi
  flock -u 9
  [[ -x "$server" ]] || { echo "error: moto_server missing from $venv after install" >&2; exit 1; }
}

case "${1:-install}" in
  install)
    install
    echo "$server"
    ;;
  start)
    install
    exec "$server" -H 127.0.0.1 -p "${2:-5000}"
    ;;
  *)
    echo "usage: $0 install | start [PORT]" >&2
    exit 2
    ;;
esac
