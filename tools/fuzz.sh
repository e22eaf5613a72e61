#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) into
# build-fuzz/ and runs one target, or every one, for a bounded time.
#
#   bash tools/fuzz.sh TARGET SECONDS     TARGET: codec tar image graph text formats, or all
#   bash tools/fuzz.sh --build            only (re)build
#   bash tools/fuzz.sh --seeds            rewrite the checked-in seed corpus
#
# Each run starts from the checked-in seeds (tests/fuzz/corpus/<target>/,
# read only; every seed and regress-* input is replayed first, so an input
# that once failed fails again), uses tests/fuzz/<target>.dict if present,
# and keeps what it finds interesting in build-fuzz/corpus/<target>/.
# A finding (crash, sanitizer report, leak, timeout over 10 s, RSS over 2 GB)
# is saved as build-fuzz/findings/<target>/crash-* and makes the script exit 1
# after all requested targets ran. Executions per target are printed at the end.
#
# Environment: CATLIP_FUZZ_BUILD (build dir, default <repo>/build-fuzz),
# CATLIP_JOBS (compile jobs), CATLIP_FUZZ_LOCK (a file to flock around the
# compile, so that builds of several checkouts do not run at once).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${CATLIP_FUZZ_BUILD:-$ROOT/build-fuzz}"
ALL=(codec tar image graph text formats)

# Per-target -max_len: a few KB covers every header and structure; images
# and tars get more room for real content.
max_len() {
  case "$1" in
    codec) echo 16384 ;; tar) echo 16384 ;; image) echo 65536 ;; graph) echo 8192 ;; text) echo 4096 ;;
    formats) echo 16384 ;;
  esac
}

build() {
  if ! command -v clang++ >/dev/null; then
    echo "fuzz: clang++ not found (Debian packages clang, libclang-rt-14-dev)" >&2
    return 2
  fi
  local lock=(); if [ -n "${CATLIP_FUZZ_LOCK:-}" ]; then lock=(flock "$CATLIP_FUZZ_LOCK"); fi
  if [ ! -f "$BUILD/build.ninja" ]; then
    "${lock[@]}" env CC=clang CXX=clang++ cmake -S "$ROOT/tests/fuzz" -B "$BUILD" -G Ninja >/dev/null
  fi
  "${lock[@]}" cmake --build "$BUILD" -j "${CATLIP_JOBS:-$(nproc)}" "$@"
}

case "${1:-}" in
  --build) build; exit ;;
  --seeds)
    build --target fuzz_make_seeds
    C="$ROOT/tests/fuzz/corpus"
    rm -f "$C"/{codec,tar,image,text,formats}/seed-* "$C"/graph/seed-*
    "$BUILD/bin/fuzz_make_seeds" "$C"
    mkdir -p "$C/graph"
    for f in "$ROOT"/configs/*.toml "$ROOT"/configs/examples/*.toml; do
      cp "$f" "$C/graph/seed-$(basename "$f")"
    done
    du -sh "$C"; exit ;;
  ""|-h|--help) sed -n '2,19p' "$0"; exit 2 ;;
esac

TARGET="$1"
SECONDS_EACH="${2:?usage: tools/fuzz.sh TARGET SECONDS}"
if [ "$TARGET" = all ]; then TARGETS=("${ALL[@]}"); else TARGETS=("$TARGET"); fi
for t in "${TARGETS[@]}"; do
  [ -n "$(max_len "$t")" ] || { echo "fuzz: unknown target '$t' (${ALL[*]} or all)" >&2; exit 2; }
done

build
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
findings=0
summary=()
for t in "${TARGETS[@]}"; do
  seeds="$ROOT/tests/fuzz/corpus/$t"
  work="$BUILD/corpus/$t"
  out="$BUILD/findings/$t"
  log="$BUILD/logs/$t.log"
  rm -rf "$out"  # artifacts of an earlier run: this run reports its own
  mkdir -p "$work" "$out" "$(dirname "$log")"
  echo "fuzz: $t for ${SECONDS_EACH}s (log $log)"
  dict=(); if [ -f "$ROOT/tests/fuzz/$t.dict" ]; then dict=(-dict="$ROOT/tests/fuzz/$t.dict"); fi
  rc=0
  # -close_fd_mask=1: the decoders' warnings on stdout would drown the log.
  "$BUILD/bin/fuzz_$t" "$work" "$seeds" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -print_final_stats=1 -artifact_prefix="$out/" -close_fd_mask=1 "${dict[@]}" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  crashes=$(find "$out" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    findings=$((findings + 1))
    summary+=("$t: FINDING (exit $rc, ${execs:-?} executions; artifacts in $out)")
    echo "fuzz: $t FAILED; the report:"
    grep -E -A40 '^==[0-9]+==ERROR|runtime error|FUZZ_CHECK|deadly signal|Test unit written' "$log" | head -80 || tail -40 "$log"
  else
    summary+=("$t: ok, ${execs:-?} executions in ${SECONDS_EACH}s")
  fi
done
echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
if ((findings)); then
  echo "fuzz: $findings target(s) with findings (reproduce: build-fuzz/bin/fuzz_TARGET ARTIFACT)"
  exit 1
fi
