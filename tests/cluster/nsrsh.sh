#!/usr/bin/env bash
# An ssh stand-in for launchers that start remote daemons with `ssh HOST CMD`
# (Open MPI: mpirun --mca plm_rsh_agent nsrsh.sh): runs CMD, through sh like
# sshd would, in the network namespace (from netns.sh) that owns address HOST.
# HOST may be a name: it is resolved first (getent, so /etc/hosts works).
# NSRSH_NETNS_PREFIX, when set, limits the search to namespaces named so
# (e.g. cl<TAG>-), for emulated hosts whose addresses another set may share.
set -euo pipefail
# Options an rsh agent may get before the host (ssh-style -x, -o K=V) are ignored.
while [[ "${1:-}" == -* ]]; do
  case "$1" in -o|-l|-p|-i) shift 2 ;; *) shift ;; esac
done
host=${1:?usage: nsrsh.sh HOST CMD...}
shift
if ! [[ "$host" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  addr=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 {print $1}')
  [ -n "$addr" ] || { echo "nsrsh.sh: cannot resolve $host" >&2; exit 255; }
  host=$addr
fi
for ns in $(ip netns list | awk '{print $1}'); do
  [[ "$ns" == "${NSRSH_NETNS_PREFIX:-}"* ]] || continue
  if ip -n "$ns" -4 -o addr show 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | grep -qxF "$host"; then
    # nsenter rather than `ip netns exec`: keep the host's /sys as it is.
    exec nsenter --net="/run/netns/$ns" sh -c "$*"
  fi
done
echo "nsrsh.sh: no network namespace has address $host" >&2
exit 255
