# Sourced by the scripts that test against a running demo server
# (schemathesis.sh, python-example.sh): `start_demo NAME [serve flags…]`
# starts `serve --demo` from packages/server/dist on free ports with a data
# directory of its own, waits until it is ready, and sets $port, $grpc_port,
# $data_dir and $log; the server is stopped and its directory removed when
# the script exits. `venv DIR REQUIREMENTS` makes a Python virtualenv once.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

venv() {
  if [ ! -x "$1/bin/python" ] || ! cmp -s "$2" "$1/requirements.txt"; then
    rm -rf "$1"
    python3 -m venv "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check -r "$2"
    cp "$2" "$1/requirements.txt"
  fi
}

demo_server=""
demo_cleanup() {
  if [ -n "$demo_server" ] && kill -0 "$demo_server" 2>/dev/null; then
    kill -TERM "$demo_server" 2>/dev/null || true
    wait "$demo_server" 2>/dev/null || true
  fi
  if [ -n "${data_dir:-}" ]; then rm -rf "$data_dir"; fi
}
trap demo_cleanup EXIT

start_demo() {
  local name=$1
  shift
  port=$(free_port)
  grpc_port=$(free_port)
  data_dir=$(mktemp -d "${TMPDIR:-/tmp}/heliosdb-$name-XXXXXX")
  chmod 0777 "$data_dir"
  log="$data_dir/server.log"
  node packages/server/dist/bin.js serve --demo --port "$port" --grpc-port "$grpc_port" --data-dir "$data_dir" "$@" >"$log" 2>&1 &
  demo_server=$!
  for _ in $(seq 1 240); do
    if node -e "fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" "http://127.0.0.1:$port/v1/ready"; then return 0; fi
    if ! kill -0 "$demo_server" 2>/dev/null; then cat "$log" >&2; echo "the demo server did not start" >&2; exit 1; fi
    sleep 0.5
  done
  cat "$log" >&2
  echo "the demo server was not ready after 120 s" >&2
  exit 1
}
