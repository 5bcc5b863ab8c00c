#!/usr/bin/env bash
# tests/slurm/start.sh - a real one-node Slurm cluster on this machine, for the test
# suite (tests/test_slurm.py) and for trying profiles/slurm by hand.
#
# Debian 12, as root, without systemd: installs the Debian packages if missing
# (munge, slurmctld, slurmd, slurm-client, slurmdbd, mariadb-server), writes a
# one-node configuration on loopback, starts munged, mariadbd (unix socket only),
# slurmdbd, slurmctld and slurmd, and waits until the node is idle. Idempotent: a
# second run starts only what is not running and restarts the Slurm daemons it
# started itself when the configuration it writes has changed. tests/slurm/stop.sh
# stops exactly the processes this script started (by pid).
#
# Accounting (slurmdbd + MariaDB) is not optional: snakemake-executor-plugin-slurm
# polls job states with sacct, and without accounting it hangs for good.
#
# The node mirrors the placeholders of profiles/slurm: partitions "cpu" (default)
# and "gpu", count-only fake GPUs (char devices like /dev/null, so CUDA_VISIBLE_DEVICES
# is set but no CUDA exists), and it advertises more memory than it has so the
# paper-scale mem_mb of profiles/default schedule unchanged. Memory is not enforced
# (no cgroups).
#
# Environment knobs (defaults in brackets):
#   SLURM_LOCAL_GPUS [2]            fake GPUs on the node (0: none)
#   SLURM_LOCAL_GPU_TYPE [fake]     their GRES type, i.e. what gpu_model may ask for
#   SLURM_LOCAL_PARTITIONS [cpu gpu]  partitions (all on the one node); the first is the default
#   SLURM_LOCAL_MEM_MB [512000]     memory the node advertises
#   SLURM_LOCAL_TASK_PLUGIN [task/affinity]  task/none where sched_setaffinity is forbidden
#   SLURM_LOCAL_TIMEOUT [60]        seconds to wait for each daemon and for the node
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/slurm/lib.sh
source "$HERE/lib.sh"

: "${SLURM_LOCAL_GPUS:=2}"
: "${SLURM_LOCAL_GPU_TYPE:=fake}"
: "${SLURM_LOCAL_PARTITIONS:=cpu gpu}"
: "${SLURM_LOCAL_MEM_MB:=512000}"
: "${SLURM_LOCAL_TASK_PLUGIN:=task/affinity}"
: "${SLURM_LOCAL_TIMEOUT:=60}"
CLUSTER=biasdrift-local
DB_PASS=biasdrift-local-only  # MariaDB listens on its unix socket only
declare -A PORT=([slurmdbd]=6819 [slurmctld]=6817 [slurmd]=6818)

