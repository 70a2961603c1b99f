#!/usr/bin/env bash
# Regenerates the code buf.gen.yaml produces and fails when it differs from
# what is committed: generated code is never edited by hand, and never stale.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf generate
changes=$(git status --porcelain -- packages/proto/src/gen)
if [ -n "$changes" ]; then
  echo "Generated code is stale: run 'npm run generate' and commit the result." >&2
  echo "$changes" >&2
  git --no-pager diff --stat -- packages/proto/src/gen >&2
  exit 1
fi
echo "generated code is current"
