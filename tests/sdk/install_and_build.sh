#!/usr/bin/env bash
# install_and_build.sh BUILD_DIR EXAMPLE_DIR
#
# The plugin SDK as a user gets it: `cmake --install` of the catlip build
# into a temporary prefix, then the example plugin project configured with
# -DCMAKE_PREFIX_PATH=<prefix> only (no path into catlip's tree), built,
# its own test run, and its stages documented by the installed `catlip
# inspect` and run in a graph by the installed `catlip run` through
# CATLIP_PLUGIN_PATH. Also checks the installed library's soname, the
# RUNPATHs (nothing points into the build tree) and the pkg-config file.
# The temporary directory is removed (kept with CATLIP_KEEP_TEST_DIRS=1).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
EXAMPLE=$(cd "$2" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/catlip-sdk.XXXXXX")
cleanup() { if [ -z "${CATLIP_KEEP_TEST_DIRS:-}" ]; then rm -rf "$T"; else echo "kept $T"; fi; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
P=$T/prefix
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

step "cmake --install $BUILD --prefix $P"
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" || { cat "$T/install.log"; fail "cmake --install"; }
for f in bin/catlip bin/catlip-worker include/catlip/stage.h include/catlip/plugin.h include/catlip/local.h \
         lib/cmake/catlip/catlipConfig.cmake lib/cmake/catlip/catlipConfigVersion.cmake \
         lib/cmake/catlip/catlipTargets.cmake lib/pkgconfig/catlip.pc lib/catlip/plugins/catlip_testing.so; do
  [ -e "$P/$f" ] || fail "not installed: $f"
done
# The SDK's headers only: the runtime (libcatlip_runtime, for the programs)
# is installed without its headers.
for f in include/catlip/transport.h include/catlip/runtime.h include/catlip/codec.h include/catlip/plugin_loader.h; do
  [ ! -e "$P/$f" ] || fail "a runtime header is installed with the SDK: $f"
done
ls "$P"/lib/libcatlip_runtime.so.* >/dev/null 2>&1 || fail "libcatlip_runtime is not installed for the programs"
if [ -e "$BUILD/plugins/catlip_exec.so" ] && [ ! -f "$P/lib/catlip/plugins/python/catlip_stage.py" ]; then
  fail "the exec plugin's Python helper is not installed beside it"
fi
ABI=$(sed -n 's/^#define CATLIP_PLUGIN_ABI_VERSION \([0-9]*\)u\{0,1\}$/\1/p' "$P/include/catlip/plugin.h")
[ -L "$P/lib/libcatlip_core.so" ] || fail "no libcatlip_core.so symlink"
readelf -d "$P/lib/libcatlip_core.so" | grep -q "SONAME.*\[libcatlip_core.so.$ABI\]" ||
  fail "soname of libcatlip_core is not libcatlip_core.so.$ABI"
for f in "$P"/bin/catlip* "$P"/lib/catlip/plugins/*.so "$P"/lib/libcatlip_core.so.*; do
  [ -L "$f" ] && continue
  if readelf -d "$f" | grep -E "RUNPATH|RPATH" | grep -qF "$BUILD"; then fail "$f has a RUNPATH into the build tree"; fi
done
readelf -d "$P/bin/catlip" | grep -F 'RUNPATH' | grep -qF '[$ORIGIN/../lib' || fail "catlip's RUNPATH is not \$ORIGIN/../lib"
ldd "$P/bin/catlip" | grep libcatlip_core | grep -qF "$P/" || fail "installed catlip does not use the installed libcatlip_core"

step "configure, build and test $EXAMPLE against the prefix only"
cmake -S "$EXAMPLE" -B "$T/build" "${GEN[@]}" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release >"$T/configure.log" ||
  { cat "$T/configure.log"; fail "configure"; }
if grep -F "$BUILD" "$T/build/CMakeCache.txt"; then fail "the example's configuration refers to the catlip build tree"; fi
cmake --build "$T/build" -j 2 >"$T/build.log" || { cat "$T/build.log"; fail "build"; }
ctest --test-dir "$T/build" --output-on-failure || fail "the example's own test"
[ -f "$T/build/plugins/catlip_myplugin.so" ] || fail "no build/plugins/catlip_myplugin.so"

step "installed catlip inspect / run with CATLIP_PLUGIN_PATH"
export CATLIP_PLUGIN_PATH=$T/build/plugins
out=$("$P/bin/catlip" inspect 2>&1) || { echo "$out"; fail "catlip inspect"; }
echo "$out" | grep -qF "Plugin directories: $T/build/plugins $P/lib/catlip/plugins" ||
  { echo "$out"; fail "inspect does not search CATLIP_PLUGIN_PATH then the installed plugin directory"; }
for t in myplugin.words myplugin.upper myplugin.save; do
  echo "$out" | grep -q "^    $t " || { echo "$out"; fail "catlip inspect does not list $t"; }
done
"$P/bin/catlip" inspect myplugin.words | grep -q "repeat (int, default 1, range 1..1000000)" || fail "inspect myplugin.words"
(cd "$T" && "$P/bin/catlip" run "$EXAMPLE/graph.toml" --run-dir "$T/run" >"$T/run.log" 2>&1) ||
  { cat "$T/run.log"; fail "catlip run graph.toml"; }
lines=$(cat "$T"/run/words.txt.* | wc -l)
[ "$lines" = 27 ] || fail "expected 27 saved words, got $lines"
grep -qx "word0 THE" "$T/run/words.txt.0" || fail "word0 is not THE"
grep -qx "word26 DOG" "$T/run/words.txt.0" || fail "word26 is not DOG"
unset CATLIP_PLUGIN_PATH

step "pkg-config"
export PKG_CONFIG_PATH=$P/lib/pkgconfig
[ "$(pkg-config --variable=plugindir catlip)" -ef "$P/lib/catlip/plugins" ] || fail "pkg-config plugindir"
cat >"$T/pc.cpp" <<'CPP'
#include "catlip/local.h"
int main() { catlip::LocalContext ctx; ctx.count("n"); return ctx.counter("n") == 1 ? 0 : 1; }
CPP
# shellcheck disable=SC2046
c++ -std=c++17 "$T/pc.cpp" -o "$T/pc" $(pkg-config --cflags --libs catlip) -Wl,-rpath,"$(pkg-config --variable=libdir catlip)" ||
  fail "compiling with pkg-config --cflags --libs catlip"
"$T/pc" || fail "program built with pkg-config"
echo "sdk install test: ok"
