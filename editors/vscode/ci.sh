#!/usr/bin/env bash
# Builds, tests and packages the VS Code extension, then checks the .vsix.
#   editors/vscode/ci.sh     (from any directory)
# Installs Node.js and npm with apt-get when npm is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v npm >/dev/null 2>&1; then
  echo "== installing nodejs and npm"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi
echo "== node $(node --version), npm $(npm --version)"

echo "== npm ci"
npm ci --no-audit --no-fund

echo "== build"
npm run build

echo "== test"
npm test

echo "== package"
version="$(node -p "require('./package.json').version")"
vsix="writ-$version.vsix"
rm -f "$vsix"
npm run package
if [ ! -f "$vsix" ]; then
  echo "$vsix was not written" >&2
  exit 1
fi

echo "== contents of $vsix"
if command -v unzip >/dev/null 2>&1; then
  listing="$(unzip -Z1 "$vsix")"
else
  # yauzl comes with @vscode/vsce.
  listing="$(node -e '
    require("yauzl").open(process.argv[1], { lazyEntries: true }, (err, zip) => {
      if (err) throw err;
      zip.on("entry", (e) => { console.log(e.fileName); zip.readEntry(); });
      zip.readEntry();
    });' "$vsix")"
fi
status=0
for want in extension/package.json extension/out/extension.js extension/syntaxes/writ.tmLanguage.json \
    extension/language-configuration.json extension/node_modules/vscode-languageclient/node.js \
    extension/node_modules/vscode-languageclient/package.json; do
  if grep -qxF "$want" <<<"$listing"; then
    echo "ok   $want"
  else
    echo "MISSING $want" >&2
    status=1
  fi
done
for unwanted in extension/src/ extension/test/ extension/node_modules/typescript/ extension/node_modules/@vscode/vsce/; do
  if grep -q "^$unwanted" <<<"$listing"; then
    echo "UNEXPECTED $unwanted in the package" >&2
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
echo "vscode extension: $vsix ($(wc -l <<<"$listing") files) OK"
