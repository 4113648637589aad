#!/usr/bin/env bash
# Stop the test cluster of start-cluster.sh and remove its state. Usage: stop-cluster.sh [STATE_DIR]
#
# Cancels its jobs, stops slurmd, slurmctld and munged by the PIDs in their pid files (only
# processes whose command matches), removes our symlinks from /etc/slurm and the state dir.
# Safe to run twice, or on a cluster that never fully started. WZ_SLURM_KEEP=1 keeps the
# state dir (logs) for debugging.
set -uo pipefail

STATE="$(realpath -m "${1:-/tmp/weightzoo-slurm}")"
CONF_DIR=/etc/slurm

log() { echo "stop-cluster: $*" >&2; }

# The PID in a pid file, if that process is alive and is the named daemon.
daemon_pid() {
  local file="$1" name="$2" pid
  [ -f "$file" ] || return 1
  pid="$(tr -dc 0-9 <"$file")"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  echo "$pid"
}

stop_daemon() {
  local file="$1" name="$2" pid i
  pid="$(daemon_pid "$file" "$name")" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    [ -d "/proc/$pid" ] || { log "stopped $name ($pid)"; return 0; }
    sleep 0.2
  done
  log "$name ($pid) ignored SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

if [ -f "$STATE/slurm.conf" ] && daemon_pid "$STATE/slurmctld.pid" slurmctld >/dev/null; then
  export SLURM_CONF="$STATE/slurm.conf"
  jobs="$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING -o %i 2>/dev/null)"
  if [ -n "$jobs" ]; then
    log "cancelling jobs: $(echo $jobs)"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 50); do  # let slurmd end the job steps before it goes
      [ -z "$(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
fi

stop_daemon "$STATE/slurmd.pid" slurmd
stop_daemon "$STATE/slurmctld.pid" slurmctld
stop_daemon "$STATE/munge/munged.pid" munged

for f in slurm.conf gres.conf cgroup.conf; do
  link="$CONF_DIR/$f"
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$STATE/$f" ]; then
    rm -f "$link"
  fi
done

if [ "${WZ_SLURM_KEEP:-0}" = 1 ]; then
  log "kept $STATE"
elif [ -f "$STATE/.weightzoo-test-cluster" ]; then
  rm -rf "$STATE"  # only a folder that start-cluster.sh made
fi
exit 0
