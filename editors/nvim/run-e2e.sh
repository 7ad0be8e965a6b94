#!/usr/bin/env bash
# Runs the Neovim end-to-end test against a built `writ` binary.
#   editors/nvim/run-e2e.sh [path/to/writ]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
writ="$(realpath "${1:-$here/../../target/debug/writ}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/broken.writ" "$work/broken.writ"
out="$work/out.txt"
if ! WRIT="$writ" POLICY="$work/broken.writ" timeout 60 \
    nvim --headless -u NONE -i NONE -n -c "luafile $here/e2e.lua" >"$out" 2>&1; then
  cat "$out"
  echo "neovim e2e: FAILED"
  exit 1
fi
cat "$out"
grep -q "e2e OK" "$out"
