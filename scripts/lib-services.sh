# shellcheck shell=bash
# Helpers for running throwaway PostgreSQL and Redis servers (used by
# scripts/test.sh). Source this file from a bash script that runs with
# `set -euo pipefail`; every function is prefixed svc_ and every variable SVC_.
#
# Typical use:
#   svc_init_workdir            # SVC_WORK=<fresh temp dir>
#   trap svc_cleanup EXIT
#   svc_ensure_packages         # apt-get install what is missing (Chromium too)
#   svc_start_postgres          # SVC_PG_PORT, SVC_PG_URL
#   svc_start_redis             # SVC_REDIS_PORT, SVC_REDIS_URL
#
# The servers listen on free ports on 127.0.0.1 only, keep all their files in
# SVC_WORK, and never touch the machine's own PostgreSQL or Redis.

SVC_WORK=""           # temp dir holding everything; removed by svc_cleanup
SVC_PG_BIN=""         # dir with initdb, pg_ctl, postgres
SVC_PG_USER=""        # non-root user that runs postgres when we are root
SVC_PG_DATA=""
SVC_PG_PORT=""
SVC_PG_URL=""
SVC_REDIS_SERVER=""   # path to redis-server
SVC_REDIS_CLI=""      # path to redis-cli, empty if not installed
SVC_REDIS_PIDFILE=""
SVC_REDIS_PORT=""
SVC_REDIS_URL=""
SVC_APT_UPDATED=""
SVC_CHROMIUM=""       # path to Debian's Chromium (the browser tests)

svc_log() { printf '==> %s\n' "$*" >&2; }
svc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# svc_init_workdir creates SVC_WORK. It is traversable by other users so that
# an unprivileged postgres user can reach its own subdirectory.
svc_init_workdir() {
    SVC_WORK=$(mktemp -d "${TMPDIR:-/tmp}/duikou-test.XXXXXX")
    chmod 0755 "$SVC_WORK"
}

# --- locating and installing binaries ----------------------------------------

# svc_find_pg_bin sets SVC_PG_BIN to a directory holding initdb, pg_ctl and
# postgres: $DUIKOU_TEST_PG_BIN if set, else the newest
# /usr/lib/postgresql/*/bin, else the directory initdb in PATH resolves to.
svc_find_pg_bin() {
    local d p
    local -a cands=()
    [[ -n ${DUIKOU_TEST_PG_BIN:-} ]] && cands+=("$DUIKOU_TEST_PG_BIN")
    if compgen -G '/usr/lib/postgresql/*/bin' >/dev/null; then
        while IFS= read -r d; do cands+=("$d"); done \
            < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
    fi
    if p=$(command -v initdb 2>/dev/null); then
        cands+=("$(dirname "$(readlink -f "$p")")")
    fi
    for d in "${cands[@]}"; do
        if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
            SVC_PG_BIN=$d
            return 0
        fi
    done
    return 1
}

# svc_find_redis sets SVC_REDIS_SERVER (and SVC_REDIS_CLI when available).
svc_find_redis() {
    local p
    if [[ -n ${DUIKOU_TEST_REDIS_SERVER:-} && -x ${DUIKOU_TEST_REDIS_SERVER} ]]; then
        p=$DUIKOU_TEST_REDIS_SERVER
    elif p=$(command -v redis-server 2>/dev/null); then
        :
    elif [[ -x /usr/bin/redis-server ]]; then
        p=/usr/bin/redis-server
    else
        return 1
    fi
    SVC_REDIS_SERVER=$p
    SVC_REDIS_CLI=$(command -v redis-cli 2>/dev/null || true)
    if [[ -z $SVC_REDIS_CLI && -x $(dirname "$p")/redis-cli ]]; then
        SVC_REDIS_CLI=$(dirname "$p")/redis-cli
    fi
    return 0
}

# svc_have_cc reports whether the C toolchain needed by `go test -race`
# (cgo) is present.
svc_have_cc() {
    local cc
    cc=$(go env CC 2>/dev/null || true)
    cc=${cc%% *}
    command -v "${cc:-gcc}" >/dev/null 2>&1 && [[ -e /usr/include/stdio.h ]]
}

# svc_apt_install PKG... runs apt-get update (once per run) and installs PKGs.
svc_apt_install() {
    local -a sudo=()
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            svc_die "need to install $* but not root and no sudo; install them and rerun"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        svc_die "need to install $* but apt-get is not available; install them and rerun"
    if [[ -z $SVC_APT_UPDATED ]]; then
        svc_log "apt-get update"
        "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update
        SVC_APT_UPDATED=1
    fi
    svc_log "apt-get install $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y "$@"
}

# svc_find_chromium sets SVC_CHROMIUM to Debian's Chromium, if installed.
svc_find_chromium() {
    SVC_CHROMIUM=""
    [[ -x /usr/bin/chromium ]] || return 1
    SVC_CHROMIUM=/usr/bin/chromium
}

# svc_have_cjk_fonts: the UI is in Chinese; without a CJK font the browser
# tests' screenshots show empty boxes.
svc_have_cjk_fonts() {
    command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh-cn family 2>/dev/null | grep -q .
}

