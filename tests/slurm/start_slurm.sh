#!/usr/bin/env bash
# A real single-node SLURM cluster (munged, slurmctld, slurmd from Debian's packages) for tests/test_slurm.py.
# The tests never run this script: they use a cluster that is already up, and skip, saying how to start one,
# where none is. CI (.ci/run) installs and starts it, runs the tests, and stops it.
#
#   start_slurm.sh install  install Debian's packages (slurm-wlm slurmctld slurmd slurm-client munge; root + apt)
#   start_slurm.sh start    write slurm.conf, start the daemons, wait until `sinfo` shows the node idle (the packages
#                           must be installed: `install` first)
#   start_slurm.sh stop     stop the daemons this script started (and only those), in reverse order
#   start_slurm.sh status   sinfo + which daemons run
#
# Exit codes of `install` and `start`: 0 done; 2 it cannot be done here (the reason is the last line on stderr);
# 1 anything else went wrong.
#
# No systemd: the daemons are started by hand. No cgroups: proctrack/linuxproc, task/none. No accounting
# database: `sacct` does not work, so Snakemake's SLURM plugin must poll with `--slurm-status-command squeue`
# (see ../../../shared/notes/slurm-single-node.md); MinJobAge=300 keeps finished jobs visible to squeue.
#
# A cluster that is already answering (`sinfo` lists an idle/mixed node) is used as it is and never stopped.
# A slurm.conf this script did not write is never overwritten.
set -uo pipefail

STATE=/run/layerlens-slurm.started        # the daemons this script started, one name per line
CONF=/etc/slurm/slurm.conf
MARK="# written by layerlens tests/slurm/start_slurm.sh"
TIMEOUT=${SLURM_START_TIMEOUT:-60}
PKGS="slurm-wlm slurmctld slurmd slurm-client munge"

cant() { echo "start_slurm.sh: cannot start SLURM here: $*" >&2; exit 2; }
log() { echo "start_slurm.sh: $*" >&2; }

cluster_up() { sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

missing_binaries() {
    local missing=""
    for bin in slurmctld slurmd sinfo sbatch squeue munged; do
        command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing="$missing $bin"
    done
    echo "$missing"
}

install_packages() {
    local missing
    missing=$(missing_binaries)
    [ -z "$missing" ] && { log "SLURM is installed"; return 0; }
    [ "$(id -u)" = 0 ] || cant "not root, and SLURM is not installed (missing:$missing)"
    command -v apt-get >/dev/null 2>&1 || cant "no apt-get, and SLURM is not installed (missing:$missing)"
    log "installing $PKGS (missing:$missing)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS; } >/tmp/layerlens-slurm-apt.log 2>&1 \
        || cant "apt-get install $PKGS failed (see /tmp/layerlens-slurm-apt.log)"
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    # 90% of the memory available now (free plus reclaimable cache): other processes on this machine keep theirs
    mem=$(free -m | awk '/^Mem:/ {print int($7 * 0.9)}')
    [ "$mem" -gt 1000 ] || cant "only ${mem} MB of free memory"
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        cant "$CONF exists and was not written by this script; not overwriting a site configuration"
    fi
    mkdir -p /etc/slurm
    cat >"$CONF" <<EOF
$MARK
ClusterName=layerlens
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups in containers / gVisor
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/lib/slurm/slurmd
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem would otherwise take the whole node
DefMemPerCPU=256
JobAcctGatherType=jobacct_gather/none
# no accounting database: sacct fails, squeue is the status command
AccountingStorageType=accounting_storage/none
# one line per finished job (JobId, JobName, JobState, ...): what the test checks the jobs against
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
InactiveLimit=0
KillWait=30
# finished jobs stay visible to squeue for 5 min (the plugin's squeue polling needs that)
MinJobAge=300
SlurmctldTimeout=120
SlurmdTimeout=300
Waittime=0
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    log "wrote $CONF (node ${host}: ${cpus} CPUs, ${mem} MB)"
}

started() { echo "$1" >>"$STATE"; }

start() {
    if cluster_up; then
        log "a SLURM cluster is already up; using it"
        sinfo >&2
        return 0
    fi
    # none of our daemons alive (e.g. the machine was restarted): forget what an earlier start recorded
    pid_alive /run/munge/munged.pid || pid_alive /run/slurmctld.pid || pid_alive /run/slurmd.pid || rm -f "$STATE"
    local missing
    missing=$(missing_binaries)
    [ -z "$missing" ] || cant "SLURM is not installed (missing:$missing); run \`$0 install\` first (root, apt)"
    [ "$(id -u)" = 0 ] || cant "not root (the daemons need root)"
    getent passwd slurm >/dev/null || cant "no 'slurm' user (the Debian packages create it)"
    getent passwd munge >/dev/null || cant "no 'munge' user (the Debian packages create it)"
    getent hosts "$(hostname -s)" >/dev/null || cant "the hostname $(hostname -s) does not resolve"
    write_conf

    install -d -o slurm -g slurm /var/log/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
    install -d -o munge -g munge -m 755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    if ! pid_alive /run/munge/munged.pid; then
        runuser -u munge -- /usr/sbin/munged || cant "munged does not start"
        started munged
    fi
    munge -n | unmunge >/dev/null 2>&1 || cant "munge does not work (munge -n | unmunge)"
    if ! pid_alive /run/slurmctld.pid; then
        /usr/sbin/slurmctld || cant "slurmctld does not start (see /var/log/slurm/slurmctld.log)"
        started slurmctld
    fi
    if ! pid_alive /run/slurmd.pid; then
        /usr/sbin/slurmd -N "$(hostname -s)" || cant "slurmd does not start (see /var/log/slurm/slurmd.log)"
        started slurmd
    fi
    local waited=0
    until cluster_up; do
        if [ "$waited" -ge "$((TIMEOUT * 10))" ]; then
            log "sinfo: $(sinfo 2>&1 | tail -3)"
            cant "the node is not idle after ${TIMEOUT}s (see /var/log/slurm/)"
        fi
        # a node that came up DOWN (stale state) is resumed once
        if [ "$waited" = 20 ]; then scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null; fi
        sleep 0.1
        waited=$((waited + 1))
    done
    sinfo >&2
}

stop_one() {  # name pidfile
    local pid
    [ -s "$2" ] || return 0
    pid=$(cat "$2")
    # a stale pid file must not make us kill whatever process has that pid now
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || { log "$1 is not running"; return 0; }
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$2"; log "stopped $1"; return 0; }; sleep 0.1; done
    log "$1 ($pid) did not exit within 10 s"
}

stop() {
    [ -s "$STATE" ] || { log "nothing started by this script is running"; return 0; }
    grep -qx slurmd "$STATE" && stop_one slurmd /run/slurmd.pid
    grep -qx slurmctld "$STATE" && stop_one slurmctld /run/slurmctld.pid
    grep -qx munged "$STATE" && stop_one munged /run/munge/munged.pid
    rm -f "$STATE"
}

status() {
    for d in munge/munged slurmctld slurmd; do
        if pid_alive "/run/$d.pid"; then echo "${d#*/}: running ($(cat "/run/$d.pid"))"; else echo "${d#*/}: not running"; fi
    done
    sinfo 2>&1
    cluster_up
}

case "${1:-}" in
    install) install_packages ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 1 ;;
esac
