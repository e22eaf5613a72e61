#!/usr/bin/env bash
# The main job: set up, build, and run catlip's embedded default graph.
#
#   bash tools/quickstart.sh [catlip run options, e.g. --run-dir DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh"
cd "$ROOT"
exec "$ROOT/build/bin/catlip" run "$@"