die() {
    log "ERROR: $*"
    exit 1
}
# die_with_logs <message>: die, showing the ends of the daemons' logs
die_with_logs() {
    log "ERROR: $*"
    local f
    for f in "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log "$LOG_DIR"/slurmdbd.log "$LOG_DIR"/mariadb.err; do
        [ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

# ------------------------------------------------------------------ preconditions
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages, owns the munge key and runs slurmd); try: sudo $0"
command -v apt-get >/dev/null && command -v dpkg-query >/dev/null ||
    die "apt-get/dpkg not found: this script needs Debian 12 (bookworm) or a derivative"
[[ $SLURM_LOCAL_GPUS =~ ^[0-9]+$ ]] || die "SLURM_LOCAL_GPUS must be a count, got '$SLURM_LOCAL_GPUS'"
[[ $SLURM_LOCAL_GPU_TYPE =~ ^[A-Za-z0-9_.]+$ ]] || die "SLURM_LOCAL_GPU_TYPE must match [A-Za-z0-9_.]+, got '$SLURM_LOCAL_GPU_TYPE'"
[ -z "$SLURM_LOCAL_PARTITIONS" ] && die "SLURM_LOCAL_PARTITIONS is empty"
if [ -f "$SLURM_CONF" ] && ! grep -qxF "$MARKER" "$SLURM_CONF"; then
    die "$SLURM_CONF exists and was not written by this script: refusing to replace a real Slurm configuration"
fi
T0=$(date +%s.%N)

# ------------------------------------------------------------------ packages
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt-get; output in $LOG_DIR/apt.log)"
    mkdir -p "$LOG_DIR"
    # keep the packages' maintainer scripts from starting daemons through init scripts
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    install_packages() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$LOG_DIR/apt.log" 2>&1
    }
    ok=1
    install_packages || { apt-get update -q >>"$LOG_DIR/apt.log" 2>&1 && install_packages; } || ok=0
    [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$ok" = 1 ] || { tail -n 20 "$LOG_DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
    log "installed slurm $(dpkg-query -W -f='${Version}' slurmctld), munge $(dpkg-query -W -f='${Version}' munge)"
fi

# ------------------------------------------------------------------ configuration
NODE=$(hostname -s)
# e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=23000"
HW=$(slurmd -C | head -n 1)
TOPOLOGY=$(sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//' <<<"$HW")
GRES_NODE="" GRES_TYPES="" TRES=""
if [ "$SLURM_LOCAL_GPUS" -gt 0 ]; then
    GRES_NODE=" Gres=gpu:$SLURM_LOCAL_GPU_TYPE:$SLURM_LOCAL_GPUS"
    GRES_TYPES="GresTypes=gpu"
    TRES="AccountingStorageTRES=gres/gpu,gres/gpu:$SLURM_LOCAL_GPU_TYPE"
fi
PARTITION_LINES=$(
    default=YES
    for p in $SLURM_LOCAL_PARTITIONS; do
        echo "PartitionName=$p Nodes=$NODE Default=$default MaxTime=INFINITE State=UP"
        default=NO
    done
)

NEW_SLURM_CONF="$MARKER
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# no cgroups: works in containers and VMs without systemd (memory is not enforced)
ProctrackType=proctrack/linuxproc
TaskPlugin=$SLURM_LOCAL_TASK_PLUGIN
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# sacct needs accounting: the snakemake slurm executor polls job states with it
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=${PORT[slurmdbd]}
# sacct shows the executor's --comment (rule_<rule>_wildcards_<values>)
AccountingStoreFlags=job_comment
$TRES
$GRES_TYPES
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# the node advertises SLURM_LOCAL_MEM_MB although it has less
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldPort=${PORT[slurmctld]}
SlurmdPort=${PORT[slurmd]}
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
StateSaveLocation=$CTLD_SPOOL
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MinJobAge=300
InactiveLimit=0
# scancel and time limits: SIGTERM, then SIGKILL 5 s later
KillWait=5
Waittime=0
NodeName=$NODE NodeAddr=127.0.0.1 $TOPOLOGY RealMemory=$SLURM_LOCAL_MEM_MB$GRES_NODE State=UNKNOWN
$PARTITION_LINES"

NEW_GRES_CONF=""
if [ "$SLURM_LOCAL_GPUS" -gt 0 ]; then
    NEW_GRES_CONF="AutoDetect=off
Name=gpu Type=$SLURM_LOCAL_GPU_TYPE File=$SLURMD_SPOOL/fakegpu[0-$((SLURM_LOCAL_GPUS - 1))]"
fi

NEW_DBD_CONF="AuthType=auth/munge
DbdHost=localhost
DbdPort=${PORT[slurmdbd]}
SlurmUser=root
PidFile=${PIDFILE[slurmdbd]}
LogFile=$LOG_DIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db"

mkdir -p "$CONF_DIR" "$LOG_DIR" "$CTLD_SPOOL" "$SLURMD_SPOOL" "$STATE_DIR"
touch "$STARTED"
changed=0
# write_if_changed <file> <mode> <content>
write_if_changed() {
    if [ ! -f "$1" ] || [ "$(cat "$1")" != "$3" ]; then
        printf '%s\n' "$3" >"$1.new"
        chmod "$2" "$1.new"
        mv "$1.new" "$1"
        changed=1
        log "wrote $1"
    fi
}
write_if_changed "$SLURM_CONF" 644 "$NEW_SLURM_CONF"
write_if_changed "$CONF_DIR/slurmdbd.conf" 600 "$NEW_DBD_CONF"
write_if_changed "$CONF_DIR/cgroup.conf" 644 $'CgroupPlugin=autodetect\nIgnoreSystemd=yes'
if [ -n "$NEW_GRES_CONF" ]; then
    write_if_changed "$CONF_DIR/gres.conf" 644 "$NEW_GRES_CONF"
elif [ -f "$CONF_DIR/gres.conf" ]; then
    rm -f "$CONF_DIR/gres.conf"
    changed=1
fi
for ((i = 0; i < SLURM_LOCAL_GPUS; i++)); do
    [ -e "$SLURMD_SPOOL/fakegpu$i" ] || mknod "$SLURMD_SPOOL/fakegpu$i" c 1 3
done

if [ "$changed" = 1 ]; then
    for d in slurmd slurmctld slurmdbd; do
        if pid=$(running "$d") && ! ours "$d" >/dev/null; then
            die "$d (pid $pid) runs with another configuration and was not started by this script: stop it first"
        fi
        stop_ours "$d"
    done
    forget_dead
fi

# ------------------------------------------------------------------ starting
# port_in_use <port>: a TCP socket listens on it (IPv4 or IPv6)
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

port_taken() {
    echo "TCP port ${PORT[$1]} (for $1) is already taken by another process; see: ss -ltnp 'sport = :${PORT[$1]}'"
}

# launch <comm> <command...>: start a daemon unless it runs, record its pid as ours
launch() {
    local comm=$1 pid
    shift
    if pid=$(running "$comm"); then
        return 0
    fi
    if [ -n "${PORT[$comm]:-}" ] && port_in_use "${PORT[$comm]}"; then
        die "$(port_taken "$comm")"
    fi
    log "starting $comm"
    "$@"
    for _ in $(seq 1 $((SLURM_LOCAL_TIMEOUT * 4))); do
        if pid=$(running "$comm"); then
            echo "$comm $pid $(start_time "$pid")" >>"$STARTED"
            return 0
        fi
        sleep 0.25
    done
    die_with_logs "$comm did not start within ${SLURM_LOCAL_TIMEOUT}s"
}

# wait_until <comm> <what> <command...>: poll the command; fail fast if the daemon died
wait_until() {
    local comm=$1 what=$2 deadline=$(($(date +%s) + SLURM_LOCAL_TIMEOUT))
    shift 2
    until "$@" >/dev/null 2>&1; do
        running "$comm" >/dev/null || die_with_logs "$comm exited while waiting for $what"
        [ "$(date +%s)" -lt "$deadline" ] || die_with_logs "timed out after ${SLURM_LOCAL_TIMEOUT}s waiting for $what"
        sleep 0.25
    done
}

for d in slurmdbd slurmctld slurmd; do  # before anything starts
    running "$d" >/dev/null || ! port_in_use "${PORT[$d]}" || die "$(port_taken "$d")"
done

# munge: authentication between all Slurm daemons and commands
if [ ! -s /etc/munge/munge.key ]; then
    log "creating the munge key"
    mungekey --create --keyfile=/etc/munge/munge.key --force
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
launch munged runuser -u munge -- /usr/sbin/munged
wait_until munged "munge" bash -c 'munge -n | unmunge'

# MariaDB (no TCP port) for slurmdbd
install -d -o mysql -g mysql -m 0755 /run/mysqld
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$LOG_DIR/mariadb-install.log" 2>&1
launch mariadbd bash -c "setsid /usr/sbin/mariadbd --user=mysql --skip-networking --pid-file=${PIDFILE[mariadbd]} \
    --innodb-buffer-pool-size=64M --log-error=$LOG_DIR/mariadb.err </dev/null >/dev/null 2>&1 &"
wait_until mariadbd "mariadb" mariadb-admin ping
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

launch slurmdbd /usr/sbin/slurmdbd
wait_until slurmdbd "slurmdbd" sacctmgr -n show cluster
launch slurmctld /usr/sbin/slurmctld
wait_until slurmctld "slurmctld" bash -c 'scontrol ping | grep -q UP'
launch slurmd /usr/sbin/slurmd -N "$NODE"

node_ready() {
    case "$(sinfo -h -N -n "$NODE" -o '%T' | head -n 1)" in
        idle | mixed | allocated) return 0 ;;
        down* | drain* | inval* | fail*)
            scontrol update nodename="$NODE" state=resume >/dev/null 2>&1
            return 1
            ;;
        *) return 1 ;;
    esac
}
wait_until slurmd "node $NODE to become idle" node_ready
wait_until slurmdbd "cluster $CLUSTER in the accounting database" \
    bash -c "sacctmgr -n -P show cluster format=cluster | grep -qx '$CLUSTER'"
log "ready in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s: $(sinfo -h -o '%P %a %T %N %G' | tr '\n' ' ')"
