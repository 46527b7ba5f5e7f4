#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (Debian's slurm-wlm + munge): slurmctld and slurmd here,
# one partition `cpu`, for the `slurm` tests and for trying `dora grid` without a real cluster.
#
#   bash scripts/local_slurm.sh start    # install the packages if missing, write the config, start munged/slurm
#   bash scripts/local_slurm.sh status   # exit 0 when the node is up (sinfo), 1 otherwise
#   bash scripts/local_slurm.sh stop     # cancel jobs, stop the daemons, unlink /etc/slurm (the state folder stays)
#   bash scripts/local_slurm.sh config   # only write the config and link it (what start does before the daemons)
#
# Works as root in a container without systemd or cgroups: proctrack/linuxproc, task/none, no accounting.
# The node declares count-only `gpu` GRES (no device files, nothing is bound) so that Dora's layout of one
# task per GPU (`--gres=gpu:N --ntasks-per-node=N`) gives N CPU tasks: XPs run with device=cpu.
# State, logs and the config live in LOCAL_SLURM_DIR (default <repo>/.local_slurm, git-ignored);
# /etc/slurm/slurm.conf is a link to that config so that sbatch/srun/squeue find it without SLURM_CONF; a link
# that another checkout's run of this script left behind (its cluster stopped, its folder maybe deleted) is
# replaced, one to a running cluster or a real SLURM install's file is refused, and stop removes our links.
# start and stop are idempotent; start fails with one message (and the log's tail) when the node is not up.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${LOCAL_SLURM_DIR:-$REPO/.local_slurm}"
CONF="$DIR/slurm.conf"
ETC="${LOCAL_SLURM_ETC:-/etc/slurm}"  # where sbatch/srun look (a test points it elsewhere)
HEADER="# Written by scripts/local_slurm.sh"
HOST="$(hostname -s)"
NODE_GPUS="${LOCAL_SLURM_GPUS:-2}"   # task slots per XP (1-5); the team file local_slurm.yaml asks for 2
PARTITION=cpu

die() { echo "local_slurm: error: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "slurm-wlm/munge are not installed and installing them needs root"
    echo "local_slurm: installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >"$DIR/log/apt.log" 2>&1 \
        || { apt-get update -q >>"$DIR/log/apt.log" 2>&1 && \
             apt-get install -y -q slurm-wlm munge >>"$DIR/log/apt.log" 2>&1; } \
        || die "apt-get install slurm-wlm munge failed, see $DIR/log/apt.log"
}

write_config() {
    local cpus mem
    cpus="$(nproc)"
    mem="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
    cat >"$CONF.new" <<EOF
$HEADER: a one-node cluster, controller and compute node on $HOST.
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No systemd/cgroups in a container: track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The declared node is taken as given (count-only GRES, CPUs as nproc says).
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
# seconds between SIGTERM and SIGKILL on requeue/cancel: submitit ignores SIGTERM, so a job trains on for this long
KillWait=2
MinJobAge=300
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$NODE_GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=120 State=UP OverSubscribe=FORCE:4
EOF
    # slurmd drops file-less GPUs: each slot names a harmless character device (nothing is bound: task/none).
    local files; files="$(printf '/dev/null,/dev/zero,/dev/full,/dev/random,/dev/urandom' | cut -d, -f1-"$NODE_GPUS")"
    cat >"$DIR/gres.conf" <<EOF
NodeName=$HOST Name=gpu File=$files
EOF
    mv "$CONF.new" "$CONF"
    claim_etc
    ln -sfn "$CONF" "$ETC/slurm.conf"
    ln -sfn "$DIR/gres.conf" "$ETC/gres.conf"  # slurmd reads gres.conf beside slurm.conf
}

