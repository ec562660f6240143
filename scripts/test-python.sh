#!/usr/bin/env bash
# Python SDK tests: unit tests plus integration tests against a real ScaiVault server.
#
# Needs the server binary built first (cargo build); the test session starts it itself
# (`scaivault server --dev` on a free loopback port). Environment:
#   SCAIVAULT_BIN                 server binary (default: target/debug/scaivault)
#   SCAIVAULT_URL+SCAIVAULT_TOKEN use an already running server instead
#   PYTHON                        interpreter for the venv (default: python3, needs >= 3.10)
# Extra arguments go to pytest, e.g. scripts/test-python.sh -k batch -x
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sdk="$repo/sdks/python"
venv="$sdk/.venv"

if [[ -z "${SCAIVAULT_URL:-}" || -z "${SCAIVAULT_TOKEN:-}" ]]; then
  export SCAIVAULT_BIN="${SCAIVAULT_BIN:-$repo/target/debug/scaivault}"
  if [[ ! -x "$SCAIVAULT_BIN" ]]; then
    echo "error: ScaiVault binary not found at $SCAIVAULT_BIN" >&2
    echo "       build it first (cargo build), or set SCAIVAULT_BIN, or SCAIVAULT_URL and SCAIVAULT_TOKEN" >&2
    exit 1
  fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$sdk[test]"

cd "$sdk"
exec "$venv/bin/python" -m pytest -ra "$@"
