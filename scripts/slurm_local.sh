#!/usr/bin/env bash
# A single-machine Slurm cluster on 127.0.0.1 for trying and testing `hydra/launcher=slurm`:
# one munged, one slurmctld and two slurmd ("nodes" n1 and n2, 2 CPUs each, on two ports of
# this host), so multi-node jobs, job arrays and requeues run for real.
#
#   scripts/slurm_local.sh start    # stop leftovers, set up a fresh state dir, start, check
#   scripts/slurm_local.sh stop     # kill exactly the daemons `start` wrote PID files for
#   scripts/slurm_local.sh status   # sinfo/squeue of the local cluster
#
# Needs root (slurmd starts jobs as their user; munged runs as the `munge` user) and the
# Debian packages `slurmctld slurmd slurm-client munge`. Nothing outside the state dir is
# touched: no /etc/slurm, no system munged, no systemd units.
#
# Environment (optional):
#   SLURM_LOCAL_DIR        state dir (default: ${TMPDIR:-/tmp}/gan-lightning-slurm)
#   SLURM_LOCAL_PORT_BASE  slurmctld's port; the two slurmd use the next two (default 16817)
#   SLURM_LOCAL_TIMEOUT    seconds to wait for the cluster to accept jobs (default 60)
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-${TMPDIR:-/tmp}/gan-lightning-slurm}
PORT=${SLURM_LOCAL_PORT_BASE:-16817}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
NODES=(n1 n2)
CONF=$STATE/slurm.conf
MUNGE_DIR=$STATE/munge
SOCKET=$MUNGE_DIR/munge.socket.2

say() { echo "slurm_local: $*"; }
die() {
    echo "slurm_local: ERROR: $*" >&2
    exit 1
}

