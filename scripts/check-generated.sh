#!/usr/bin/env bash
# Regenerates the code buf.gen.yaml produces and fails when it differs from
# what is committed: generated code is never edited by hand, and never stale.
set -euo pipefail
cd "$(dirname "$0")/.."
# The public contract's code, the engine's internal formats' code, and the
# server's gRPC reflection and health code; and the OpenAPI document. Then the
# SDK's types of that document (openapi-typescript) and of its own REST JSON
# and enum spellings (from the descriptors just generated), which
# packages/sdk/src/internal/rest-drift.ts holds to each other at typecheck.
generated=(packages/proto/src/gen packages/engine/src/gen packages/server/src/gen packages/server/openapi
  packages/sdk/src/internal/openapi.ts packages/sdk/src/internal/rest-types.ts packages/sdk/src/internal/enum-names.ts)
npx buf generate
npm run generate --silent -w packages/sdk
changes=$(git status --porcelain -- "${generated[@]}")
if [ -n "$changes" ]; then
  echo "Generated code is stale: run 'npm run generate' and commit the result." >&2
  echo "$changes" >&2
  git --no-pager diff --stat -- "${generated[@]}" >&2
  exit 1
fi
echo "generated code is current"
