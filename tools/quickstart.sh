#!/usr/bin/env bash
# The README's main command: set up (Debian packages + Release build), then
# run CatLIP end to end on embedded synthetic data: generate train and
# held-out shards, build the synset vocabulary, train a tiny ViT, evaluate it
# against the drawn objects, run Transfer Init and write an HTML report.
# Prints the report path and the headline numbers. ~10 minutes on 2 cores,
# build included.
#
#   bash tools/quickstart.sh [catlip quickstart options, e.g. --out DIR]
#   (see build/bin/catlip quickstart --help; `catlip run` of the embedded
#    demo graph is still `build/bin/catlip run`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh" --apps
cd "$ROOT"
exec "$ROOT/build/bin/catlip" quickstart "$@"
