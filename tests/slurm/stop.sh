#!/usr/bin/env bash
# tests/slurm/stop.sh - stop the daemons tests/slurm/start.sh started, by their pids
# (recorded when it started them); daemons it did not start are left alone.
# Jobs still queued or running are cancelled first, so no job processes are left
# behind. Idempotent: with nothing running it does nothing.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/slurm/lib.sh
source "$HERE/lib.sh"

[ "$(id -u)" -eq 0 ] || { log "ERROR: must run as root"; exit 1; }
[ -s "$STARTED" ] || { log "nothing to stop"; exit 0; }

if ours slurmctld >/dev/null && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    log "cancelling the remaining jobs: $(squeue -h -o %i | tr '\n' ' ')"
    squeue -h -o %i | xargs -r scancel >/dev/null 2>&1
    for _ in $(seq 1 120); do
        [ -z "$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null)" ] && break
        sleep 0.25
    done
fi
# the reverse of the start order; daemons of one line stop in parallel (~2 s each)
stop_ours slurmd & stop_ours slurmctld & wait
stop_ours slurmdbd & stop_ours mariadbd & wait
stop_ours munged
forget_dead
log "stopped"
