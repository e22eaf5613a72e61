#!/usr/bin/env bash
# Emulated hosts for the cluster tests: network namespaces on a private bridge.
#
#   netns.sh up TAG N [A.B.C]
#                        create namespaces cl<TAG>-0 .. cl<TAG>-<N-1>, each with lo up
#                        and 10.<a>.<b>.<k+1>/24 on eth0 (a, b derived from TAG; or
#                        A.B.C.<k+1>/24 when given, e.g. 10.0.0 for the docs' addresses:
#                        safe, as the namespaces have no route out and the root
#                        namespace has no address on the bridge),
#                        joined by bridge cl<TAG>br that lives in its own namespace
#                        cl<TAG>-br (nothing in the root namespace, so no route to
#                        anywhere else); prints "k ADDRESS NETNS VETH_HOST_SIDE" per node.
#   netns.sh down TAG    remove everything `up TAG` made (idempotent); kills
#                        processes still inside the namespaces.
#   netns.sh bytes TAG   rx+tx bytes summed over the bridge-side veths.
#   netns.sh check       exit 77 when namespaces cannot be made here, else 0.
#
# TAG: 1-8 characters [a-z0-9] (interface names stay within 15 characters).
set -euo pipefail

die() { echo "netns.sh: $*" >&2; exit 1; }

check_tag() {
  [[ "$1" =~ ^[a-z0-9]{1,8}$ ]] || die "TAG must be 1-8 characters [a-z0-9], got '$1'"
}

subnet() {  # 10.a.b from TAG: a in 200..249, b in 0..255
  local h
  h=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
  echo "10.$((200 + h % 50)).$(((h / 50) % 256))"
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

kill_ns_procs() {  # kill every process inside namespace $1
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
  for _ in $(seq 50); do
    [ -z "$(ip netns pids "$1" 2>/dev/null || true)" ] && return 0
    sleep 0.1
  done
}

down() {
  local tag=$1 ns
  check_tag "$tag"
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^cl${tag}-([0-9]+|br)\$" || true); do
    kill_ns_procs "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
  return 0
}

up() {
  local tag=$1 n=$2 fixed=${3:-}
  check_tag "$tag"
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 250 ] || die "N must be 1..250"
  if [ -n "$fixed" ]; then
    [[ "$fixed" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "subnet must be A.B.C, got '$fixed'"
  fi
  down "$tag"
  # Any failure below (set -e, die) leaves nothing half made.
  trap 'rc=$?; [ "$rc" = 0 ] || down "$tag" >/dev/null 2>&1' EXIT
  local net br="cl${tag}-br" bridge="cl${tag}br"
  net=${fixed:-$(subnet "$tag")}
  ip netns add "$br"
  ip -n "$br" link set lo up
  ip -n "$br" link add "$bridge" type bridge
  ip -n "$br" link set "$bridge" up
  # Bridged frames must not go through the namespace's netfilter (there is none
  # anyway, but the root namespace's br_netfilter settings could otherwise apply).
  ip netns exec "$br" sh -c 'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -w "$f" ] && echo 0 > "$f"; done; true'
  local k ns host node
  for ((k = 0; k < n; k++)); do
    ns="cl${tag}-${k}"
    host="cl${tag}h${k}"
    node="cl${tag}n${k}"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$br" link add "$host" type veth peer name "$node" netns "$ns"
    ip -n "$br" link set "$host" master "$bridge"
    ip -n "$br" link set "$host" up
    ip -n "$ns" link set "$node" name eth0
    ip -n "$ns" addr add "${net}.$((k + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  # Wait until every node reaches node 0 (bridge ports forwarding, no DAD delay).
  for ((k = 1; k < n; k++)); do
    local ok=0
    for _ in $(seq 100); do
      if ip netns exec "cl${tag}-${k}" ping -c1 -W1 "${net}.1" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.1
    done
    [ "$ok" = 1 ] || die "node $k cannot reach ${net}.1"
  done
  for ((k = 0; k < n; k++)); do
    echo "$k ${net}.$((k + 1)) cl${tag}-${k} cl${tag}h${k}"
  done
}

bytes() {
  local tag=$1 total=0 dev rx tx
  check_tag "$tag"
  ns_exists "cl${tag}-br" || die "no namespaces for tag $tag"
  for dev in $(ip -n "cl${tag}-br" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^cl${tag}h[0-9]+\$"); do
    rx=$(ip netns exec "cl${tag}-br" cat "/sys/class/net/$dev/statistics/rx_bytes")
    tx=$(ip netns exec "cl${tag}-br" cat "/sys/class/net/$dev/statistics/tx_bytes")
    total=$((total + rx + tx))
  done
  echo "$total"
}

check() {
  [ "$(id -u)" = 0 ] || { echo "netns.sh: not root" >&2; exit 77; }
  command -v ip >/dev/null || { echo "netns.sh: no 'ip' (iproute2)" >&2; exit 77; }
  command -v ping >/dev/null || { echo "netns.sh: no 'ping' (iputils-ping)" >&2; exit 77; }
  local ns="clchk$$"
  if ! ip netns add "$ns" 2>/dev/null; then echo "netns.sh: cannot create network namespaces" >&2; exit 77; fi
  local rc=0
  ip -n "$ns" link add clchkb type bridge 2>/dev/null &&
    ip -n "$ns" link add clchka type veth peer name clchkc 2>/dev/null &&
    ip netns exec "$ns" true 2>/dev/null || rc=77
  ip netns del "$ns" 2>/dev/null || true
  [ "$rc" = 0 ] || echo "netns.sh: cannot create bridges/veths or enter namespaces" >&2
  exit "$rc"
}

case "${1:-}" in
  up) [ $# = 3 ] || [ $# = 4 ] || die "usage: netns.sh up TAG N [A.B.C]"; up "$2" "$3" "${4:-}" ;;
  down) [ $# = 2 ] || die "usage: netns.sh down TAG"; down "$2" ;;
  bytes) [ $# = 2 ] || die "usage: netns.sh bytes TAG"; bytes "$2" ;;
  check) check ;;
  *) die "usage: netns.sh up TAG N [A.B.C] | down TAG | bytes TAG | check" ;;
esac
