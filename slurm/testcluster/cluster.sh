#!/usr/bin/env bash
# A one-node SLURM on this machine for the tests: `cluster.sh start` installs it (apt, idempotent),
# writes /etc/slurm/slurm.conf and starts munged, slurmctld and slurmd; `stop` ends exactly those
# daemons (by their pid files); `status` prints sinfo. Needs root (Debian: slurmctld slurmd slurm-client munge).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${IRIS_SLURM_STATE:-/var/tmp/iris-testcluster}
CONF=/etc/slurm/slurm.conf
MARK="# iris-bench test cluster"
MUNGE_PID=/run/munge/munged.pid

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
    && command -v munged >/dev/null && return
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
  if [[ -e $CONF ]] && ! head -1 "$CONF" | grep -qF "$MARK"; then
    echo "cluster.sh: $CONF exists and is not ours; refusing to overwrite it" >&2
    exit 1
  fi
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/slurmd"
  sed -e "s|@HOST@|$(hostname -s)|g" -e "s|@CPUS@|$(nproc)|g" -e "s|@STATE@|$STATE|g" \
    "$HERE/slurm.conf" >"$CONF"
}

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install
  write_conf
  if ! running "$MUNGE_PID"; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
  fi
  # -c: a fresh controller state, so jobs of an earlier session never come back.
  running "$STATE/slurmctld.pid" || slurmctld -c
  running "$STATE/slurmd.pid" || slurmd
  for _ in $(seq 60); do
    state=$(sinfo -h -o %T 2>/dev/null || true)
    if [[ $state == idle* || $state == mixed* || $state == allocated* ]]; then
      echo "slurm test cluster up: $(sinfo -h -o '%P %D %T %C')"
      return
    fi
    if [[ $state == down* || $state == drain* ]]; then
      scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
    fi
    sleep 1
  done
  echo "cluster.sh: the node did not become idle; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
  exit 1
}

stop_daemon() {
  local pidfile=$1
  running "$pidfile" || return 0
  local pid
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  stop_daemon "$STATE/slurmd.pid"
  stop_daemon "$STATE/slurmctld.pid"
  stop_daemon "$MUNGE_PID"
  echo "slurm test cluster stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
