#!/bin/sh
# extract_cpp_blocks.sh DOC.md "Section title" OUT.cpp
# Writes the ```cpp blocks of one section of a Markdown file, in order, to
# OUT.cpp (with #line directives pointing back into DOC.md), so that a test
# compiles the documentation's example exactly as shown. Fails if the
# section has no cpp block.
set -eu
doc=$1 section=$2 out=$3
awk -v sec="$section" -v doc="$doc" '
  $0 == "## " sec { insec = 1; next }
  insec && /^## / { insec = 0 }
  insec && /^ *```cpp *$/ { code = 1; blocks++; printf "#line %d \"%s\"\n", NR + 1, doc; next }
  insec && code && /^ *``` *$/ { code = 0; next }
  insec && code { print }
  END { if (blocks == 0) { print "no cpp block in section " sec > "/dev/stderr"; exit 1 } }
' "$doc" > "$out.tmp"
mv "$out.tmp" "$out"
