#!/usr/bin/env bash
# The GPU check in one command (issue 19): on the lent GPU machine (one H100
# or H200, 16 cores, torch 2.11 at /opt/torch/.venv, cmake and ninja, no
# network, no apt), within 8 minutes:
#   1. unpack   the .debs tools/gpu/pack.sh fetched (.gpu-carry/debs) into a
#               prefix under the out dir with dpkg-deb -x (never onto /); a
#               transitive library the box already has is left out
#   2. build    catlip (Release, no tests) against that prefix and the box's
#               torch (-DCATLIP_PYTHON), ninja -j$(nproc)
#   3. bench    ViT-B/16, 224 px, bf16 training step: catlip vs PyTorch eager
#               vs torch.compile, same batch (catlip bench train --json):
#               img/s and MFU against the card's dense bf16 peak
#   4. quickstart  the CatLIP quickstart graph with train.device = "cuda",
#               decode on the host's cores: loss start -> end, held-out mAP,
#               the trainer's input-wait fraction (train_metrics.jsonl)
#   5. results  OUT/results.json and OUT/results.md: metric, value, target,
#               met/missed and by how much (tools/gpu/results.py)
# Each step is timed; a failed step fails the check (exit 1) after the
# results are written; a missed performance target is reported in the
# table, not a failure.
#
#   bash tools/gpu/check.sh [--out DIR] [--dry-run] [--prefix DIR] [--build-dir DIR]
#                           [--no-build] [--debs DIR] [--python PATH] [--batch N] [--no-compile]
#                           [--budget-s S]
#
#   --out DIR        results, logs, prefix, build (default runs/gpu-check)
#   --dry-run        on this CPU machine: the same steps, small: the repo's .venv python,
#                    bench ViT-tiny 32x4 on CPU for one step, the quickstart with a few
#                    hundred samples on CPU (the point: every step runs and is parsed)
#   --prefix DIR     where the .debs are unpacked (default OUT/prefix)
#   --build-dir DIR  build there (default OUT/build); an existing build dir is reused
#                    (ninja builds only the `catlip` and `catlip-bench` targets and what they need)
#   --no-build       use the binaries in --build-dir as they are
#   --debs DIR       the .debs (default .gpu-carry/debs); none: system libraries
#   --python PATH    torch's interpreter (default /opt/torch/.venv/bin/python;
#                    with --dry-run this repo's .venv/bin/python)
#   --batch N        bench batch (default 256 on the GPU: ViT-B/16 bf16 fits 80 GB)
#   --no-compile     skip the torch.compile baseline
#   --budget-s S     the whole check's seconds (default 480 on the GPU, none with --dry-run):
#                    bench and quickstart get what is left (the bench leaves the quickstart
#                    150 s), so the results are written before the machine's limit
#
# Run on the device machine (the .debs travel as a carried path):
#   bash tools/gpu/pack.sh            # here, with network
#   device run (carry .gpu-carry): bash tools/gpu/check.sh --out /tmp/gpu-check, then
#   copy /tmp/gpu-check/results.* and bench_train.json into $OUT (tools/gpu/README.md)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

OUT="$ROOT/runs/gpu-check" DRY=0 PREFIX="" BUILD="" NO_BUILD=0 DEBS="$ROOT/.gpu-carry/debs" PY="" BATCH=""
COMPILE=1 BUDGET=""
usage() { awk '/^#   bash tools\/gpu\/check.sh/ {p = 1} /^# Run on the device machine/ {p = 0} p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --dry-run) DRY=1; shift; continue ;;
    --no-build) NO_BUILD=1; shift; continue ;;
    --no-compile) COMPILE=0; shift; continue ;;
    -h|--help) usage; exit 0 ;;
  esac
  (($# >= 2)) || { echo "check: $1 needs a value (or unknown argument)" >&2; usage >&2; exit 2; }
  case "$1" in
    --out) OUT="$2" ;;
    --prefix) PREFIX="$2" ;;
    --build-dir) BUILD="$2" ;;
    --debs) DEBS="$2" ;;
    --python) PY="$2" ;;
    --batch) BATCH="$2" ;;
    --budget-s) BUDGET="$2" ;;
    *) echo "check: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift 2
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PREFIX="${PREFIX:-$OUT/prefix}"
BUILD="${BUILD:-$OUT/build}"
mkdir -p "$PREFIX" "$OUT/logs"
PREFIX="$(cd "$PREFIX" && pwd)"
BUILD="$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)"
if [ -z "$PY" ]; then
  if ((DRY)); then PY="$ROOT/.venv/bin/python"
  else
    for p in /opt/torch/.venv/bin/python /opt/torch/.venv/bin/python3 "$(command -v python3 || true)"; do
      [ -n "$p" ] && [ -x "$p" ] && { PY="$p"; break; }
    done
  fi
