#!/usr/bin/env bash
# The one command that runs every test: lint, unit tests, black-box API tests against real SQLite and
# PostgreSQL servers, the CLI tests, the Python SDK suite against a real server, and the benchmark
# harness in short mode (proves it works; no timing assertions).
#
#   scripts/test.sh            everything (what .ci/run calls)
#   SKIP_BENCH=1 scripts/test.sh   everything but the benchmark harness
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "services"
scripts/services.sh

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked
export SCAIVAULT_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/scaivault"

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  step "benchmark harness (short mode, debug build: proves the harness, not the speed)"
  bench/run --short
fi

step "moto (the S3 API the audit export tests upload to)"
scripts/moto.sh install >/dev/null

step "Rust unit and API tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "Python SDK tests against a real server"
scripts/test-python.sh
