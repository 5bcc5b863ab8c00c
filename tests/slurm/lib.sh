# Shared by start.sh and stop.sh (sourced, not run): paths, logging, and the
# bookkeeping of the daemons this project started (so stop.sh ends only those).
# shellcheck shell=bash

CONF_DIR=/etc/slurm
SLURM_CONF=$CONF_DIR/slurm.conf
MARKER="# written by biasdrift tests/slurm/start.sh"
LOG_DIR=/var/log/slurm
CTLD_SPOOL=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
# one line per daemon start.sh started: "<comm> <pid> <start time in clock ticks>"
STATE_DIR=/run/biasdrift-slurm
STARTED=$STATE_DIR/started

# daemon (= /proc/<pid>/comm) -> its pid file
declare -A PIDFILE=(
    [munged]=/run/munge/munged.pid
    [mariadbd]=/run/mysqld/mysqld.pid
    [slurmdbd]=/run/slurmdbd.pid
    [slurmctld]=/run/slurmctld.pid
    [slurmd]=/run/slurmd.pid
)

log() { printf '[slurm-local %(%T)T] %s\n' -1 "$*" >&2; }

# start_time <pid>: field 22 of /proc/<pid>/stat (guards against a reused pid)
start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }  # drop "pid (comm) ", comm may contain spaces
    # shellcheck disable=SC2086
    set -- $stat
    echo "${20}"
}

# running <comm>: print the pid of the live daemon named in its pid file
running() {
    local pid
    pid=$(cat "${PIDFILE[$1]}" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
    echo "$pid"
}

# ours <comm>: print the pid if start.sh started this very process
ours() {
    local comm pid ticks
    [ -f "$STARTED" ] || return 1
    while read -r comm pid ticks; do
        if [ "$comm" = "$1" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] &&
            [ "$(start_time "$pid")" = "$ticks" ]; then
            echo "$pid"
            return 0
        fi
    done <"$STARTED"
    return 1
}

# stop_ours <comm>: SIGTERM the daemon start.sh started, SIGKILL after 20 s
stop_ours() {
    local pid
    pid=$(ours "$1") || return 0
    log "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 80); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    log "$1 (pid $pid) ignored SIGTERM for 20 s: SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
}

# forget_dead: drop the entries of processes that are gone from the started list
forget_dead() {
    local comm pid ticks
    [ -f "$STARTED" ] || return 0
    while read -r comm pid ticks; do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && [ "$(start_time "$pid")" = "$ticks" ] &&
            echo "$comm $pid $ticks"
    done <"$STARTED" >"$STARTED.new"
    mv "$STARTED.new" "$STARTED"
}