fi
[ -x "$PY" ] || { echo "check: no python with torch at '$PY' (--python PATH)" >&2; exit 2; }
NPROC=$(nproc)
if ((DRY)); then
  DEVICE=cpu MODE=dry-run
  BENCH_ARGS=(--device cpu --precision fp32 --size tiny --cases "32x${BATCH:-4}" --steps 1 --warmup 1 --rounds 1 --threads 1)
  QS_ARGS=(--train-samples 256 --val-samples 64 --batch-size 32 --decode-replicas 1
           --set train.device=cpu --set train.threads=1 --set train.log_every=2)
  BENCH_TIMEOUT=240 QS_TIMEOUT=240 BUDGET="${BUDGET:-0}"
else
  DEVICE=cuda MODE=gpu
  # Warm-up 5: torch.compile compiles forward and backward in the first two.
  BENCH_ARGS=(--device cuda --precision bf16 --size base --cases "224x${BATCH:-256}" --steps 20 --warmup 5 --rounds 1
              --threads "$NPROC")
  # Decode on half the host's cores, labels on a quarter; the trainer's
  # process keeps the rest for collation and feeding the GPU.
  DEC=$((NPROC / 2 > 0 ? NPROC / 2 : 1)) LAB=$((NPROC / 4 > 0 ? NPROC / 4 : 1))
  QS_ARGS=(--decode-replicas "$DEC" --set "labels.replicas=$LAB" --set train.device=cuda --set train.threads=4)
  BENCH_TIMEOUT=300 QS_TIMEOUT=300 BUDGET="${BUDGET:-480}"
fi
# A step's time limit: its own, cut to what the budget leaves after `reserve` s.
limit() {
  local own=$1 reserve=$2
  if ((BUDGET > 0)); then
    local left=$((BUDGET - SECONDS - reserve - 10))
    ((left < own)) && own=$left
  fi
  echo "$own"
}
((COMPILE)) || BENCH_ARGS+=(--no-compile)

echo "check: $MODE on $(hostname), $NPROC cores; out $OUT"
echo "check: python $PY; build $BUILD; prefix $PREFIX"
if command -v nvidia-smi >/dev/null 2>&1; then
  echo "check: GPU $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n1)"
fi

STEPS="$OUT/steps.tsv"
: >"$STEPS"
FAILED=0 STEP_RC=0
# run_step NAME CMD...: runs CMD (errexit on, in a subshell) with its output
# in logs/NAME.log and on stdout; records status and seconds in steps.tsv and
# the exit status in STEP_RC. Returns 0 (callers look at STEP_RC).
run_step() {
  local name="$1"; shift
  local t0=$SECONDS
  echo
  echo "=== [$name] $(date +%T)"
  set +e
  ( set -e; "$@" ) 2>&1 | tee "$OUT/logs/$name.log"
  STEP_RC=${PIPESTATUS[0]}
  set -e
  local dt=$((SECONDS - t0))
  if ((STEP_RC == 0)); then
    printf '%s\tok\t%d\t\n' "$name" "$dt" >>"$STEPS"
    echo "=== [$name] ok in ${dt} s"
  else
    printf '%s\tfailed\t%d\texit status %d (logs/%s.log)\n' "$name" "$dt" "$STEP_RC" "$name" >>"$STEPS"
    echo "=== [$name] FAILED (exit status $STEP_RC) after ${dt} s; log: $OUT/logs/$name.log"
    FAILED=1
  fi
}
skip_step() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >>"$STEPS"; echo; echo "=== [$1] skipped: $2"; }

