#!/usr/bin/env bash
# Sets up (packages + Release build), then runs every test through CTest.
#
#   bash tools/test.sh [--full] [extra ctest arguments, e.g. -L runtime]
#
# --full also runs the soaks (CTest label `soak`: the full cross-node
# quickstart pair, ~15 min here), whose small forms every run has.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOAK=(-LE soak)
if [ "${1:-}" = "--full" ]; then
  SOAK=()
  shift
fi
bash "$ROOT/tools/setup.sh" --test-deps
cd "$ROOT/build"
LOG="$ROOT/build/Testing/ctest-output.log"
mkdir -p "$(dirname "$LOG")"
t0=$(date +%s)
rc=0
ctest --output-on-failure -j "${CATLIP_TEST_JOBS:-2}" "${SOAK[@]}" "$@" 2>&1 | tee "$LOG" || rc=$?
echo "ctest: $(( $(date +%s) - t0 )) s wall"
# The slowest 10 tests of this run (a test over 120 s belongs in a bench).
echo "slowest tests:"
grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$LOG" |
  sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: (.*[^ .]) \.+ *[^ ]+ +([0-9.]+) sec$/\2\t\1/' |
  sort -rn | awk -F'\t' 'NR <= 10 { printf "  %8.1f s  %s\n", $1, $2 }'
if [ "$rc" != 0 ]; then exit "$rc"; fi

# --- fuzz (tests/fuzz, tools/fuzz.sh) -------------------------------------
# Every libFuzzer target (codec, tar, image, graph, text, formats) for
# CATLIP_FUZZ_SECONDS each (default 30 for the full run, skipped when ctest
# arguments select a subset); any finding fails the run. Needs clang and
# libFuzzer (clang, libclang-rt-14-dev in tools/packages-test.txt).
FUZZ_S="${CATLIP_FUZZ_SECONDS:-$( (($#)) && echo 0 || echo 30)}"
if [ "$FUZZ_S" = 0 ]; then
  echo "fuzz: SKIPPED (CATLIP_FUZZ_SECONDS=0 or a ctest subset was asked for)"
elif ! command -v clang++ >/dev/null ||
     ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
       clang++ -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
  echo "fuzz: SKIPPED (no clang++ with libFuzzer; install clang libclang-rt-14-dev)"
else
  bash "$ROOT/tools/fuzz.sh" all "$FUZZ_S"
fi
# --- end fuzz --------------------------------------------------------------
