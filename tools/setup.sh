#!/usr/bin/env bash
# Installs every Debian package catlip needs (idempotent: fast when all are
# present), the project venv .venv/ with the pinned torch wheel and the
# Python baselines (tools/requirements.txt; LibTorch comes from that wheel),
# then configures and builds catlip (Release) into build/.
#
#   bash tools/setup.sh [--no-build] [--apps] [--test-deps] [BUILD_DIR]
#
# --test-deps also installs tools/packages-test.txt (what only tests need)
# and the Python peers of tools/requirements-dev.txt.
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

# --- the project venv: LibTorch (inside the torch wheel) and the Python
# baselines, one interpreter for both sides of every comparison. Reinstalled
# only when tools/requirements.txt changes (a stamp holds the last one).
VENV="$ROOT/.venv"
REQ="$ROOT/tools/requirements.txt"
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
if ! cmp -s "$REQ" "$VENV/.catlip-requirements"; then
  echo "setup: installing $(grep -c '^[a-z]' "$REQ") pinned Python packages into $VENV (torch with its CUDA libraries: ~2.6 GB download)"
  t0=$(date +%s)
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ"
  cp "$REQ" "$VENV/.catlip-requirements"
  echo "setup: venv ready in $(( $(date +%s) - t0 )) s: $("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)')"
else
  echo "setup: venv $VENV up to date with tools/requirements.txt"
fi

# --test-deps: the peers the tests and benches compare against
# (tools/requirements-dev.txt: timm, OpenCLIP, ftfy, WebDataset, SPDL, DALI).
DEV_REQ="$ROOT/tools/requirements-dev.txt"
if ((${#LISTS[@]} > 1)) && ! cmp -s "$DEV_REQ" "$VENV/.catlip-requirements-dev"; then
  echo "setup: installing the peers of tools/requirements-dev.txt into $VENV"
  t0=$(date +%s)
  (cd "$ROOT/tools" && "$VENV/bin/pip" install --disable-pip-version-check -q -r "$DEV_REQ")
  cp "$DEV_REQ" "$VENV/.catlip-requirements-dev"
  echo "setup: peers ready in $(( $(date +%s) - t0 )) s"
fi
if ((NO_BUILD)); then exit 0; fi
JOBS="${CATLIP_JOBS:-$(nproc)}"
t0=$(date +%s)
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD" -j "$JOBS" "${TARGET[@]}"
echo "setup: built into $BUILD in $(( $(date +%s) - t0 )) s with $JOBS jobs (binaries in $BUILD/bin, plugins in $BUILD/plugins)"