# svc_ensure_packages installs PostgreSQL, Redis, (for -race) a C compiler
# and (for the browser tests) Chromium with a CJK font from Debian packages
# when they are missing, then locates them.
svc_ensure_packages() {
    local -a pkgs=()
    svc_find_pg_bin || pkgs+=(postgresql)
    svc_find_redis || pkgs+=(redis-server)
    svc_have_cc || pkgs+=(gcc libc6-dev)
    svc_find_chromium || pkgs+=(chromium)
    svc_have_cjk_fonts || pkgs+=(fonts-noto-cjk)
    if ((${#pkgs[@]})); then
        svc_log "missing: ${pkgs[*]}"
        svc_apt_install "${pkgs[@]}"
    fi
    svc_find_pg_bin || svc_die "no initdb/pg_ctl/postgres found (looked in /usr/lib/postgresql/*/bin and PATH)"
    svc_find_redis || svc_die "no redis-server found"
    svc_have_cc || svc_die "no C compiler found (go test -race needs gcc)"
    svc_find_chromium || svc_die "no Chromium found at /usr/bin/chromium (the browser tests need it)"
    svc_log "postgres binaries: $SVC_PG_BIN ($("$SVC_PG_BIN/postgres" --version))"
    svc_log "redis-server: $SVC_REDIS_SERVER ($("$SVC_REDIS_SERVER" --version | cut -d' ' -f1-3))"
    svc_log "chromium: $SVC_CHROMIUM ($("$SVC_CHROMIUM" --version 2>/dev/null || echo "version unknown"))"
}

# --- ports and processes -----------------------------------------------------

svc_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# svc_free_port prints a TCP port on 127.0.0.1 that nobody listens on.
svc_free_port() {
    local p i
    if command -v python3 >/dev/null 2>&1; then
        p=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) || p=""
        if [[ $p =~ ^[0-9]+$ ]] && ! svc_port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    fi
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        if ! svc_port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# svc_alive PID: is PID a running (non-zombie) process?
svc_alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# svc_wait_gone PID SECONDS: wait for PID to exit.
svc_wait_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        svc_alive "$1" || return 0
        sleep 0.1
    done
    return 1
}

# svc_sweep kills any process whose working directory is inside SVC_WORK:
# servers that tests started themselves (their data dirs live under TMPDIR,
# which points into SVC_WORK) and that a crashed or timed-out test left behind.
svc_sweep() {
    local d pid cwd cmd
    [[ -n $SVC_WORK ]] || return 0
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $pid == "$$" ]] && continue
        cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
        case $cwd in
        "$SVC_WORK" | "$SVC_WORK"/*)
            cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null | cut -c1-100) || true
            if kill -KILL "$pid" 2>/dev/null; then
                svc_log "killed leftover process $pid: $cmd"
            fi
            ;;
        esac
    done
}

# --- PostgreSQL ----------------------------------------------------------------

# svc_pg_run CMD...: run CMD as the postgres user (from inside SVC_WORK, so
# the user never needs access to the caller's working directory).
svc_pg_run() {
    if [[ -z $SVC_PG_USER ]]; then
        (cd "$SVC_WORK" && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd "$SVC_WORK" && runuser -u "$SVC_PG_USER" -- "$@")
    else
        (cd "$SVC_WORK" && su -s /bin/bash "$SVC_PG_USER" -c "$(printf '%q ' "$@")")
    fi
}

# svc_ensure_pg_user: PostgreSQL refuses to run as root, so as root we run it
# as a system user (default duikoutest, created if absent).
svc_ensure_pg_user() {
    SVC_PG_USER=""
    [[ $EUID -eq 0 ]] || return 0
    local u=${DUIKOU_TEST_PG_USER:-duikoutest}
    if ! id -u "$u" >/dev/null 2>&1; then
        svc_log "creating system user $u to run postgres"
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$u" 2>/dev/null ||
            id -u "$u" >/dev/null 2>&1 || svc_die "could not create user $u"
    fi
    SVC_PG_USER=$u
}

svc_start_postgres() {
    local base=$SVC_WORK/pg port attempt
    svc_ensure_pg_user
    mkdir -p "$base/sock"
    [[ -z $SVC_PG_USER ]] || chown -R "$SVC_PG_USER:" "$base"
    SVC_PG_DATA=$base/data

    svc_log "initdb $SVC_PG_DATA${SVC_PG_USER:+ (as $SVC_PG_USER)}"
    if ! svc_pg_run "$SVC_PG_BIN/initdb" -D "$SVC_PG_DATA" --auth=trust -U postgres \
        --encoding=UTF8 --no-locale --no-sync >"$base/initdb.log" 2>&1; then
        cat "$base/initdb.log" >&2
        svc_die "initdb failed"
    fi
    # Settings for a disposable test server: no durability, many connections
    # (test packages run in parallel, each with its own pools).
    cat >>"$SVC_PG_DATA/postgresql.conf" <<EOF

# --- added by scripts/lib-services.sh (throwaway test server) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$base/sock'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

    for attempt in 1 2 3 4 5; do
        port=$(svc_free_port) || svc_die "no free TCP port found"
        [[ $port != "$SVC_REDIS_PORT" ]] || continue
        svc_log "starting postgres on 127.0.0.1:$port"
        if svc_pg_run "$SVC_PG_BIN/pg_ctl" -D "$SVC_PG_DATA" -l "$base/postgres.log" \
            -o "-p $port" -w -t 60 start >/dev/null; then
            SVC_PG_PORT=$port
            break
        fi
        svc_log "postgres did not start (attempt $attempt); log:"
        tail -n 20 "$base/postgres.log" >&2 || true
        svc_stop_postgres
    done
    [[ -n $SVC_PG_PORT ]] || svc_die "could not start postgres"

    local isready=$SVC_PG_BIN/pg_isready i
    [[ -x $isready ]] || isready=$(command -v pg_isready || true)
    if [[ -n $isready ]]; then
        for ((i = 0; i < 60; i++)); do
            "$isready" -q -h 127.0.0.1 -p "$SVC_PG_PORT" -U postgres -d postgres -t 2 && break
            sleep 0.5
        done
        ((i < 60)) || svc_die "postgres on port $SVC_PG_PORT is not accepting connections"
    fi
    SVC_PG_URL="postgres://postgres@127.0.0.1:$SVC_PG_PORT/postgres?sslmode=disable"
    svc_log "postgres ready: $SVC_PG_URL"
}

svc_pg_pid() {
    local pid
    [[ -n $SVC_PG_DATA && -f $SVC_PG_DATA/postmaster.pid ]] || return 1
    read -r pid <"$SVC_PG_DATA/postmaster.pid" || return 1
    [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

svc_stop_postgres() {
    local pid
    pid=$(svc_pg_pid) || return 0
    svc_alive "$pid" || return 0
    svc_log "stopping postgres (pid $pid)"
    svc_pg_run "$SVC_PG_BIN/pg_ctl" -D "$SVC_PG_DATA" -m fast -w -t 20 stop >/dev/null 2>&1 || true
    if svc_alive "$pid"; then
        kill -QUIT "$pid" 2>/dev/null || true # immediate shutdown
        svc_wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
    fi
}

# --- Redis ---------------------------------------------------------------------

# svc_redis_ping PORT: does a Redis server answer PING on 127.0.0.1:PORT?
svc_redis_ping() {
    if [[ -n $SVC_REDIS_CLI ]]; then
        [[ $("$SVC_REDIS_CLI" -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
    else
        (
            exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
            printf 'PING\r\n' >&3
            IFS= read -r -t 2 reply <&3 || exit 1
            [[ $reply == +PONG* ]]
        ) 2>/dev/null
    fi
}

svc_redis_pid() {
    local pid
    [[ -n $SVC_REDIS_PIDFILE && -f $SVC_REDIS_PIDFILE ]] || return 1
    read -r pid <"$SVC_REDIS_PIDFILE" || return 1
    [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

svc_start_redis() {
    local dir=$SVC_WORK/redis port attempt i pid
    mkdir -p "$dir"
    SVC_REDIS_PIDFILE=$dir/redis.pid
    for attempt in 1 2 3 4 5; do
        port=$(svc_free_port) || svc_die "no free TCP port found"
        [[ $port != "$SVC_PG_PORT" ]] || continue
        svc_log "starting redis on 127.0.0.1:$port"
        rm -f "$SVC_REDIS_PIDFILE"
        "$SVC_REDIS_SERVER" --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
            --dir "$dir" --daemonize yes --pidfile "$SVC_REDIS_PIDFILE" \
            --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 || true
        for ((i = 0; i < 100; i++)); do
            if pid=$(svc_redis_pid) && svc_alive "$pid" && svc_redis_ping "$port"; then
                SVC_REDIS_PORT=$port
                break 2
            fi
            sleep 0.1
        done
        svc_log "redis did not start (attempt $attempt); log:"
        tail -n 20 "$dir/redis.log" >&2 || true
        svc_stop_redis
    done
    [[ -n $SVC_REDIS_PORT ]] || svc_die "could not start redis"
    SVC_REDIS_URL="redis://127.0.0.1:$SVC_REDIS_PORT/0"
    svc_log "redis ready: $SVC_REDIS_URL"
}

svc_stop_redis() {
    local pid
    pid=$(svc_redis_pid) || return 0
    svc_alive "$pid" || return 0
    svc_log "stopping redis (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    svc_wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
}

# --- cleanup -------------------------------------------------------------------

# svc_cleanup stops both servers, kills leftovers and removes SVC_WORK. Safe to
# call more than once and from an EXIT trap.
svc_cleanup() {
    [[ -n $SVC_WORK && -d $SVC_WORK ]] || return 0
    svc_stop_postgres || true
    svc_stop_redis || true
    svc_sweep || true
    local i
    for ((i = 0; i < 5; i++)); do
        rm -rf "$SVC_WORK" 2>/dev/null && break
        sleep 0.5
        svc_sweep || true
    done
    if [[ -d $SVC_WORK ]]; then
        svc_log "warning: could not remove $SVC_WORK"
    else
        svc_log "removed $SVC_WORK"
    fi
    SVC_WORK=""
}
