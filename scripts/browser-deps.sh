#!/usr/bin/env bash
# What the real-browser tests of the ops console (tests/browser) need besides the virtualenv:
#   - Debian's `chromium`, driven by Playwright for Python through its executable (no browser download);
#   - axe-core (the accessibility checker) from npm, installed once into .cache/axe.
# Installs what is missing (apt-get as root, else sudo; npm) and prints the paths the tests use. Quiet and quick
# when everything is there. Called by `make test` and by the tests' session fixture (tests/browser/conftest.py).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
AXE_VERSION=${STARPROMO_AXE_VERSION:-4.14.1}
AXE_DIR=${STARPROMO_AXE_DIR:-$ROOT/.cache/axe}
AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"

apt_install() {
  echo "browser-deps: installing $* with apt-get" >&2
  if [ "$(id -u)" = "0" ]; then
    (apt-get install -y "$@" >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y "$@" >/dev/null))
  else
    (sudo apt-get install -y "$@" >/dev/null 2>&1 || (sudo apt-get update >/dev/null && sudo apt-get install -y "$@" >/dev/null))
  fi
}

CHROMIUM=${STARPROMO_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  apt_install chromium
  CHROMIUM=/usr/bin/chromium
fi
[ -x "$CHROMIUM" ] || { echo "browser-deps: $CHROMIUM missing after apt-get install chromium" >&2; exit 1; }

if [ ! -s "$AXE_JS" ] || ! grep -q "\"version\": \"$AXE_VERSION\"" "$AXE_DIR/node_modules/axe-core/package.json" 2>/dev/null; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  echo "browser-deps: installing axe-core@$AXE_VERSION into $AXE_DIR with npm" >&2
  mkdir -p "$AXE_DIR"
  npm install --prefix "$AXE_DIR" --no-audit --no-fund --no-save --silent "axe-core@$AXE_VERSION" >&2
  [ -s "$AXE_JS" ] || { echo "browser-deps: $AXE_JS missing after npm install" >&2; exit 1; }
fi

echo "STARPROMO_CHROMIUM=$CHROMIUM"
echo "STARPROMO_AXE_JS=$AXE_JS"
