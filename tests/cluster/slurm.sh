#!/usr/bin/env bash
# A private 3-node Slurm cluster on this machine, for the cluster tests.
#
#   slurm.sh up DIR [--netns TAG]
#       Writes DIR/slurm.conf (nodes n1..n3, partition "test", auth/none,
#       private ports, state, spool, pid and log files under DIR), starts
#       slurmctld and `slurmd -N n1|n2|n3`, and waits until sinfo shows 3 idle
#       nodes. With --netns TAG (namespaces from `netns.sh up TAG 3`), slurmd nK
#       runs inside namespace cl<TAG>-<K-1> with that namespace's address, and
#       slurmctld runs inside cl<TAG>-0; clients must then run there too.
#       Without --netns every daemon listens on 127.0.0.1, each on its own port.
#       Writes DIR/client: a command prefix for clients (sinfo, srun, sbatch,
#       scontrol), e.g. "env SLURM_CONF=DIR/slurm.conf nsenter --net=/run/netns/clX-0".
#   slurm.sh down DIR
#       Kills the daemons it started (pid files), their job steps and tasks
#       (every process whose environment has SLURM_CONF=DIR/slurm.conf), and
#       removes DIR. Idempotent.
#   slurm.sh check
#       Exit 77 when the Slurm daemons or clients are missing or not root.
set -euo pipefail

die() { echo "slurm.sh: $*" >&2; exit 1; }

# Processes (not this script nor its ancestors) whose environment holds $1.
pids_with_env() {
  local needle=$1 self=$BASHPID p anc=" " q
  q=$self
  while [ -n "$q" ] && [ "$q" != 0 ] && [ "$q" != 1 ]; do
    anc+="$q "
    q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null || true)
  done
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ "$anc" == *" $p "* ]] && continue
    if { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qxF "$needle"; then echo "$p"; fi
  done
}

kill_dir() {  # everything this cluster runs, daemons first
  local dir=$1 f pid pids
  unset SLURM_CONF  # so that the helpers this runs do not match
  for f in "$dir"/slurmctld.pid "$dir"/slurmd.*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    pids=$(pids_with_env "SLURM_CONF=$dir/slurm.conf")
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
  echo "slurm.sh: processes left: $(pids_with_env "SLURM_CONF=$dir/slurm.conf" | tr '\n' ' ')" >&2
}

port_free() {  # port_free NETNS_PREFIX PORT
  local out
  out=$($1 ss -Hltn "sport = :$2" 2>/dev/null) || return 1
  [ -z "$out" ]
}

pick_ports() {  # pick_ports COUNT PREFIX... : COUNT distinct free ports
  local count=$1 got=() p tries=0
  shift
  while [ "${#got[@]}" -lt "$count" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 1000 ] || die "no free ports"
    p=$((21000 + RANDOM % 9000))
    [[ " ${got[*]:-} " == *" $p "* ]] && continue
    local ok=1 pre
    for pre in "$@"; do port_free "$pre" "$p" || { ok=0; break; }; done
    [ "$ok" = 1 ] && got+=("$p")
  done
  echo "${got[@]}"
}

up() {
  local dir=$1 tag=${2:-}
  [ ! -e "$dir/slurm.conf" ] || die "$dir already holds a cluster (slurm.sh down $dir first)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  trap 'rc=$?; [ "$rc" = 0 ] || { echo "slurm.sh: up failed; logs:" >&2; tail -n 20 "$dir"/*.log >&2 2>/dev/null || true; kill_dir "$dir"; }' EXIT
  mkdir -p "$dir/state" "$dir/spool/n1" "$dir/spool/n2" "$dir/spool/n3"
  local addr=() pre=() k
  for k in 0 1 2; do
    if [ -n "$tag" ]; then
      local ns="cl${tag}-${k}"
      ip netns list | awk '{print $1}' | grep -qx "$ns" || die "no namespace $ns (run netns.sh up $tag 3 first)"
      addr[k]=$(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
      [ -n "${addr[k]}" ] || die "no address in $ns"
      # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup
      # file system slurmd insists on.
      pre[k]="nsenter --net=/run/netns/$ns"
    else
      addr[k]=127.0.0.1
      pre[k]="env"
    fi
  done
  local ports
  read -r -a ports <<<"$(pick_ports 4 "${pre[@]}")"
  local host
  host=$(hostname -s)
  cat >"$dir/slurm.conf" <<EOF
# Written by tests/cluster/slurm.sh: a private test cluster, nothing shared.
ClusterName=catliptest
SlurmctldHost=${host}(${addr[0]})
SlurmctldPort=${ports[0]}
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
InactiveLimit=0
KillWait=2
MinJobAge=5
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=n1 NodeAddr=${addr[0]} Port=${ports[1]} CPUs=1 State=UNKNOWN
NodeName=n2 NodeAddr=${addr[1]} Port=${ports[2]} CPUs=1 State=UNKNOWN
NodeName=n3 NodeAddr=${addr[2]} Port=${ports[3]} CPUs=1 State=UNKNOWN
PartitionName=test Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP
EOF
  echo "env SLURM_CONF=$dir/slurm.conf ${tag:+nsenter --net=/run/netns/cl${tag}-0}" >"$dir/client"
  export SLURM_CONF=$dir/slurm.conf
  ${pre[0]} slurmctld -c -i >>"$dir/start.log" 2>&1 || die "slurmctld did not start"
  for k in 0 1 2; do
    ${pre[k]} slurmd -N "n$((k + 1))" >>"$dir/start.log" 2>&1 || die "slurmd n$((k + 1)) did not start"
  done
  local idle=""
  for _ in $(seq 300); do
    idle=$(${pre[0]} sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle$' || true)
    [ "$idle" = 3 ] && break
    sleep 0.1
  done
  [ "$idle" = 3 ] || { ${pre[0]} sinfo -N >&2 || true; die "nodes not idle within 30 s"; }
  echo "$dir/slurm.conf"
}

down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  kill_dir "$dir"
  rm -rf "$dir"
}

check() {
  [ "$(id -u)" = 0 ] || { echo "slurm.sh: not root" >&2; exit 77; }
  local b
  for b in slurmctld slurmd srun sbatch sinfo scontrol scancel; do
    command -v "$b" >/dev/null || { echo "slurm.sh: no '$b' (apt-get install slurmctld slurmd slurm-client)" >&2; exit 77; }
  done
  local plugdir
  for plugdir in /usr/lib/x86_64-linux-gnu/slurm-wlm /usr/lib/aarch64-linux-gnu/slurm-wlm /usr/lib64/slurm /usr/lib/slurm; do
    [ -e "$plugdir/auth_none.so" ] && exit 0
  done
  echo "slurm.sh: this Slurm has no auth/none plugin" >&2
  exit 77
}

case "${1:-}" in
  up)
    [ $# = 2 ] || { [ $# = 4 ] && [ "$3" = --netns ]; } || die "usage: slurm.sh up DIR [--netns TAG]"
    up "$2" "${4:-}"
    ;;
  down) [ $# = 2 ] || die "usage: slurm.sh down DIR"; down "$2" ;;
  check) check ;;
  *) die "usage: slurm.sh up DIR [--netns TAG] | down DIR | check" ;;
esac
