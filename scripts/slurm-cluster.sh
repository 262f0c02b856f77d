#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for samrl's Slurm tests and for trying
# `samrl sweep --launcher slurm` by hand. Needs root and Debian/Ubuntu packages.
#
#   sudo scripts/slurm-cluster.sh          # install (once), configure, start; wait until idle
#   sudo scripts/slurm-cluster.sh status   # sinfo
#   sudo scripts/slurm-cluster.sh stop     # stop slurmd, slurmctld, munged
#
# Idempotent: running `start` on a running cluster only checks that it answers.
# The cluster: one node (this host, all its CPUs), one partition `debug` (the default), no
# accounting (no slurmdbd: `sacct` does not work, as on many small clusters), no cgroups
# (proctrack/linuxproc, so it runs inside containers), time limits enforced, jobs requeueable,
# and finished jobs kept visible to squeue for 5 minutes (MinJobAge).
set -euo pipefail

MODE="${1:-start}"
CONF_DIR=/etc/slurm
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { echo "slurm-cluster: $*"; }
die() {
    echo "slurm-cluster: $*" >&2
    exit 1
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "no apt-get here; install ${PACKAGES[*]} yourself"
    say "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d in containers refuses to start services; this script starts them itself.
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

write_config() {
    local host cpus mem
    host="$(hostname -s)"
    cpus="$(nproc)"
    # RealMemory a little under the total, so slurmd never reports less than configured.
    mem="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
    mkdir -p "$CONF_DIR" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$RUN_DIR"
    cat >"$CONF_DIR/slurm.conf.new" <<EOF
# Written by samrl's scripts/slurm-cluster.sh: one node, one partition, no accounting.
ClusterName=samrl
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=10
SlurmdTimeout=30
# No cgroups: works in containers without a writable cgroup hierarchy.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
# Jobs stay visible to squeue for 5 minutes after they end (no sacct without accounting).
MinJobAge=300
KillWait=30
# Scheduler reacts in about a second, so tiny test jobs do not wait.
SchedulerParameters=sched_interval=1,bf_interval=1
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if [[ -f "$CONF_DIR/slurm.conf" ]] && cmp -s "$CONF_DIR/slurm.conf" "$CONF_DIR/slurm.conf.new"; then
        rm "$CONF_DIR/slurm.conf.new"
        return 1 # unchanged
    fi
    mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
    return 0
}

start_munge() {
    if running munged; then
        return
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged
    else
        /usr/sbin/munged --force
    fi
}

wait_idle() {
    local host deadline state
    host="$(hostname -s)"
    deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        state="$(sinfo --noheader -n "$host" -o %T 2>/dev/null | head -1 || true)"
        case "$state" in
        idle | mixed | allocated) # allocated/mixed: an earlier session's jobs still run
            say "ready: node $host is $state ($(nproc) CPUs, partition debug)"
            return 0
            ;;
        down* | drain* | fail*)
            scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
            ;;
        esac
        sleep 1
    done
    die "node $host not idle after 60 s (state '${state:-none}'); see $LOG_DIR/slurmctld.log and slurmd.log"
}

start() {
    [[ "$(id -u)" == 0 ]] || die "must run as root (it installs packages and starts daemons)"
    install_packages
    local changed=0
    write_config && changed=1
    start_munge
    if ((changed)) && (running slurmctld || running slurmd); then
        say "configuration changed; restarting"
        stop
        start_munge
    fi
    running slurmctld || /usr/sbin/slurmctld
    running slurmd || /usr/sbin/slurmd
    wait_idle
}

pid_of() {
    case "$1" in
    slurmd) cat "$RUN_DIR/slurmd.pid" 2>/dev/null ;;
    slurmctld) cat "$RUN_DIR/slurmctld.pid" 2>/dev/null ;;
    munged) cat /run/munge/munged.pid 2>/dev/null ;;
    esac
}

stop() {
    # Only the daemons this script started, found by their pid files.
    local name pid
    for name in slurmd slurmctld munged; do
        pid="$(pid_of "$name" || true)"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 40); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.25
            done
        fi
    done
    say "stopped"
}

case "$MODE" in
start) start ;;
stop) stop ;;
status) sinfo ;;
*) die "usage: $0 [start|stop|status]" ;;
esac
