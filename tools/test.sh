#!/usr/bin/env bash
# Sets up (packages + Release build), then runs every test through CTest.
#
#   bash tools/test.sh [extra ctest arguments, e.g. -L runtime]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh" --test-deps
cd "$ROOT/build"
ctest --output-on-failure -j "${CATLIP_TEST_JOBS:-2}" "$@"
