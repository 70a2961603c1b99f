#!/usr/bin/env bash
# Regenerates the code buf.gen.yaml produces and fails when it differs from
# what is committed: generated code is never edited by hand, and never stale.
set -euo pipefail
cd "$(dirname "$0")/.."
# The public contract's code, the engine's internal formats' code, and the
# server's gRPC reflection and health code; and the OpenAPI document.
generated=(packages/proto/src/gen packages/engine/src/gen packages/server/src/gen packages/server/openapi)
npx buf generate
changes=$(git status --porcelain -- "${generated[@]}")
if [ -n "$changes" ]; then
  echo "Generated code is stale: run 'npm run generate' and commit the result." >&2
  echo "$changes" >&2
  git --no-pager diff --stat -- "${generated[@]}" >&2
  exit 1
fi
echo "generated code is current"
