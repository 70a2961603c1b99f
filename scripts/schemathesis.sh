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
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/schemathesis.txt
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
grpc_port=$(free_port)
data_dir=$(mktemp -d "${TMPDIR:-/tmp}/heliosdb-schemathesis-XXXXXX")
chmod 0777 "$data_dir"
log="$data_dir/server.log"
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$data_dir"
}
trap cleanup EXIT

# Rate limits stay on (as `serve` runs them), with a bucket for the fuzzer's
# own token large enough that its calls reach the handlers; requests it sends
# without credentials still meet the address's bucket, and its 429s.
node packages/server/dist/bin.js serve --demo --port "$port" --grpc-port "$grpc_port" --data-dir "$data_dir" \
  --rate-limit principal:schemathesis=1000000/100000 >"$log" 2>&1 &
server=$!
for _ in $(seq 1 240); do
  if node -e "fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" "http://127.0.0.1:$port/v1/ready"; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log" >&2; echo "the server did not start" >&2; exit 1; fi
  sleep 0.5
done
token=$(node packages/server/dist/bin.js token --tenant tenant-123 --roles Admin --subject schemathesis --data-dir "$data_dir")

# One worker: Python 3.11 (the machine's python3) can fail ast.parse in two
# threads at once ("AST constructor recursion depth mismatch"), which
# hypothesis calls while generating; the server is the bottleneck anyway.
# Failover and migration answer 501 UNIMPLEMENTED (a 5xx, as the
# document says) until their issues land: each is tested once it does.
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/v1/openapi.yaml" \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --exclude-tag FailoverService --exclude-tag MigrationService \
  --max-time "$seconds" --workers 1 --request-timeout 20 \
  --suppress-health-check all --warnings off || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- the server's log" >&2
  tail -n 200 "$log" >&2
fi
exit "$status"
