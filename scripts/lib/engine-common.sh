# shellcheck shell=bash
# Helpers shared by provision-engine.sh and stop-engine.sh (sourced, not executed).
# Both scripts MUST agree on where the pid file lives, hence this single definition.

# State dir: pid file + daemon log of the dockerd that provision-engine.sh started.
# Override with ENGINE_STATE_DIR. Root default is under /run (tmpfs, emptied at boot,
# so a pid file can never survive a reboot and name an unrelated process).
engine_state_dir() {
    if [[ -n "${ENGINE_STATE_DIR:-}" ]]; then
        printf '%s\n' "$ENGINE_STATE_DIR"
    elif [[ "$(id -u)" -eq 0 ]]; then
        printf '%s\n' /run/enlaight-engine
    else
        printf '%s\n' "${XDG_RUNTIME_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}}/enlaight-engine"
    fi
}

# Monotonic-enough wall clock in microseconds (locale independent).
now_us() {
    local t="${EPOCHREALTIME:-}"
    if [[ -n "$t" ]]; then
        printf '%s\n' "${t//[!0-9]/}"
    else
        printf '%s000000\n' "$(date +%s)"
    fi
}

# Format a duration given two now_us values as "12.3 s".
fmt_duration() {
    local ms=$((($2 - $1) / 1000))
    printf '%d.%d s' $((ms / 1000)) $(((ms % 1000) / 100))
}

# Field N (1-based, as in proc(5)) of /proc/PID/stat; handles a comm containing spaces.
proc_stat_field() {
    local pid="$1" n="$2" stat rest
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    rest="${stat##*) }"
    local -a f
    read -r -a f <<<"$rest"
    # f[0] is field 3 (state).
    printf '%s\n' "${f[n - 3]}"
}

# True if PID exists and is not a zombie.
proc_alive() {
    local state
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    state="$(proc_stat_field "$1" 3)" || return 1
    [[ "$state" != Z && "$state" != X ]]
}

# True if PID is a live dockerd and, when EXPECTED_START is given, was started at that
# kernel start time (guards against pid reuse).
is_our_dockerd() {
    local pid="$1" expected_start="${2:-}" comm start
    proc_alive "$pid" || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == dockerd ]] || return 1
    if [[ -n "$expected_start" ]]; then
        start="$(proc_stat_field "$pid" 22)" || return 1
        [[ "$start" == "$expected_start" ]] || return 1
    fi
}
