#!/usr/bin/env bash
# Installs every Debian package catlip needs (idempotent: fast when all are
# present), then configures and builds catlip (Release) into build/.
#
#   bash tools/setup.sh [--no-build] [--apps] [--test-deps] [BUILD_DIR]
#
# --test-deps also installs tools/packages-test.txt (what only tests need).
#
# --apps builds only what running catlip needs (the `catlip` target pulls in
# catlip-worker, catlip-torch and every plugin), not the tests: about half
# the compile time, which the quickstart's 15-minute budget needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=""
NO_BUILD=0
TARGET=()
LISTS=("$ROOT/tools/packages.txt")
for a in "$@"; do
  case "$a" in
    --test-deps) LISTS+=("$ROOT/tools/packages-test.txt") ;;
    --no-build) NO_BUILD=1 ;;
    --apps) TARGET=(--target catlip) ;;
    *) BUILD="$a" ;;
  esac
done
BUILD="${BUILD:-$ROOT/build}"

mapfile -t PKGS < <(cat "${LISTS[@]}" | sed -e 's/#.*//' -e '/^[[:space:]]*$/d' | tr -d ' \t')
MISSING=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    MISSING+=("$p")
  fi
done
if ((${#MISSING[@]})); then
  echo "setup: installing ${#MISSING[@]} Debian packages: ${MISSING[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends "${MISSING[@]}"
else
  echo "setup: all ${#PKGS[@]} Debian packages present"
fi

if ((NO_BUILD)); then exit 0; fi
JOBS="${CATLIP_JOBS:-$(nproc)}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD" -j "$JOBS" "${TARGET[@]}"
echo "setup: built into $BUILD (binaries in $BUILD/bin, plugins in $BUILD/plugins)"
