#!/usr/bin/env bash
# Spec §3.2's Python client (examples/python/stream_metrics.py) against the
# demo server: stubs generated from proto/ with grpcio-tools (pinned in
# examples/python/requirements.txt, installed into .venv-python on first
# use), a replication created and started over gRPC, and live metrics
# printed as they stream. Fails unless it prints the replication and
# SAMPLES (3) lines of lag and throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-python
. scripts/lib/demo.sh
venv "$venv" examples/python/requirements.txt

start_demo python-example
stubs="$data_dir/stubs"
mkdir -p "$stubs"
# Our contract and the google/api files it imports (the protobuf package brings google/protobuf).
"$venv/bin/python" -m grpc_tools.protoc -I proto -I node_modules/google-proto-files \
  --python_out="$stubs" --grpc_python_out="$stubs" \
  proto/heliosdb/replication/v1/*.proto \
  node_modules/google-proto-files/google/api/{annotations,http,field_behavior,field_info}.proto

out="$data_dir/out.txt"
status=0
TOKEN=$(node packages/server/dist/bin.js token --tenant tenant-123 --roles Admin --data-dir "$data_dir") \
  HELIOS_GRPC="127.0.0.1:$grpc_port" SAMPLES=3 INTERVAL_SECONDS=1 PYTHONPATH="$stubs" \
  timeout 120 "$venv/bin/python" examples/python/stream_metrics.py >"$out" 2>&1 || status=$?
cat "$out"
if [ "$status" -ne 0 ] || ! grep -q '^Created replication: [0-9a-f-]\{36\}$' "$out" || [ "$(grep -c '^Lag: [0-9.]*s, Throughput: [0-9]* rows/s$' "$out")" -ne 3 ]; then
  echo "--- the server's log" >&2
  tail -n 100 "$log" >&2
  echo "the Python example did not print the replication and 3 samples" >&2
  exit 1
fi
