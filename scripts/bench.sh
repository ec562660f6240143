#!/usr/bin/env bash
# Benchmark ScaiVault against OpenBao: see bench/README.md.
exec "$(dirname "$0")/../bench/run" "$@"
