#!/usr/bin/env bash
# Fetches, here (network needed), the Debian packages that building and
# running catlip needs on the GPU machine, which reaches no network and has
# no apt: a Debian/Ubuntu-like box with cmake, ninja, g++ and the torch venv
# but none of catlip's libraries. `tools/gpu/check.sh` unpacks them into a
# prefix (dpkg-deb -x; never onto /) and builds against it.
#
#   bash tools/gpu/pack.sh [DIR]      (default DIR: .gpu-carry/debs, git-ignored)
#
# What is fetched (apt-get download: no install, no root needed):
#   dev   headers, .so links, CMake/pkg-config files of what the build links:
#         ZeroMQ (+cppzmq), libsodium, msgpack-cxx, toml++, Boost (headers
#         only: Boost.Asio), libcurl, ICU, libjpeg-turbo/turbojpeg, libpng,
#         libwebp, zlib, nlohmann-json (headers only), Gloo (headers only: c10d's ProcessGroupGloo lives in
#         the torch wheel). No Catch2: check.sh builds without the tests.
#   lib   the runtime libraries those .so links point to (always unpacked)
#   dep   the libraries those depend on, recursively, less the C/C++ runtime
#         every toolchain has (libc6, libgcc-s1, libstdc++6); check.sh
#         unpacks one only when the box's dynamic linker lacks its sonames
#   tool  pkgconf (pkg-config), in case the box has none
#   data  wordnet-base (WordNet 3.0, /usr/share/wordnet) and
#         liblingua-en-tagger-perl (only its POS model files, read by
#         stages/text; no Perl is run) for the quickstart's labels
#
# Writes DIR/manifest.tsv (file, package, version, role) and prints the total
# size. The GPU machine receives the working tree plus at most 64 MiB of
# carried paths: this fails if the .debs exceed CATLIP_GPU_CARRY_MB (default
# 60 MiB). Re-running keeps the .debs already there and removes stale ones.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-$ROOT/.gpu-carry/debs}"
LIMIT_MB="${CATLIP_GPU_CARRY_MB:-60}"

DEV=(libzmq3-dev cppzmq-dev libsodium-dev libmsgpack-cxx-dev libtomlplusplus-dev libcurl4-openssl-dev
     libicu-dev libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev libwebp-dev zlib1g-dev libgloo-dev
     nlohmann-json3-dev)
# Packages whose Depends are not followed: Boost's -dev chain (headers are
# all the build uses) and Gloo (headers only; libgloo0 would pull in
# libibverbs and hiredis for nothing).
HEADERS_ONLY=(libgloo-dev nlohmann-json3-dev)
TOOL=(pkgconf pkgconf-bin)
DATA=(wordnet-base liblingua-en-tagger-perl)
# Present wherever g++ runs; a second glibc/libstdc++ in the prefix would break things.
BASE_RE='^(libc6|libgcc-s1|libstdc\+\+6|gcc-[0-9]+-base|libcrypt1)$'

command -v apt-get >/dev/null && command -v apt-cache >/dev/null ||
  { echo "pack: needs apt-get and apt-cache (a Debian/Ubuntu host)" >&2; exit 1; }

# Boost: the versioned headers package behind libboost-dev (libboost1.74-dev on Debian 12).
BOOST=$(apt-cache depends libboost-dev 2>/dev/null | awk '/^ *Depends: libboost[0-9.]+-dev$/ {print $2; exit}')
[ -n "$BOOST" ] || { echo "pack: cannot resolve libboost-dev to a versioned package (apt-get update?)" >&2; exit 1; }
DEV+=("$BOOST")
HEADERS_ONLY+=("$BOOST")

# Direct Depends of a package (real packages only).
depends() { apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
              --no-enhances "$@" 2>/dev/null | awk '/^ *(Pre)?Depends: [^<]/ {print $2}'; }

