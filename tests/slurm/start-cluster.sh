#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster for the tests: a private munged, slurmctld
# and slurmd, all state under one folder. Usage: start-cluster.sh [STATE_DIR]
#
# The node declares GPUs (GresTypes=gpu, Gres=gpu:N) backed by character devices made with
# mknod (/dev/null's numbers), so sbatch accepts --gpus on a CPU-only machine. There is no
# accounting database: `sacct` is disabled, and a large MinJobAge keeps finished jobs in
# `squeue` (use `--slurm-status-command squeue`).
#
# Needs root (SlurmUser=root). Installs slurm-wlm and munge with apt-get when missing.
# Prints the state directory on stdout. Exits 2 when this machine cannot host the cluster
# (not root, SLURM missing and not installable, a foreign /etc/slurm/slurm.conf, mknod
# refused), 1 when the cluster failed to come up.
# A running cluster of the same state directory is stopped first, and the folder is wiped:
# nothing leaks from one start to the next. stop-cluster.sh STATE_DIR undoes everything.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="$(realpath -m "${1:-/tmp/weightzoo-slurm}")"
PARTITION="${WZ_SLURM_PARTITION:-weightzoo}"
GPUS="${WZ_SLURM_GPUS:-2}"
CTLD_PORT="${WZ_SLURM_CTLD_PORT:-26817}"  # far from SLURM's defaults (6817/6818)
SLURMD_PORT="${WZ_SLURM_SLURMD_PORT:-26818}"
CONF_DIR=/etc/slurm  # srun inside a job drops SLURM_CONF (the jobstep executor clears
                     # SLURM_* variables), so the config must also be found at the default path

log() { echo "start-cluster: $*" >&2; }
die() { log "$*"; exit 1; }
cannot() { log "$*"; exit 2; }

if [ "$(id -u)" != 0 ]; then
  log "needs root (SlurmUser=root, config in $CONF_DIR)"
  exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  log "installing slurm-wlm and munge with apt-get"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq slurm-wlm munge; } >"/tmp/weightzoo-slurm-apt.log" 2>&1; then
    log "apt-get failed (see /tmp/weightzoo-slurm-apt.log)"
    exit 2
  fi
fi

# Our config files in /etc/slurm are symlinks into a state dir; anything else is not ours.
for f in slurm.conf gres.conf cgroup.conf; do
  if [ -e "$CONF_DIR/$f" ] && [ ! -L "$CONF_DIR/$f" ]; then
    cannot "$CONF_DIR/$f exists and is not ours: refusing to replace a real SLURM config"
  fi
done

# The state dir is wiped below: it must be new, empty, or one of ours.
if [ -d "$STATE" ] && [ -n "$(ls -A "$STATE")" ] \
  && ! [ -f "$STATE/.weightzoo-test-cluster" ]; then
  cannot "$STATE is not empty and holds no test cluster: choose another state directory"
fi

# A fresh start: stop whatever ran from this state dir (or from the one /etc/slurm points to).
"$HERE/stop-cluster.sh" "$STATE" >/dev/null 2>&1 || true
if [ -L "$CONF_DIR/slurm.conf" ]; then
  "$HERE/stop-cluster.sh" "$(dirname "$(readlink "$CONF_DIR/slurm.conf")")" >/dev/null 2>&1 || true
fi
rm -rf "$STATE"
mkdir -p "$STATE"/{munge,ctld,spool,log,dev}
touch "$STATE/.weightzoo-test-cluster"  # marks a folder that the scripts may wipe
# From here on, a failed start stops what it started (daemons, /etc/slurm links).
trap 'rc=$?; if [ $rc -ne 0 ]; then WZ_SLURM_KEEP=1 "$HERE/stop-cluster.sh" "$STATE" >&2 || true; fi' EXIT
chmod 700 "$STATE" "$STATE/munge"

NODE="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
REAL_MB=$((MEM_MB > 2048 ? MEM_MB - 1024 : MEM_MB))  # a bit below the machine's

# --- munge: a private daemon, key and socket in the state dir ---------------------------
dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE/munge/munge.key"
SOCKET="$STATE/munge/munge.socket"
munged --force --key-file="$STATE/munge/munge.key" --socket="$SOCKET" \
  --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/log/munged.log" \
  --seed-file="$STATE/munge/munged.seed" \
  || die "munged did not start: $(tail -n 3 "$STATE/log/munged.log" 2>/dev/null)"
munge -n -S "$SOCKET" | unmunge -S "$SOCKET" >/dev/null || die "munge round trip failed"

# --- GPUs: character devices with /dev/null's numbers -----------------------------------
GPU_FILES=""
for i in $(seq 0 $((GPUS - 1))); do
  mknod "$STATE/dev/gpu$i" c 1 3 || cannot "mknod refused: cannot declare GPUs"
done
if [ "$GPUS" -gt 0 ]; then GPU_FILES="$STATE/dev/gpu[0-$((GPUS - 1))]"; fi

# --- configuration -------------------------------------------------------------------------
cat >"$STATE/slurm.conf" <<EOF
# weightzoo test cluster (tests/slurm/start-cluster.sh): one node, no accounting, no cgroups
ClusterName=weightzoo
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
ReturnToService=2
# finished jobs stay visible in squeue for an hour (no sacct here)
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
if [ -n "$GPU_FILES" ]; then
  echo "NodeName=$NODE Name=gpu File=$GPU_FILES" >"$STATE/gres.conf"
else
  : >"$STATE/gres.conf"
fi
cat >"$STATE/cgroup.conf" <<EOF
# no cgroups: proctrack/linuxproc and task/none never load the cgroup plugin
IgnoreSystemd=yes
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
for f in slurm.conf gres.conf cgroup.conf; do
  ln -sfn "$STATE/$f" "$CONF_DIR/$f"
done
export SLURM_CONF="$STATE/slurm.conf"

# --- daemons -------------------------------------------------------------------------------
slurmctld -f "$SLURM_CONF" -c || die "slurmctld did not start: $(tail -n 5 "$STATE/log/slurmctld.log")"
slurmd -f "$SLURM_CONF" || die "slurmd did not start: $(tail -n 5 "$STATE/log/slurmd.log")"

deadline=$((SECONDS + 60))
until [ "$(sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null)" = idle ]; do
  if [ $SECONDS -ge $deadline ]; then
    log "node $NODE never became idle: $(sinfo -N 2>&1 | tail -2)"
    tail -n 5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    exit 1
  fi
  sleep 0.5
done
log "node $NODE idle: $CPUS CPUs, ${REAL_MB} MB, gpu:$GPUS, partition $PARTITION"
echo "$STATE"
