#!/bin/sh
# tests/layers/check_comments.sh - two rules for a readable tree, checked on the
# sources (no build), for the source files under core/ stages/ plugins/ graph/
# tools/ tests/ examples/ (.cpp .cc .h .hpp .inc .py .sh .cmake, CMakeLists.txt;
# not tests/fuzz/corpus, build*/, .venv, __pycache__):
#   (a) a file starts with a comment saying what it holds (after an optional
#       shebang; a Python module may start with its docstring);
#   (b) an empty catch block (C++ `catch (...) {}`, Python `except ...: pass`)
#       says why ignoring the exception is right: a comment inside it, after
#       its closing brace on the same line, or on the line right before it.
#   check_comments.sh SOURCE_DIR   exit 0 if clean, else 1 naming file:line
#   check_comments.sh --self-test  each rule must fire on a bad fixture and stay
#                                  quiet on a good one
set -u

DIRS="core stages plugins graph tools tests examples"

# The files to check, relative to the current directory, one a line.
source_files() {
  for d in $DIRS; do
    [ -d "$d" ] || continue
    find "$d" \( -type d \( -name 'build*' -o -name .venv -o -name __pycache__ \) -o -path tests/fuzz/corpus \) -prune -o \
      -type f \( -name '*.cpp' -o -name '*.cc' -o -name '*.h' -o -name '*.hpp' -o -name '*.inc' \
                 -o -name '*.py' -o -name '*.sh' -o -name '*.cmake' -o -name CMakeLists.txt \) -print
  done | LC_ALL=C sort
}

