#!/usr/bin/env bash
# `buf breaking` of the working tree against the contract of an earlier
# commit: BUF_BREAKING_AGAINST (a git ref), default HEAD~1, the previous commit
# of main. That commit is checked out into a temporary folder with this
# checkout's node_modules beside it, because the contract imports
# google/api/*.proto from the npm package google-proto-files.
set -euo pipefail
cd "$(dirname "$0")/.."
against=${BUF_BREAKING_AGAINST:-HEAD~1}

if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "buf breaking skipped: there is no earlier commit ($against) to compare with."
  exit 0
fi
if [ -z "$(git ls-tree -r --name-only "$against" -- proto)" ]; then
  echo "buf breaking skipped: $against has no contract yet (no proto/ folder)."
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$against" proto buf.yaml | tar -x -C "$tmp"
ln -s "$PWD/node_modules" "$tmp/node_modules"
buf="$PWD/node_modules/.bin/buf"
# Both sides as images of our module's files. An image carries no buf.yaml: buf
# applies its default breaking rules, FILE, the same that buf.yaml names.
(cd "$tmp" && "$buf" build --path proto/heliosdb -o against.binpb)
"$buf" build --path proto/heliosdb -o "$tmp/current.binpb"
"$buf" breaking "$tmp/current.binpb" --against "$tmp/against.binpb" --exclude-imports
echo "no breaking change against $(git rev-parse --short "$against")"