# Whether PID $1 is one of our daemons: every one of them was started with a path into $STATE
# on its command line, so a stale PID file (a reboot, a reused PID) never kills anything else.
ours() {
    [[ $1 =~ ^[0-9]+$ && -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$STATE/"
}

# Kill the daemons whose PIDs are in the given PID files (those still running), together, and
# wait for them to exit; SIGKILL after 10 s.
kill_pidfiles() {
    local pidfile pid pids=() names=()
    for pidfile in "$@"; do
        [[ -f $pidfile ]] || continue
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if ours "$pid"; then
            kill "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$(basename "$pidfile" .pid) (pid $pid)")
        fi
        rm -f "$pidfile"
    done
    ((${#pids[@]})) || return 0
    local alive
    for _ in $(seq 100); do
        alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    done
    say "stopped ${names[*]}"
}

# Cancel every job of this cluster and wait for their processes to end: a job step's
# slurmstepd (and its tasks) outlive slurmd by design, so killing the daemons alone would
# leave training processes behind.
cancel_jobs() {
    local pid
    pid=$(cat "$STATE/run/slurmctld.pid" 2>/dev/null || true)
    ours "$pid" || return 0
    SLURM_CONF=$CONF timeout 10 scancel --partition=local 2>/dev/null || true
    for _ in $(seq 30); do
        [[ -z $(SLURM_CONF=$CONF timeout 5 squeue -h -t running,completing,configuring 2>/dev/null) ]] && return 0
        sleep 1
    done
    say "jobs still running after 30 s: $(SLURM_CONF=$CONF squeue -h 2>/dev/null | tr '\n' ';')"
}

stop() {
    cancel_jobs
    local node slurmd=()
    for node in "${NODES[@]}"; do
        slurmd+=("$STATE/run/slurmd-$node.pid")
    done
    kill_pidfiles "${slurmd[@]}"
    kill_pidfiles "$STATE/run/slurmctld.pid" "$MUNGE_DIR/munged.pid"
}

check_prerequisites() {
    [[ $(id -u) -eq 0 ]] || die "run as root (slurmd launches jobs as their user, munged runs as 'munge')."
    local tool missing=()
    for tool in munged mungekey slurmctld slurmd sinfo srun sbatch scontrol; do
        command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "missing ${missing[*]}; install them with: apt-get install -y slurmctld slurmd slurm-client munge"
    id munge >/dev/null 2>&1 || die "no 'munge' user; the munge package creates it (apt-get install -y munge)."
}

write_conf() {
    local host cpus=2 i=0 node
    host=$(hostname -s)
    cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a throwaway single-machine cluster (state in $STATE).
ClusterName=ganlocal
# slurmctld only starts on the host named here; it listens on 127.0.0.1 only via NodeAddr.
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
# Our own munged socket, not the system one.
AuthType=auth/munge
AuthInfo=socket=$SOCKET,cred_expire=10
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
# No cgroups in containers/CI: track processes by parent PID, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd (it needs a database): sacct does not work, squeue/scontrol do.
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
# Both slurmd share one machine: the CPUs below are a declaration, not the hardware.
SlurmdParameters=config_overrides
ReturnToService=2
# Tests are short: kill a cancelled/requeued step 5 s after its SIGTERM, and let the
# scheduler and the requeue path react within seconds instead of a minute.
KillWait=5
MinJobAge=600
MailProg=/bin/true
SchedulerParameters=sched_interval=2
EOF
    for node in "${NODES[@]}"; do
        i=$((i + 1))
        echo "NodeName=$node NodeHostname=$host NodeAddr=127.0.0.1 Port=$((PORT + i)) CPUs=$cpus RealMemory=1024 State=UNKNOWN" >>"$CONF"
    done
    echo "PartitionName=local Nodes=$(
        IFS=,
        echo "${NODES[*]}"
    ) Default=YES MaxTime=INFINITE State=UP" >>"$CONF"
}

start_munge() {
    mkdir -p "$MUNGE_DIR"
    mungekey --create --keyfile="$MUNGE_DIR/munge.key" --force >/dev/null
    chown -R munge:munge "$MUNGE_DIR"
    # munged insists: the key readable by it alone, the socket's dir searchable by all.
    chmod 0755 "$MUNGE_DIR"
    chmod 0400 "$MUNGE_DIR/munge.key"
    runuser -u munge -- munged --socket="$SOCKET" --key-file="$MUNGE_DIR/munge.key" \
        --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" ||
        die "munged did not start; its log: $(cat "$MUNGE_DIR/munged.log" 2>/dev/null)"
}

show_logs() {
    local f
    for f in "$MUNGE_DIR/munged.log" "$STATE"/log/*.log; do
        [[ -f $f ]] || continue
        echo "----- $f (last 20 lines)" >&2
        tail -n 20 "$f" >&2
    done
}

wait_until_ready() {
    local deadline=$((SECONDS + TIMEOUT)) idle
    while ((SECONDS < deadline)); do
        idle=$(SLURM_CONF=$CONF sinfo -h -N -o '%N %T' 2>/dev/null | grep -c ' idle$' || true)
        if ((idle == ${#NODES[@]})); then
            # A real job step on both nodes: auth, credentials, slurmd ports and task launch.
            if SLURM_CONF=$CONF timeout 30 srun -N "${#NODES[@]}" -n "${#NODES[@]}" hostname >"$STATE/log/srun_check.out" 2>&1; then
                return 0
            fi
        fi
        sleep 1
    done
    echo "slurm_local: sinfo says:" >&2
    SLURM_CONF=$CONF sinfo -N -l >&2 || true
    cat "$STATE/log/srun_check.out" >&2 2>/dev/null || true
    show_logs
    return 1
}

start() {
    check_prerequisites
    stop
    rm -rf "$STATE"
    mkdir -p "$STATE"/{ctld,spool,run,log}
    chmod 0755 "$STATE"
    write_conf
    start_munge
    slurmctld -f "$CONF" || {
        show_logs
        die "slurmctld did not start"
    }
    local node
    for node in "${NODES[@]}"; do
        mkdir -p "$STATE/spool/$node"
        slurmd -f "$CONF" -N "$node" || {
            show_logs
            die "slurmd $node did not start"
        }
    done
    if ! wait_until_ready; then
        stop
        die "the cluster did not run a job within ${TIMEOUT}s (logs above, state in $STATE)"
    fi
    say "cluster up: nodes ${NODES[*]} (2 CPUs each) in partition 'local'"
    say "state dir:  $STATE (logs in $STATE/log)"
    say "slurm.conf: $CONF"
    say "use it with (MASTER_ADDR: the node names n1, n2 resolve nowhere, and Lightning's"
    say "SLURMEnvironment would take the first one as the DDP rendezvous host):"
    echo "export SLURM_CONF=$CONF"
    echo "export MASTER_ADDR=127.0.0.1"
}

status() {
    [[ -f $CONF ]] || die "no cluster state in $STATE; run: $0 start"
    SLURM_CONF=$CONF sinfo -N -l
    SLURM_CONF=$CONF squeue
}

case "${1:-}" in
start) start ;;
stop)
    stop
    say "stopped (state kept in $STATE for its logs)"
    ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
