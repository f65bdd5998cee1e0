#!/usr/bin/env bash
# A private one-node Slurm cluster (slurmctld + slurmd + munged) for testing `slua sweep --slurm`:
# everything lives under one state directory, no systemd, nothing in /etc touched.
#
#   scripts/slurm-local.sh install     install the Debian packages if missing (root or sudo)
#   scripts/slurm-local.sh up DIR      start the cluster in DIR; prints `export SLURM_CONF=...`
#   scripts/slurm-local.sh down DIR    cancel every job, wait for an empty queue, stop the daemons
#
# Environment: SLUA_SLURM_PORT (first port to try, default 16817; two consecutive free ports
# are used). Client commands need SLURM_CONF=DIR/slurm.conf in their environment.
set -euo pipefail

packages=(slurmctld slurmd slurm-client munge)

die() { echo "slurm-local: $*" >&2; exit 1; }

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root to install ${missing[*]}"
    sudo="sudo -n"
  fi
  echo "slurm-local: installing ${missing[*]}" >&2
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
}

# A PID that is alive and not a zombie (PID 1 may reap late, so kill -0 is not enough).
alive() {
  local pid=$1
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"
}

# No socket of any state on the port (a TIME_WAIT one also makes slurmctld's bind fail).
port_free() {
  local hex
  hex=$(printf ':%04X' "$1")
  ! awk -v p="$hex\$" 'toupper($2) ~ p { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pick_ports() {
  local p=${SLUA_SLURM_PORT:-16817}
  for _ in $(seq 1 200); do
    if port_free "$p" && port_free $((p + 1)); then echo "$p"; return 0; fi
    p=$((p + 2))
  done
  die "no two free consecutive ports from ${SLUA_SLURM_PORT:-16817}"
}

pid_of() { [ -s "$1" ] && cat "$1" || true; }

up() {
  local B=$1
  for cmd in slurmctld slurmd munged sinfo; do
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || die "$cmd not installed (scripts/slurm-local.sh install)"
  done
  export PATH="$PATH:/usr/sbin"
  mkdir -p "$B"
  B=$(cd "$B" && pwd)
  mkdir -p "$B/munge" "$B/state" "$B/spool" "$B/log"
  chmod 755 "$B" "$B/munge"   # munged wants every directory above its socket world-searchable
  if [ ! -s "$B/munge/munge.key" ]; then
    head -c 1024 /dev/urandom > "$B/munge/munge.key"
    chmod 400 "$B/munge/munge.key"
  fi
  munged --socket="$B/munge/munge.socket" --key-file="$B/munge/munge.key" \
    --pid-file="$B/munge/munged.pid" --log-file="$B/log/munged.log" --seed-file="$B/munge/seed" \
    || die "munged did not start (see $B/log/munged.log)"

  local node port cpus mem
  node=$(hostname -s)
  port=$(pick_ports)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  cat > "$B/slurm.conf" <<EOF
ClusterName=slualocal
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$B/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$B/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
MailProg=/bin/true
MinJobAge=600
StateSaveLocation=$B/state
SlurmdSpoolDir=$B/spool
SlurmctldPidFile=$B/slurmctld.pid
SlurmdPidFile=$B/slurmd.pid
SlurmctldLogFile=$B/log/slurmctld.log
SlurmdLogFile=$B/log/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  export SLURM_CONF="$B/slurm.conf"
  slurmctld || die "slurmctld did not start (see $B/log/slurmctld.log)"
  slurmd -N "$node" || die "slurmd did not start (see $B/log/slurmd.log)"
  local state=""
  for _ in $(seq 1 100); do
    sleep 0.1
    for d in slurmctld slurmd; do
      alive "$(pid_of "$B/$d.pid")" || { down "$B" >/dev/null 2>&1 || true; die "$d died (see $B/log/$d.log)"; }
    done
    state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
    [ "$state" = "idle" ] && break
  done
  if [ "$state" != "idle" ]; then
    down "$B" >/dev/null 2>&1 || true
    die "node $node is '${state:-unknown}', not idle, after 10 s (see $B/log)"
  fi
  echo "export SLURM_CONF=$B/slurm.conf"
}

stop_pid() {
  local file=$1 pid
  pid=$(pid_of "$file")
  alive "$pid" || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$pid" || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

down() {
  local B
  B=$(cd "$1" && pwd)
  export PATH="$PATH:/usr/sbin" SLURM_CONF="$B/slurm.conf"
  if [ -f "$SLURM_CONF" ] && alive "$(pid_of "$B/slurmctld.pid")"; then
    scancel --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 1 100); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_pid "$B/slurmd.pid"
  stop_pid "$B/slurmctld.pid"
  stop_pid "$B/munge/munged.pid"
  # Job steps outlive slurmd; nothing started under this directory may stay behind.
  for p in $(pgrep -f "slurmstepd" 2>/dev/null || true); do
    grep -qs "$B" "/proc/$p/cmdline" "/proc/$p/environ" && kill -9 "$p" 2>/dev/null || true
  done
  return 0
}

case "${1:-}" in
  install) install_packages ;;
  up) [ $# -eq 2 ] || die "usage: $0 up DIR"; up "$2" ;;
  down) [ $# -eq 2 ] || die "usage: $0 down DIR"; down "$2" ;;
  *) echo "usage: $0 install | up DIR | down DIR" >&2; exit 2 ;;
esac