# ---- 1. unpack -------------------------------------------------------------
# dev, tool and data packages are unpacked whole. A runtime library the box
# already has (its sonames known to ldconfig) is not taken from the prefix:
# a `dep` package is left out, and a `lib` package (the target of a dev
# package's .so link) is unpacked, its library files removed and the .so
# link pointed at the box's copy. So LD_LIBRARY_PATH below holds only
# libraries the box lacks, and the box's own programs (the torch venv's
# Python) keep their libraries.
HAVE_PREFIX=0
data_member() { ar t "$1" | grep -m1 '^data\.tar'; }
# Unpacks one .deb (dpkg-deb; ar + tar where dpkg is missing).
extract() {
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$PREFIX"; return; fi
  local m; m=$(data_member "$1")
  case "$m" in
    *.zst) ar p "$1" "$m" | zstd -dc | tar -x -C "$PREFIX" ;;
    *) ar p "$1" "$m" | tar -xa -C "$PREFIX" 2>/dev/null || ar p "$1" "$m" | tar -xJ -C "$PREFIX" ;;
  esac
}
# The sonames a runtime-library .deb ships: files in the library dirs
# (not plugins in subdirectories) ending in .so.N, or in .so where that is
# the soname (libdb-5.3.so).
sonames() {
  { if command -v dpkg-deb >/dev/null; then dpkg-deb -c "$1"
    else ar p "$1" "$(data_member "$1")" | xz -dc 2>/dev/null | tar -tv 2>/dev/null; fi
  } | { grep -oE '(usr/)?lib/([^/ ]*-linux-gnu/)?[^/ ]+\.so(\.[0-9]+)?( |$)' || true; } | sed 's#.*/##; s/ $//' | sort -u
}
unpack() {
  local manifest="$DEBS/manifest.tsv" stamp="$PREFIX/.catlip-unpacked"
  [ -f "$manifest" ] || { echo "no $manifest (run tools/gpu/pack.sh)"; return 1; }
  # soname -> the box's path, from the dynamic linker's cache.
  declare -A BOX=()
  local so path
  while read -r so path; do [ -n "${BOX[$so]:-}" ] || BOX[$so]=$path; done < <(ldconfig -p 2>/dev/null |
    awk -F' => ' '/ => / {split($1, a, " "); print a[1], $2}')
  local plan=() use_box=() f pkg ver role
  while IFS=$'\t' read -r f pkg ver role; do
    [[ $f == \#* || -z $f ]] && continue
    [ -f "$DEBS/$f" ] || { echo "missing $DEBS/$f (re-run tools/gpu/pack.sh)"; return 1; }
    if [ "$role" = dep ] || [ "$role" = lib ]; then
      local sos; sos=$(sonames "$DEBS/$f")
      local have=1
      for so in $sos; do [ -n "${BOX[$so]:-}" ] || have=0; done
      if ((have)) && [ -n "$sos" ]; then
        [ "$role" = dep ] && continue
        use_box+=($sos)
      fi
    fi
    plan+=("$f")
  done <"$manifest"
  local want; want=$(printf '%s\n' "${plan[@]}" "--" "${use_box[@]}" | md5sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "prefix $PREFIX already holds these packages"
  else
    if [ -e "$PREFIX/usr" ] && [ ! -f "$stamp" ]; then
      echo "$PREFIX/usr exists but was not unpacked by check.sh: refusing to replace it"; return 1
    fi
    rm -rf "$PREFIX/usr" "$PREFIX/etc" "$PREFIX/lib" "$stamp"
    for f in "${plan[@]}"; do extract "$DEBS/$f"; done
    # Absolute links (-> /usr/lib/...) would leave the prefix: point them into it.
    find "$PREFIX" -type l -lname '/*' | while read -r l; do ln -sfn "$PREFIX$(readlink "$l")" "$l"; done
    # The box's copy of each library it has: drop ours, re-point links at it.
    local l t
    for so in "${use_box[@]}"; do
      find "$PREFIX" \( -name "$so" -o -name "$so.*" \) \( -type f -o -type l \) -delete
    done
    find "$PREFIX" -xtype l | while read -r l; do
      t=$(basename "$(readlink "$l")")
      for so in "${use_box[@]}"; do
        if [ "$t" = "$so" ] || [[ $t == "$so".* ]]; then ln -sfn "${BOX[$so]}" "$l"; break; fi
      done
    done
    echo "$want" >"$stamp"
  fi
  echo "unpacked ${#plan[@]} of $(grep -vc '^#' "$manifest") packages into $PREFIX;" \
       "the box's own copy used for ${#use_box[@]} libraries (${use_box[*]:-none})"
  # What is left dangling belongs to a package carried for its headers only
  # (libgloo.so: c10d's Gloo is inside libtorch_cpu): no link to nothing.
  local dangling; dangling=$(find "$PREFIX" -xtype l -print -delete | sed "s#^$PREFIX/##")
  if [ -n "$dangling" ]; then echo "removed links to libraries not carried:" $dangling; fi
  du -sh "$PREFIX" | awk '{print "prefix size: " $1}'
}
if [ "$PREFIX" = / ]; then echo "check: --prefix / refused: the .debs go into a prefix of their own" >&2; exit 2; fi
if compgen -G "$DEBS/*.deb" >/dev/null; then
  run_step unpack unpack
  if ((STEP_RC == 0)); then HAVE_PREFIX=1; fi
else
  skip_step unpack "no .debs in $DEBS (tools/gpu/pack.sh): system libraries"
fi

# The prefix's libraries, headers, CMake and pkg-config files first.
if ((HAVE_PREFIX)); then
  P="$PREFIX/usr"
  ARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  export CPATH="$P/include:$P/include/$ARCH${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$P/lib/$ARCH:$P/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$P/lib/$ARCH:$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export CMAKE_PREFIX_PATH="$P${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  # The .pc files say prefix=/usr: the sysroot maps their paths into the prefix.
  export PKG_CONFIG_LIBDIR="$P/lib/$ARCH/pkgconfig:$P/lib/pkgconfig:$P/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$PREFIX"
  export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
  PKGCONF=""
  [ -x "$P/bin/pkgconf" ] && PKGCONF="$P/bin/pkgconf"
fi

# ---- 2. build --------------------------------------------------------------
build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    local args=(-S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCATLIP_BUILD_TESTS=OFF
                "-DCATLIP_PYTHON=$PY")
    ((HAVE_PREFIX)) && [ -n "$PKGCONF" ] && args+=("-DPKG_CONFIG_EXECUTABLE=$PKGCONF")
    echo "+ cmake ${args[*]}"
    cmake "${args[@]}"
  else
    echo "reusing the configured build dir $BUILD"
  fi
  echo "libraries as configured (the prefix is $PREFIX):"
  grep -E '^(Torch_DIR|Boost_DIR|ZeroMQ_LIBRARY|cppzmq_DIR|msgpack_DIR|tomlplusplus_DIR|nlohmann_json_DIR|ZLIB_LIBRARY_RELEASE|CURL_LIBRARY_RELEASE|ICU_UC_LIBRARY_RELEASE|GLOO_INCLUDE_DIR|pkgcfg_lib_CATLIP_SODIUM_sodium|pkgcfg_lib_CATLIP_IMG_(turbojpeg|jpeg|png16|webp)|PKG_CONFIG_EXECUTABLE):' \
    "$BUILD/CMakeCache.txt" | sed 's/:[A-Z]*=/ = /; s/^/  /' || true
  echo "+ ninja -C $BUILD -j$NPROC catlip catlip-bench"
  ninja -C "$BUILD" -j"$NPROC" catlip catlip-bench
}
BUILT=0
if ((NO_BUILD)); then
  if [ -x "$BUILD/bin/catlip" ] && [ -x "$BUILD/bin/catlip-torch" ] && [ -x "$BUILD/bin/catlip-bench" ]; then
    skip_step build "--no-build: using $BUILD/bin as it is"; BUILT=1
  else
    printf 'build\tfailed\t0\t--no-build, but %s/bin has no catlip, catlip-torch and catlip-bench\n' "$BUILD" >>"$STEPS"
    echo "check: --no-build, but $BUILD/bin has no catlip, catlip-torch and catlip-bench" >&2; FAILED=1
  fi
elif ! ((FAILED)); then
  run_step build build
  if ((STEP_RC == 0)); then BUILT=1; fi
else
  skip_step build "an earlier step failed"
fi
CATLIP="$BUILD/bin/catlip"

# ---- 3. bench --------------------------------------------------------------
T_BENCH=$(limit "$BENCH_TIMEOUT" 150)
if ((BUILT)) && ((T_BENCH >= 30)); then
  rm -f "$OUT/bench_train.json"
  echo "check: bench time limit ${T_BENCH} s"
  run_step bench timeout "$T_BENCH" "$CATLIP" bench train "${BENCH_ARGS[@]}" --python "$PY" \
    --json "$OUT/bench_train.json"
elif ((BUILT)); then
  skip_step bench "out of the ${BUDGET} s budget"
else
  skip_step bench "no build"
fi

# ---- 4. quickstart ---------------------------------------------------------
# The quickstart's text stages read WordNet and the tagger's model from
# /usr/share by default; with the prefix's copies, a patched copy of its
# configs points them there (the box may have neither).
quickstart() {
  local configs="$ROOT/configs" wn="$PREFIX/usr/share/wordnet" lex="$PREFIX/usr/share/perl5/Lingua/EN/Tagger"
  if ((HAVE_PREFIX)) && [ -f "$wn/index.noun" ] && [ -f "$lex/words.yml" ]; then
    configs="$OUT/configs"
    rm -rf "$configs" && mkdir -p "$configs"
    ln -s "$ROOT/configs/data" "$configs/data"
    for f in "$ROOT"/configs/quickstart_*.toml; do
      sed -e "/^type = \"text\.\(parse\|labels\)\"/a wordnet_dir = \"$wn\"\nlexicon_dir = \"$lex\"" \
          -e "/^type = \"text\.vocab_merge\"/a wordnet_dir = \"$wn\"" "$f" >"$configs/$(basename "$f")"
    done
    echo "configs: $configs (WordNet and the tagger model from the prefix)"
  fi
  cd "$ROOT"
  echo "+ catlip quickstart --out $OUT/quickstart --no-transfer ${QS_ARGS[*]}"
  timeout "$T_QS" "$CATLIP" quickstart --out "$OUT/quickstart" --configs "$configs" --no-transfer "${QS_ARGS[@]}"
}
T_QS=$(limit "$QS_TIMEOUT" 0)
if ((BUILT)) && ((T_QS >= 30)); then
  echo "check: quickstart time limit ${T_QS} s"
  run_step quickstart quickstart
elif ((BUILT)); then
  skip_step quickstart "out of the ${BUDGET} s budget"
else
  skip_step quickstart "no build"
fi

# ---- 5. results ------------------------------------------------------------
GPU_NAME=""
command -v nvidia-smi >/dev/null 2>&1 && GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 || true)
echo
echo "=== [results] $(date +%T)"
"$PY" "$ROOT/tools/gpu/results.py" --out "$OUT" --mode "$MODE" --device "$DEVICE" --gpu "$GPU_NAME" \
  --cores "$NPROC" --python "$PY" || { echo "check: results.py failed" >&2; FAILED=1; }
if ((FAILED)); then
  echo "check: FAILED (a step failed; see the table and $OUT/logs)"
  exit 1
fi
echo "check: every step ran; results in $OUT/results.md and $OUT/results.json"
