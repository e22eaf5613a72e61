#!/bin/sh
# tests/layers/check_layers.sh - ARCHITECTURE.md's layer rule for stages/, checked
# on the sources (no build): a stage area neither includes another area's
# headers (catlip/<area>/...) nor links its libraries (catlip_[stages_]<area>*);
# a shared library (SHARED below) does neither for any area.
#   check_layers.sh SOURCE_DIR   exit 0 if clean, else 1 naming file:line
#   check_layers.sh --self-test  the check must fail on a planted sideways include
set -u

# Every stages/ directory is a stage area; the libraries the areas share
# live beside core (core/model) and must include no area either.
SHARED=""
SHARED_DIRS="model"

check() {  # $1: a source tree with stages/
  cd "$1/stages" || { echo "check_layers: no $1/stages" >&2; return 2; }
  areas=""
  for d in */; do
    d=${d%/}
    [ -f "$d/CMakeLists.txt" ] || continue
    case " $SHARED " in *" $d "*) ;; *) areas="$areas $d" ;; esac
  done
  bad=$(mktemp) || return 2
  for d in */; do
    d=${d%/}
    [ -f "$d/CMakeLists.txt" ] || continue
    case " $SHARED " in *" $d "*) what="shared library" ;; *) what="stage area" ;; esac
    # Includes of area headers.
    grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' --include='*.inc' \
      '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]catlip/[A-Za-z0-9_]+/' "$d" |
      while IFS= read -r hit; do
        inc=$(printf '%s\n' "$hit" | sed -E 's|^[^:]*:[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]catlip/([A-Za-z0-9_]+)/.*|\1|')
        [ "$inc" = "$d" ] && continue
        case " $areas " in *" $inc "*) ;; *) continue ;; esac
        loc=$(printf '%s\n' "$hit" | cut -d: -f1-2)
        echo "stages/$loc: error: $what '$d' includes a header of stage area '$inc': $(printf '%s\n' "$hit" | cut -d: -f3-)" >>"$bad"
      done
    # Links to area libraries (comments stripped).
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
      n=$((n + 1))
      code=${line%%#*}
      for a in $areas; do
        [ "$a" = "$d" ] && continue
        if printf '%s\n' "$code" | grep -qE "(^|[^A-Za-z0-9_])catlip_(stages_)?${a}([^A-Za-z0-9]|_|\$)"; then
          echo "stages/$d/CMakeLists.txt:$n: error: $what '$d' names a library of stage area '$a': $(printf '%s' "$code" | sed 's/^[[:space:]]*//')" >>"$bad"
        fi
      done
    done <"$d/CMakeLists.txt"
  done
  for d in $SHARED_DIRS; do
    [ -d "../core/$d" ] || continue
    grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' \
      '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]catlip/[A-Za-z0-9_]+/' "../core/$d" |
      while IFS= read -r hit; do
        inc=$(printf '%s\n' "$hit" | sed -E 's|^[^:]*:[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]catlip/([A-Za-z0-9_]+)/.*|\1|')
        case " $areas " in *" $inc "*) ;; *) continue ;; esac
        loc=$(printf '%s\n' "$hit" | cut -d: -f1-2 | sed 's|^\.\./||')
        echo "$loc: error: shared library '$d' includes a header of stage area '$inc'" >>"$bad"
      done
  done
  if [ -s "$bad" ]; then
    cat "$bad"
    echo "check_layers: $(wc -l <"$bad" | tr -d ' ') violation(s): a stage area depends only on core, the shared" \
         "libraries (core/{$(echo $SHARED_DIRS | tr ' ' ',')}) and third-party libraries; code that joins areas" \
         "belongs in tools/ (ARCHITECTURE.md, Layers)"
    rm -f "$bad"
    return 1
  fi
  rm -f "$bad"
  echo "check_layers: stage areas$areas; shared: core/$SHARED_DIRS; no sideways includes or links"
  return 0
}

self_test() {
  t=$(mktemp -d) || exit 2
  trap 'rm -rf "$t"' EXIT
  mkdir -p "$t/stages/eval/src" "$t/stages/train/include/catlip/train" "$t/core/model/src"
  for a in eval train; do echo "add_library(catlip_x_$a STATIC)" >"$t/stages/$a/CMakeLists.txt"; done
  echo "add_library(catlip_x_model STATIC)" >"$t/core/model/CMakeLists.txt"
  printf '// ok\n#include "catlip/model/vit.h"\n#include "catlip/stage.h"\n' >"$t/stages/train/include/catlip/train/t.h"
  printf '#include "catlip/eval/e.h"\n' >"$t/stages/eval/src/e.cpp"
  (check "$t") >/dev/null || { echo "self-test: a clean tree failed"; exit 1; }
  printf '#include "catlip/eval/e.h"\n\n  #include "catlip/train/t.h"\n' >"$t/stages/eval/src/e.cpp"
  out=$( (check "$t") ) && { echo "self-test: a sideways include passed"; exit 1; }
  printf '%s\n' "$out" | grep -q '^stages/eval/src/e.cpp:3: ' || { echo "self-test: no file:line in:"; echo "$out"; exit 1; }
  printf '#include "catlip/eval/e.h"\n' >"$t/stages/eval/src/e.cpp"
  printf '#include <catlip/train/t.h>\n' >"$t/core/model/src/m.cpp"
  out=$( (check "$t") ) && { echo "self-test: a shared library including an area passed"; exit 1; }
  rm "$t/core/model/src/m.cpp"
  echo "target_link_libraries(catlip_x_eval PUBLIC catlip_stages_train)  # sideways" >>"$t/stages/eval/CMakeLists.txt"
  out=$( (check "$t") ) && { echo "self-test: a sideways link passed"; exit 1; }
  printf '%s\n' "$out" | grep -q '^stages/eval/CMakeLists.txt:2: ' || { echo "self-test: no file:line in:"; echo "$out"; exit 1; }
  echo "self-test: sideways includes and links are caught, named by file:line"
}

if [ "${1:-}" = "--self-test" ]; then self_test; else check "${1:-.}"; fi
