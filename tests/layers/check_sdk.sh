#!/bin/sh
# tests/layers/check_sdk.sh - the SDK/runtime split, checked on the sources: the
# plugin SDK (core/sdk), the stage areas (stages/) and the plugins (plugins/)
# include no runtime header (core/runtime/include/catlip/*.h) and link no
# catlip_runtime; only stages/exec may use the wire codec (codec.h), which
# its bridge speaks to the program.
#   check_sdk.sh SOURCE_DIR   exit 0 if clean, else 1 naming file:line
#   check_sdk.sh --self-test  the check must fail on a planted runtime include
set -u

check() {  # $1: a source tree with core/runtime/include/catlip
  root=$1
  [ -d "$root/core/runtime/include/catlip" ] || { echo "check_sdk: no $root/core/runtime/include/catlip" >&2; return 2; }
  headers=$(cd "$root/core/runtime/include/catlip" && ls *.h | tr '\n' ' ')
  bad=$(mktemp) || return 2
  for dir in core/sdk stages plugins; do
    [ -d "$root/$dir" ] || continue
    (cd "$root" && grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' \
      '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]catlip/[A-Za-z0-9_]+\.h[>"]' "$dir") |
      while IFS= read -r hit; do
        file=${hit%%:*}
        h=$(printf '%s\n' "$hit" | sed -E 's|.*[<"]catlip/([A-Za-z0-9_]+\.h)[>"].*|\1|')
        case " $headers " in *" $h "*) ;; *) continue ;; esac
        case "$file:$h" in stages/exec/*:codec.h) continue ;; esac
        echo "$(printf '%s\n' "$hit" | cut -d: -f1-2): error: includes the runtime header catlip/$h; plugins, stage areas and the SDK use only the SDK (core/sdk)" >>"$bad"
      done
    (cd "$root" && find "$dir" -name CMakeLists.txt) | while IFS= read -r cm; do
      case "$cm" in stages/exec/*) continue ;; esac
      n=0
      while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        code=${line%%#*}
        if printf '%s\n' "$code" | grep -qE '(^|[^A-Za-z0-9_])catlip_runtime([^A-Za-z0-9_]|$)'; then
          echo "$cm:$n: error: links catlip_runtime; plugins and stage areas link only the SDK (catlip_core)" >>"$bad"
        fi
      done <"$root/$cm"
    done
  done
  if [ -s "$bad" ]; then
    cat "$bad"
    echo "check_sdk: $(wc -l <"$bad" | tr -d ' ') violation(s) of the SDK/runtime split (ARCHITECTURE.md, Layers)"
    rm -f "$bad"
    return 1
  fi
  rm -f "$bad"
  echo "check_sdk: core/sdk, stages/ and plugins/ use no runtime header ($headers) and link no catlip_runtime (exec: codec.h)"
  return 0
}

self_test() {
  t=$(mktemp -d) || exit 2
  trap 'rm -rf "$t"' EXIT
  mkdir -p "$t/core/runtime/include/catlip" "$t/core/sdk/src" "$t/stages/image/src" "$t/stages/exec/src" "$t/plugins/image"
  touch "$t/core/runtime/include/catlip/transport.h" "$t/core/runtime/include/catlip/codec.h"
  printf '#include "catlip/stage.h"\n' >"$t/stages/image/src/d.cpp"
  printf '#include "catlip/codec.h"\n' >"$t/stages/exec/src/s.cpp"
  echo "target_link_libraries(catlip_stages_exec PRIVATE catlip_runtime)" >"$t/stages/exec/CMakeLists.txt"
  echo "add_library(catlip_stages_image STATIC)" >"$t/stages/image/CMakeLists.txt"
  (check "$t") >/dev/null || { echo "self-test: a clean tree failed"; exit 1; }
  printf '#include "catlip/stage.h"\n #include <catlip/transport.h>\n' >"$t/stages/image/src/d.cpp"
  out=$( (check "$t") ) && { echo "self-test: a runtime include in a stage area passed"; exit 1; }
  printf '%s\n' "$out" | grep -q '^stages/image/src/d.cpp:2: ' || { echo "self-test: no file:line in:"; echo "$out"; exit 1; }
  printf '#include "catlip/stage.h"\n' >"$t/stages/image/src/d.cpp"
  printf '#include "catlip/transport.h"\n' >"$t/stages/exec/src/s.cpp"
  (check "$t") >/dev/null && { echo "self-test: exec including more than the codec passed"; exit 1; }
  printf '#include "catlip/codec.h"\n' >"$t/stages/exec/src/s.cpp"
  printf '#include "catlip/codec.h"\n' >"$t/core/sdk/src/x.cpp"
  (check "$t") >/dev/null && { echo "self-test: the SDK including the runtime passed"; exit 1; }
  rm "$t/core/sdk/src/x.cpp"
  echo "target_link_libraries(catlip_plugin_image PRIVATE catlip_runtime)" >"$t/plugins/image/CMakeLists.txt"
  out=$( (check "$t") ) && { echo "self-test: a plugin linking the runtime passed"; exit 1; }
  printf '%s\n' "$out" | grep -q '^plugins/image/CMakeLists.txt:1: ' || { echo "self-test: no file:line in:"; echo "$out"; exit 1; }
  echo "self-test: runtime includes and links outside the runtime's users are caught, named by file:line"
}

if [ "${1:-}" = "--self-test" ]; then self_test; else check "${1:-.}"; fi
