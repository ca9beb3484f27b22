#!/usr/bin/env bash
# Runs Duikou's checks and tests against throwaway PostgreSQL and Redis servers.
#
#   scripts/test.sh [go test args...]     (or: make test ARGS='...')
#
# Steps: go vet ./..., a gofmt check, then install PostgreSQL, Redis and
# Chromium with a CJK font (Debian packages) if missing, start private instances on free ports on 127.0.0.1,
# run `go test -race -count=1 -timeout 25m` with the extra arguments (default
# package pattern ./...), stop the servers and remove all temp files.
#
# Environment seen by the tests:
#   DUIKOU_TEST_DATABASE_URL  postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   DUIKOU_TEST_REDIS_URL     redis://127.0.0.1:PORT/0
#   DUIKOU_TEST_SERVICES      required (tests needing PG/Redis fail instead of skipping)
#   DUIKOU_TEST_PG_BIN        dir with initdb, pg_ctl, postgres, pg_isready
#   DUIKOU_TEST_REDIS_SERVER  path to redis-server
#   DUIKOU_TEST_PG_USER       user to run postgres as (via runuser) when root; empty otherwise
#   DUIKOU_TEST_CHROMIUM      /usr/bin/chromium, for the browser tests (web/browsertest)
#   DUIKOU_TEST_ARTIFACTS     where browser tests also save screenshots and console logs
#                             (default: test-artifacts/ in the repository)
#   TMPDIR                    a directory inside this run's temp dir (removed at the end,
#                             and any process left running with its cwd there is killed)
#
# Knobs: DUIKOU_TEST_LINT=0 skips go vet and the gofmt check.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib-services.sh
source "$ROOT/scripts/lib-services.sh"

if ! command -v go >/dev/null 2>&1; then
    [[ -x /usr/local/go/bin/go ]] || svc_die "Go toolchain not found (expected in PATH or /usr/local/go/bin)"
    export PATH="$PATH:/usr/local/go/bin"
fi

GOTEST_PID=""

on_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    if [[ -n $GOTEST_PID ]] && svc_alive "$GOTEST_PID"; then
        svc_log "stopping go test"
        kill -TERM -- "-$GOTEST_PID" 2>/dev/null || kill -TERM "$GOTEST_PID" 2>/dev/null
        svc_wait_gone "$GOTEST_PID" 10 ||
            kill -KILL -- "-$GOTEST_PID" 2>/dev/null || kill -KILL "$GOTEST_PID" 2>/dev/null
    fi
    svc_cleanup
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- static checks -------------------------------------------------------------
if [[ ${DUIKOU_TEST_LINT:-1} != 0 ]]; then
    svc_log "go vet ./..."
    go vet ./...

    svc_log "gofmt check"
    gofmt=$(go env GOROOT)/bin/gofmt
    files=()
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        while IFS= read -r -d '' f; do
            [[ -f $f ]] && files+=("$f")
        done < <(git ls-files -z --cached --others --exclude-standard -- '*.go')
    else
        while IFS= read -r -d '' f; do files+=("$f"); done \
            < <(find . -name '*.go' -not -path './vendor/*' -not -path './.git/*' -print0)
    fi
    if ((${#files[@]})); then
        unformatted=$("$gofmt" -l "${files[@]}")
        if [[ -n $unformatted ]]; then
            printf 'error: these files are not gofmt-formatted (run gofmt -w):\n%s\n' "$unformatted" >&2
            exit 1
        fi
    fi
fi

# --- services ------------------------------------------------------------------
svc_init_workdir
svc_log "temp dir $SVC_WORK"
svc_ensure_packages
svc_start_postgres
svc_start_redis

mkdir -m 1777 "$SVC_WORK/tmp"
export TMPDIR=$SVC_WORK/tmp
export DUIKOU_TEST_DATABASE_URL=$SVC_PG_URL
export DUIKOU_TEST_REDIS_URL=$SVC_REDIS_URL
export DUIKOU_TEST_SERVICES=required
export DUIKOU_TEST_PG_BIN=$SVC_PG_BIN
export DUIKOU_TEST_REDIS_SERVER=$SVC_REDIS_SERVER
export DUIKOU_TEST_PG_USER=$SVC_PG_USER
export DUIKOU_TEST_CHROMIUM=$SVC_CHROMIUM
export DUIKOU_TEST_ARTIFACTS=${DUIKOU_TEST_ARTIFACTS:-$ROOT/test-artifacts}
export CGO_ENABLED=1 # the race detector needs cgo

# --- tests ---------------------------------------------------------------------
args=("$@")
((${#args[@]})) || args=(./...)
svc_log "go test -race -count=1 -timeout 25m ${args[*]}"
# go test runs in its own session so that an interrupt or TERM sent to this
# script can stop it together with the test binaries it started.
if command -v setsid >/dev/null 2>&1; then
    setsid go test -race -count=1 -timeout 25m "${args[@]}" </dev/null &
else
    go test -race -count=1 -timeout 25m "${args[@]}" </dev/null &
fi
GOTEST_PID=$!
rc=0
wait "$GOTEST_PID" || rc=$?
GOTEST_PID=""

if ((rc == 0)); then
    svc_log "tests passed"
else
    svc_log "go test failed (exit $rc); last lines of the server logs:"
    tail -n 30 "$SVC_WORK/pg/postgres.log" "$SVC_WORK/redis/redis.log" >&2 2>/dev/null || true
fi
exit "$rc"