# Refuse $ETC/slurm.conf unless it is absent, ours, or a link this script wrote for a cluster that is not running.
claim_etc() {
    local link="$ETC/slurm.conf" target other
    mkdir -p "$ETC"
    [ -e "$link" ] || [ -L "$link" ] || return 0
    target="$(readlink -f "$link" || readlink "$link")"  # -f fails when the whole folder is gone
    [ "$target" = "$(readlink -f "$CONF")" ] && return 0
    [ -L "$link" ] || die "$link exists and is not ours: a real SLURM install? (not touching it)"
    if [ -e "$target" ] && [ "$(head -c ${#HEADER} "$target")" != "$HEADER" ]; then
        die "$link links to $target, which scripts/local_slurm.sh did not write: a real SLURM install? (not touching it)"
    fi
    other="$(dirname "$target")"
    if running "$other/slurmctld.pid"; then
        die "$link belongs to the running local cluster of $other: stop it first" \
            "(LOCAL_SLURM_DIR=$other bash scripts/local_slurm.sh stop, from its checkout)"
    fi
    echo "local_slurm: replacing $link, left by the stopped cluster of $other"
}

# Remove the links of $ETC that point into our folder (nothing else).
unlink_etc() {
    local name
    for name in slurm.conf gres.conf; do
        if [ -L "$ETC/$name" ] && [ "$(readlink -f "$ETC/$name")" = "$(readlink -f "$DIR/$name")" ]; then
            rm -f "$ETC/$name"
        fi
    done
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_up() {
    local state
    state="$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -1)"
    case "$state" in *\*) return 1 ;; idle*|mixed*|allocated*|completing*) return 0 ;; *) return 1 ;; esac
}

start_munge() {
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if ! munge -n >/dev/null 2>&1; then
        [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create --force >/dev/null 2>&1 \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
        # as the munge user when we can (munged refuses root without --force)
        if command -v runuser >/dev/null; then
            runuser -u munge -- /usr/sbin/munged || /usr/sbin/munged --force
        else
            /usr/sbin/munged --force
        fi
    fi
    for _ in $(seq 20); do munge -n >/dev/null 2>&1 && return; sleep 0.5; done
    die "munged did not start (see /var/log/munge/munged.log)"
}

start() {
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    install_packages
    if running "$DIR/slurmctld.pid" && running "$DIR/slurmd.pid" && node_up; then
        echo "local_slurm: already running (partition $PARTITION on $HOST)"; return
    fi
    write_config
    start_munge
    running "$DIR/slurmctld.pid" || /usr/sbin/slurmctld -f "$CONF" \
        || die "slurmctld failed to start: $(tail -5 "$DIR/log/slurmctld.log" 2>/dev/null)"
    running "$DIR/slurmd.pid" || /usr/sbin/slurmd -f "$CONF" \
        || die "slurmd failed to start: $(tail -5 "$DIR/log/slurmd.log" 2>/dev/null)"
    for _ in $(seq 40); do
        if node_up; then echo "local_slurm: up (partition $PARTITION on $HOST, $(nproc) CPUs, gpu:$NODE_GPUS slots)"; return; fi
        # a node left DOWN/DRAIN by a previous unclean stop
        scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
        sleep 0.5
    done
    die "node $HOST did not come up: sinfo says '$(sinfo -h -o '%T %E' 2>&1 | head -1)';" \
        "slurmctld log: $(tail -3 "$DIR/log/slurmctld.log" 2>/dev/null); slurmd log: $(tail -3 "$DIR/log/slurmd.log" 2>/dev/null)"
}

stop() {
    if running "$DIR/slurmctld.pid"; then scancel --full --quiet --user=root 2>/dev/null || true; fi
    for daemon in slurmd slurmctld; do
        if running "$DIR/$daemon.pid"; then
            local pid; pid="$(cat "$DIR/$daemon.pid")"
            kill "$pid"
            for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
    done
    unlink_etc
    echo "local_slurm: stopped"
}

status() {
    if running "$DIR/slurmctld.pid" && running "$DIR/slurmd.pid" && node_up; then
        sinfo; return 0
    fi
    echo "local_slurm: not running"; return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    config) mkdir -p "$DIR/log"; write_config; echo "local_slurm: config written, $ETC/slurm.conf -> $CONF" ;;
    *) echo "usage: $0 start|stop|status|config" >&2; exit 2 ;;
esac
