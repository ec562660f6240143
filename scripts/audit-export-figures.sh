#!/usr/bin/env bash
# Measures an audit export of N entries (default 1,000,000) to moto's S3 server: wall time from
# POST /v1/audit/export to status `completed`, and the server's peak RSS (VmHWM) during it.
#
#   cargo build --release -p scaivault-cli
#   scripts/audit-export-figures.sh [N]
#
# The entries are written straight into a fresh SQLite database with their chain hashes computed
# exactly as the server does (scripts/audit_load.py), then a release server exports them; the
# downloaded object's size and SHA-256 are checked against the manifest, and --verify-file also runs
# `scaivault audit verify --file` on it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-1000000}"
bin="${SCAIVAULT_BIN:-$repo/target/release/scaivault}"
[[ -x "$bin" ]] || { echo "error: build first: cargo build --release -p scaivault-cli" >&2; exit 1; }
moto_server="$("$repo/scripts/moto.sh" install)"
py="$(dirname "$moto_server")/python"

work="$(mktemp -d /tmp/scaivault-export-figures.XXXXXX)"
server_pid="" moto_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

token="skt_$(head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)"
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() {
  SCAIVAULT_RATE_LIMITS=all=0 LOG_LEVEL=warn "$bin" server --dev --data-dir "$work/data" \
    --bind 127.0.0.1:0 --dev-root-token "$token" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  for _ in $(seq 1 300); do
    url="$(grep -o 'listening on http://[0-9.:]*' "$work/server.out" 2>/dev/null | head -1 | sed 's/listening on //')" || true
    [[ -n "$url" ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
stop_server() { kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""; }
api() { curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }

moto_port="$(free_port)"
"$moto_server" -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
moto_pid=$!
moto="http://127.0.0.1:$moto_port"

start_server
tenant="$(api "$url/v1/auth/whoami" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')"
api -X PUT "$url/v1/secrets/infra/aws/audit-uploader" \
  -d '{"data": {"access_key_id": "AKIAFIGURES", "secret_access_key": "figures-secret"}}' >/dev/null
stop_server

echo "loading $n audit entries into tenant $tenant ..."
t0=$(date +%s.%N)
"$py" "$repo/scripts/audit_load.py" "$work/data/scaivault.db" "$tenant" "$n"
t1=$(date +%s.%N)
echo "loaded in $(echo "$t1 - $t0" | bc) s"

for _ in $(seq 1 300); do curl -s -o /dev/null "$moto/" && break; sleep 0.1; done
"$py" -c "import boto3; boto3.client('s3', endpoint_url='$moto', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').create_bucket(Bucket='figures')"

start_server
rss_before="$(grep VmRSS /proc/$server_pid/status | awk '{print $2}')"
t0=$(date +%s.%N)
export_id="$(api -X POST "$url/v1/audit/export" -d "{\"format\": \"jsonl\", \"destination\": {\"type\": \"s3\", \"bucket\": \"figures\", \"credentials_path\": \"infra/aws/audit-uploader\", \"endpoint\": \"$moto\", \"region\": \"us-east-1\"}}" \
  | "$py" -c 'import json,sys; print(json.load(sys.stdin)["export_id"])')"
while :; do
  job="$(api "$url/v1/audit/exports/$export_id")"
  status="$(echo "$job" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
  [[ "$status" == completed || "$status" == failed ]] && break
  sleep 0.2
done
t1=$(date +%s.%N)
hwm="$(grep VmHWM /proc/$server_pid/status | awk '{print $2}')"
echo "$job" | "$py" -m json.tool
[[ "$status" == completed ]] || { echo "export failed" >&2; exit 1; }
records="$(echo "$job" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["record_count"])')"
bytes="$(echo "$job" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["byte_size"])')"
key="$(echo "$job" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["object_keys"][0])')"
sha="$(echo "$job" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["sha256"])')"
"$py" -c "import boto3; boto3.client('s3', endpoint_url='$moto', region_name='us-east-1', aws_access_key_id='AKIAFIGURES', aws_secret_access_key='figures-secret').download_file('figures', '$key', '$work/export.jsonl')"
got_sha="$(sha256sum "$work/export.jsonl" | awk '{print $1}')"
[[ "$got_sha" == "$sha" ]] || { echo "sha256 mismatch: $got_sha != $sha" >&2; exit 1; }
if [[ "${VERIFY_FILE:-1}" == 1 ]]; then
  SCAIVAULT_URL=http://127.0.0.1:9 "$bin" audit verify --file "$work/export.jsonl" | grep -E 'valid|entries_checked'
fi
echo
echo "records exported:     $records"
echo "object size:          $bytes bytes"
echo "export wall time:     $(echo "$t1 - $t0" | bc) s (POST to status completed, polled every 0.2 s)"
echo "server RSS before:    $((rss_before / 1024)) MiB"
echo "server peak RSS:      $((hwm / 1024)) MiB (VmHWM, whole process lifetime)"
