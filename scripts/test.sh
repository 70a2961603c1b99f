#!/usr/bin/env bash
# Every check and every test of the repository; `npm test` runs this, and CI
# runs `npm ci && npm test`. Steps print what they do and stop at the first
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

step() { printf '\n=== %s\n' "$*"; }

step "buf lint: the contract follows the STANDARD rules, with the spec's exceptions of buf.yaml"
npx buf lint

step "buf breaking: no breaking change against the previous commit of main"
scripts/buf-breaking.sh

step "buf generate: the committed generated code is current"
scripts/check-generated.sh

step "typecheck and build every package"
npx turbo run typecheck build --output-logs=errors-only

step "typecheck the benchmarks (bench/*: run by hand, so nothing else would notice them break)"
for dir in bench/*/; do npx tsc --noEmit -p "$dir"; done

step "headless Chromium for the browser tests (Debian's package; no browser is downloaded by npm)"
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
fi

step "schemathesis: 90 s of generated requests against the demo server's /v1/openapi.yaml (no 5xx; every answer as documented)"
scripts/schemathesis.sh 90

step "spec §3.2's Python client (grpcio, stubs generated from proto/) streams the demo's metrics"
scripts/python-example.sh

step "tests"
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-report.json
node scripts/test-summary.mjs .vitest-report.json