declare -A ROLE=()
for p in "${DEV[@]}"; do ROLE[$p]=dev; done
for p in "${TOOL[@]}"; do ROLE[$p]=tool; done
for p in "${DATA[@]}"; do ROLE[$p]=data; done
# lib: the runtime libraries of the dev and tool packages (lib*/zlib*, not
# -dev; not ICU's command-line tools either).
LIBS=()
for p in "${DEV[@]}" "${TOOL[@]}"; do
  [[ " ${HEADERS_ONLY[*]} " == *" $p "* ]] && continue
  while read -r d; do
    if [[ $d =~ ^z?lib && $d != *-dev && ! $d =~ $BASE_RE && -z "${ROLE[$d]:-}" ]]; then
      ROLE[$d]=lib
      LIBS+=("$d")
    fi
  done < <(depends "$p")
done
# dep: everything those need, recursively.
if ((${#LIBS[@]})); then
  while read -r d; do
    [[ $d =~ $BASE_RE || -n "${ROLE[$d]:-}" ]] && continue
    ROLE[$d]=dep
  done < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
             --no-replaces --no-enhances "${LIBS[@]}" 2>/dev/null | awk '/^[a-z0-9]/ {print $1}' | sort -u)
fi

PKGS=("${!ROLE[@]}")
IFS=$'\n' PKGS=($(sort <<<"${PKGS[*]}")); unset IFS
mkdir -p "$DIR"
cd "$DIR"
echo "pack: ${#PKGS[@]} packages into $DIR"
MANIFEST=$(mktemp)
trap 'rm -f "$MANIFEST"' EXIT
# Candidate versions, one apt-cache call for all.
declare -A VER=()
while read -r p v; do VER[$p]=$v; done < <(apt-cache policy "${PKGS[@]}" 2>/dev/null |
  awk '/^[^ ].*:$/ {sub(/:$/, ""); p = $0} /^  Candidate:/ {print p, $2}')
declare -A KEEP=()
for p in "${PKGS[@]}"; do
  ver="${VER[$p]:-}"
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "pack: no candidate version of $p (apt-get update?)" >&2; exit 1; }
  # apt-get download names files PKG_VERSION_ARCH.deb, with ':' as %3a.
  f=$(ls "${p}_${ver//:/%3a}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    # (as root, apt would warn that its _apt user cannot write DIR)
    apt-get download -q -o APT::Sandbox::User="$(id -un)" "$p=$ver" >/dev/null
    f=$(ls "${p}_${ver//:/%3a}"_*.deb | head -n1)
  fi
  KEEP[$f]=1
  printf '%s\t%s\t%s\t%s\n' "$f" "$p" "$ver" "${ROLE[$p]}" >>"$MANIFEST"
done
for f in *.deb; do
  [ -e "$f" ] && [ -z "${KEEP[$f]:-}" ] && { echo "pack: removing stale $f"; rm -f "$f"; }
done
{ printf '# file\tpackage\tversion\trole (tools/gpu/pack.sh; from %s)\n' \
    "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown} $(dpkg --print-architecture 2>/dev/null)")"
  cat "$MANIFEST"; } >manifest.tsv

total=$(du -cb -- *.deb | tail -n1 | cut -f1)
mb=$(awk -v b="$total" 'BEGIN {printf "%.1f", b / 1048576}')
for r in dev lib dep tool data; do
  n=$(awk -F'\t' -v r=$r '$4 == r' manifest.tsv | wc -l)
  s=$(awk -F'\t' -v r=$r '$4 == r {print $1}' manifest.tsv | xargs -r du -cb | tail -n1 | cut -f1)
  printf 'pack: %-4s %3d packages %6.1f MiB\n' "$r" "$n" "$(awk -v b="${s:-0}" 'BEGIN {print b / 1048576}')"
done
echo "pack: total $mb MiB in ${#PKGS[@]} .debs ($DIR; limit $LIMIT_MB MiB)"
if awk -v b="$total" -v l="$LIMIT_MB" 'BEGIN {exit !(b > l * 1048576)}'; then
  echo "pack: FAILED: $mb MiB is over the $LIMIT_MB MiB that may travel to the GPU machine; the largest:" >&2
  du -b -- *.deb | sort -rn | head -n 8 | awk '{printf "  %6.1f MiB  %s\n", $1 / 1048576, $2}' >&2
  exit 1
fi
