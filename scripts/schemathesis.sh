#!/usr/bin/env bash
# Schemathesis (PyPI, pinned in scripts/schemathesis.txt) against the demo
# server's own /v1/openapi.yaml, for a bounded time: no response may be a
# 5xx, and every response must match the document (status, content type,
# headers, schema). Installs schemathesis into .venv-schemathesis on first
# use. Usage: scripts/schemathesis.sh [SECONDS] (default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
venv=.venv-schemathesis
. scripts/lib/demo.sh
venv "$venv" scripts/schemathesis.txt

# Rate limits stay on (as `serve` runs them), with a bucket for the fuzzer's
# own token large enough that its calls reach the handlers; requests it sends
# without credentials still meet the address's bucket, and its 429s.
start_demo schemathesis --rate-limit principal:schemathesis=1000000/100000
token=$(node packages/server/dist/bin.js token --tenant tenant-123 --roles Admin --subject schemathesis --data-dir "$data_dir")

# One worker: Python 3.11 (the machine's python3) can fail ast.parse in two
# threads at once ("AST constructor recursion depth mismatch"), which
# hypothesis calls while generating; the server is the bottleneck anyway.
# Failover and migration are fuzzed with the rest: their refusals are
# statuses the document lists.
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/v1/openapi.yaml" \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-time "$seconds" --workers 1 --request-timeout 20 \
  --suppress-health-check all --warnings off || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- the server's log" >&2
  tail -n 200 "$log" >&2
fi
exit "$status"
