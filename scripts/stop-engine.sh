#!/usr/bin/env bash
# stop-engine.sh - stop the dockerd that scripts/provision-engine.sh started, and nothing else.
#
# It acts only if $STATE_DIR/dockerd.pid (written by provision-engine.sh) exists and names a
# live `dockerd` with the recorded start time (so a reused pid is never signalled). Then it sends
# SIGTERM, waits up to ENGINE_STOP_TIMEOUT seconds (default 30) for it to exit and removes the pid
# file. A daemon started any other way (systemd, by hand) is never touched.
#
# Usage: scripts/stop-engine.sh [-h|--help]
#
# Environment:
#   ENGINE_STATE_DIR      same as for provision-engine.sh (default: root /run/enlaight-engine,
#                         else $XDG_RUNTIME_DIR/enlaight-engine or ~/.local/state/enlaight-engine)
#   ENGINE_STOP_TIMEOUT   seconds to wait after SIGTERM (default 30)
#
# Exit status: 0 if the daemon stopped or there was nothing to stop; 1 if it is still running
# after the timeout (the pid file is then kept so that a rerun can try again).
set -o errexit -o pipefail -o nounset

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/engine-common.sh
. "$SCRIPT_DIR/lib/engine-common.sh"

log() { printf '[stop-engine] %s\n' "$*"; }
err() { printf '[stop-engine] ERROR: %s\n' "$*" >&2; }

case "${1:-}" in
"") ;;
-h | --help)
    sed -n '2,/^set -o errexit/{/^set -o errexit/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit 0
    ;;
*)
    err "unknown argument: $1 (see --help)"
    exit 2
    ;;
esac

stop_timeout="${ENGINE_STOP_TIMEOUT:-30}"
if ! [[ "$stop_timeout" =~ ^[0-9]+$ ]]; then
    err "ENGINE_STOP_TIMEOUT must be a whole number of seconds, got '$stop_timeout'"
    exit 2
fi
state_dir="$(engine_state_dir)"
pid_file="$state_dir/dockerd.pid"
start_file="$state_dir/dockerd.starttime"

if [[ ! -f "$pid_file" ]]; then
    log "nothing to stop: no pid file $pid_file, so provision-engine.sh started no daemon (any running daemon is left alone)"
    exit 0
fi

pid="$(head -n1 "$pid_file" 2>/dev/null || true)"
expected_start="$(head -n1 "$start_file" 2>/dev/null || true)"
# The recorded start time is mandatory: without it we cannot tell our dockerd from another one.
if [[ -z "$expected_start" ]] || ! is_our_dockerd "$pid" "$expected_start"; then
    log "nothing to stop: pid file $pid_file names pid '$pid', which is not a live dockerd started by provision-engine.sh; removing the stale pid file"
    rm -f -- "$pid_file" "$start_file"
    exit 0
fi

t0="$(now_us)"
log "sending SIGTERM to dockerd pid $pid (started by provision-engine.sh); waiting up to ${stop_timeout}s"
if ! kill -TERM "$pid"; then
    err "could not signal pid $pid (run as the user who started it, usually root)"
    exit 1
fi
deadline=$(($(date +%s) + stop_timeout))
while proc_alive "$pid"; do
    if (($(date +%s) >= deadline)); then
        err "dockerd pid $pid still running after ${stop_timeout}s (ENGINE_STOP_TIMEOUT); pid file $pid_file kept - rerun, or 'kill -KILL $pid' if it is stuck"
        exit 1
    fi
    sleep 0.5
done
rm -f -- "$pid_file" "$start_file"
log "stopped dockerd pid $pid in $(fmt_duration "$t0" "$(now_us)"); removed $pid_file"