# Reads the files named on its command line; prints one "file:line: error: ..."
# per violation.
# shellcheck disable=SC2016
AWK_RULES='
function kind(f) {
  if (f ~ /\.py$/) return "py"
  if (f ~ /(\.sh|\.cmake|CMakeLists\.txt)$/) return "hash"
  return "c"
}
function is_comment(l, k) {
  if (k == "c") return l ~ /^[ \t]*(\/\/|\/\*|\*)/
  if (k == "py" && l ~ /^[ \t]*[rRuU]?("""|'"'''"')/) return 1
  return l ~ /^[ \t]*#/
}
function indent(l) { match(l, /^[ \t]*/); return RLENGTH }
function report(n, msg) { print file ":" n ": error: " msg }
function check_file(   k, first, s, i, pos, start, stop, a, b, col, rest, pre, nxt, j) {
  if (file == "") return
  k = kind(file)
  # (a) the first line (after a shebang) is a comment. An empty file holds nothing to describe.
  first = (n >= 1 && L[1] ~ /^#!/) ? 2 : 1
  if (n >= first && !is_comment(L[first], k))
    report(first, "the file does not start with a comment saying what it holds")
  # (b) empty catch blocks.
  if (k == "c") {
    s = ""
    for (i = 1; i <= n; i++) { off[i] = length(s) + 1; s = s L[i] "\n" }
    pos = 1
    while (match(substr(s, pos), /catch[ \t\n]*\([^()]*(\([^()]*\)[^()]*)?\)[ \t\n]*[{][ \t\n]*[}]/)) {
      start = pos + RSTART - 1; stop = start + RLENGTH - 1; pos = stop + 1
      if (start > 1 && substr(s, start - 1, 1) ~ /[A-Za-z0-9_]/) continue  # e.g. on_catch() {}
      for (a = n; a > 1 && off[a] > start; a--) ;
      for (b = a; b < n && off[b + 1] <= stop; b++) ;
      pre = substr(L[a], 1, start - off[a])
      if (pre ~ /\/\/|\/\*/) continue  # in a comment
      col = stop - off[b] + 1
      rest = substr(L[b], col + 1)
      if (rest ~ /^[ \t]*(\/\/|\/\*)/) continue
      if (a > 1 && L[a - 1] ~ /^[ \t]*(\/\/|\/\*|\*)/) continue
      report(a, "empty catch block without a comment saying why the exception is ignored")
    }
  } else if (k == "py") {
    for (i = 1; i <= n; i++) {
      if (L[i] !~ /^[ \t]*except([^A-Za-z0-9_].*)?:[ \t]*((pass|\.\.\.)[ \t]*)?$/) continue
      if (i > 1 && L[i - 1] ~ /^[ \t]*#/) continue
      if (L[i] !~ /:[ \t]*$/) { report(i, "empty except block without a comment saying why the exception is ignored"); continue }
      if (i == n || L[i + 1] !~ /^[ \t]*(pass|\.\.\.)[ \t]*$/) continue
      for (j = i + 2; j <= n && L[j] ~ /^[ \t]*$/; j++) ;
      if (j <= n && indent(L[j]) > indent(L[i])) continue  # more follows pass in the block
      report(i, "empty except block without a comment saying why the exception is ignored")
    }
  }
}
FNR == 1 { check_file(); file = FILENAME; n = 0 }
{ sub(/\r$/, ""); L[++n] = $0 }
END { check_file() }
'

check() {  # $1: a source tree
  cd "$1" || { echo "check_comments: no $1" >&2; return 2; }
  list=$(mktemp) || return 2
  bad=$(mktemp) || { rm -f "$list"; return 2; }
  source_files >"$list"
  if [ -s "$list" ]; then
    # Files one by one in awk's argument list (paths in this tree have no spaces).
    # shellcheck disable=SC2046
    awk "$AWK_RULES" $(cat "$list") >"$bad" || { rm -f "$list" "$bad"; return 2; }
  fi
  files=$(wc -l <"$list" | tr -d ' ')
  rm -f "$list"
  if [ -s "$bad" ]; then
    cat "$bad"
    echo "check_comments: $(wc -l <"$bad" | tr -d ' ') violation(s) in $files files: a source file starts with" \
         "a comment saying what it holds, and an empty catch says why ignoring the exception is right"
    rm -f "$bad"
    return 1
  fi
  rm -f "$bad"
  echo "check_comments: $files source files start with a comment; every empty catch block says why"
  return 0
}

self_test() {
  t=$(mktemp -d) || exit 2
  trap 'rm -rf "$t"' EXIT
  mkdir -p "$t/stages/x/src" "$t/tools" "$t/tests/fuzz/corpus" "$t/build/core"
  # A tree that follows both rules.
  cat >"$t/stages/x/src/a.cpp" <<'EOF'
// What a.cpp holds.
#include "a.h"
void on_catch() {}
void f() {
  try {
    g();
  } catch (const std::exception&) {
    // why ignoring is right
  }
  try { g(); } catch (...) {}  // why, on the same line
  try {
    g();
    // why, on the line before
  } catch (...) {}
  // catch (...) {} in a comment is not code
  try { g(); } catch (...) { /* why */ }
  try { g(); } catch (...) { h(); }
}
EOF
  printf '/* What a.h holds. */\n#pragma once\n' >"$t/stages/x/src/a.h"
  printf '# What x builds.\nadd_library(x STATIC src/a.cpp)\n' >"$t/stages/x/CMakeLists.txt"
  printf '#!/bin/sh\n# What t.sh does.\ntrue\n' >"$t/tools/t.sh"
  cat >"$t/tools/p.py" <<'EOF'
#!/usr/bin/env python3
"""What p.py does."""
try:
    f()
except OSError:
    # why ignoring is right
    pass
try:
    f()
except OSError:  # why, on the except line
    pass
try:
    f()
except ValueError:
    pass
    g()
EOF
  : >"$t/tools/__init__.py"
  printf 'not a comment\n' >"$t/tests/fuzz/corpus/seed.cpp"   # corpus: not source
  printf 'int x;\n' >"$t/build/core/gen.cpp"                    # outside the checked dirs
  out=$( (check "$t") ) || { echo "self-test: a clean tree failed:"; echo "$out"; exit 1; }

  # expect FILE:LINE WHAT: the check must fail naming FILE:LINE; then the fixture is put back.
  expect() {
    out=$( (check "$t") ) && { echo "self-test: $3 passed"; exit 1; }
    printf '%s\n' "$out" | grep -q "^$1:$2: error: " || { echo "self-test: $3: no $1:$2 in:"; echo "$out"; exit 1; }
    n=$(printf '%s\n' "$out" | grep -c ': error: ')
    [ "$n" = 1 ] || { echo "self-test: $3: $n errors, expected 1:"; echo "$out"; exit 1; }
  }
  keep() { cp "$t/$1" "$t/$1.orig"; }
  restore() { mv "$t/$1.orig" "$t/$1"; }

  # (a) no header comment, in each kind of file.
  keep stages/x/src/a.h; printf '#pragma once\n// too late\n' >"$t/stages/x/src/a.h"
  expect stages/x/src/a.h 1 "a header starting with #pragma once"; restore stages/x/src/a.h
  keep stages/x/src/a.cpp; sed '1d' "$t/stages/x/src/a.cpp.orig" >"$t/stages/x/src/a.cpp"
  expect stages/x/src/a.cpp 1 "a .cpp starting with #include"; restore stages/x/src/a.cpp
  keep stages/x/CMakeLists.txt; printf 'add_library(x STATIC src/a.cpp)\n' >"$t/stages/x/CMakeLists.txt"
  expect stages/x/CMakeLists.txt 1 "a CMakeLists.txt starting with a command"; restore stages/x/CMakeLists.txt
  keep tools/t.sh; printf '#!/bin/sh\nset -eu\n' >"$t/tools/t.sh"
  expect tools/t.sh 2 "a script with a shebang and no comment"; restore tools/t.sh
  keep tools/p.py; sed '2d' "$t/tools/p.py.orig" >"$t/tools/p.py"
  expect tools/p.py 2 "a Python file without a docstring or comment"; restore tools/p.py

  # (b) empty catch blocks without a comment.
  keep stages/x/src/a.cpp; sed '8d' "$t/stages/x/src/a.cpp.orig" >"$t/stages/x/src/a.cpp"
  expect stages/x/src/a.cpp 7 "a multi-line empty catch"; restore stages/x/src/a.cpp
  keep stages/x/src/a.cpp; sed 's|{}  // why, on the same line|{}|' "$t/stages/x/src/a.cpp.orig" >"$t/stages/x/src/a.cpp"
  expect stages/x/src/a.cpp 10 "a one-line empty catch"; restore stages/x/src/a.cpp
  keep stages/x/src/a.cpp; sed '13d' "$t/stages/x/src/a.cpp.orig" >"$t/stages/x/src/a.cpp"
  expect stages/x/src/a.cpp 13 "an empty catch after code"; restore stages/x/src/a.cpp
  keep stages/x/src/a.cpp; sed 's|^  } catch (const std::exception&) {$|  } catch (const std::exception\&) {}|; 8,9d' \
    "$t/stages/x/src/a.cpp.orig" >"$t/stages/x/src/a.cpp"
  expect stages/x/src/a.cpp 7 "an empty catch of a named type"; restore stages/x/src/a.cpp
  keep tools/p.py; sed '6d' "$t/tools/p.py.orig" >"$t/tools/p.py"
  expect tools/p.py 5 "an except: pass block"; restore tools/p.py
  keep tools/p.py; printf 'try:\n    f()\nexcept Exception: pass\n' >>"$t/tools/p.py"
  expect tools/p.py 19 "a one-line except: pass"; restore tools/p.py

  out=$( (check "$t") ) || { echo "self-test: the restored tree failed:"; echo "$out"; exit 1; }
  echo "self-test: files without a header comment and empty catch blocks without a why are caught, by file:line"
}

if [ "${1:-}" = "--self-test" ]; then self_test; else check "${1:-.}"; fi
