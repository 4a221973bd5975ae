#!/usr/bin/env bash
# Runs tests/pg_regress/sql/*.sql against a temporary PostgreSQL instance with PostgreSQL's own
# pg_regress (run as postgres: `cargo pgrx regress` cannot run as root) and compares the output
# with tests/pg_regress/expected/*.out; then tests/isolation/specs/*.spec (sessions interleaved
# step by step) with pg_isolation_regress against tests/isolation/expected/*.out. Neither
# server's log may name Rust internals. Needs the extension installed (scripts/test.sh does it).
# With --accept, copies the actual output over the expected files instead of failing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ACCEPT=0
if [ "${1:-}" = "--accept" ]; then ACCEPT=1; fi

PGXS_TEST="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test"
WORK="$(postgres_scratch_dir)"
trap '$SUDO rm -rf "$WORK"' EXIT
# The runners run as postgres: give them their own copy of the inputs in a directory it owns.
cp -r "$REPO_ROOT/tests/pg_regress" "$WORK/pg_regress"
cp -r "$REPO_ROOT/tests/isolation" "$WORK/isolation"
mkdir -p "$WORK/pg_regress/expected" "$WORK/isolation/expected"
# Preloaded, as crdt.stats needs (its counts live in shared memory).
echo "shared_preload_libraries = 'crdt'" > "$WORK/preload.conf"
$SUDO chown -R postgres:postgres "$WORK"

status=0
# $1: the suite's directory under tests/; $2: its runner; $3: where its inputs are; $4: their
# file name extension.
run_suite() {
    local suite="$1" runner="$2" inputs="$3" extension="$4"
    local dir="$WORK/$suite" tests test port suite_status=0 failed=0
    mapfile -t tests < <(cd "$dir/$inputs" && ls -1 ./*."$extension" | sed "s|^\./||; s|\.$extension\$||" | sort)
    if [ "$ACCEPT" = 1 ]; then
        # The runners stop at a test without an expected file; a new one starts from an empty one.
        for test in "${tests[@]}"; do as_postgres touch "$dir/expected/$test.out"; done
    fi
    port="$(free_port 25532)"
    log "$suite: ${tests[*]}"
    as_postgres "$PGXS_TEST/$runner" \
        --temp-instance="$dir/instance" --temp-config="$WORK/preload.conf" --port="$port" --bindir="$PG_BIN" \
        --inputdir="$dir" --outputdir="$dir" \
        --load-extension=crdt --dbname=crdt_regress \
        "${tests[@]}" || suite_status=$?
    if [ "$ACCEPT" = 1 ]; then
        for test in "${tests[@]}"; do
            cp "$dir/results/$test.out" "$REPO_ROOT/tests/$suite/expected/$test.out"
        done
        log "accepted ${#tests[@]} expected files of $suite"
        return 0
    fi
    if [ "$suite_status" -ne 0 ]; then
        [ -f "$dir/regression.diffs" ] && cat "$dir/regression.diffs"
        # "... FAILED" up to PostgreSQL 15, TAP's "not ok" from 16 on.
        failed=$(grep -cE '^not ok|\.\.\. FAILED' "$dir/regression.out" 2>/dev/null || true)
        [ "${failed:-0}" -gt 0 ] || failed="${#tests[@]}"
        status=1
    fi
    # What users see is what these tests see (no RUST_BACKTRACE, see lib.sh): no message,
    # DETAIL, HINT or CONTEXT may name Rust internals.
    if ! log_names_no_rust_internals "$dir/log/postmaster.log"; then
        status=1
    fi
    echo "$suite: $(( ${#tests[@]} - failed )) passed, $failed failed"
}

run_suite pg_regress regress/pg_regress sql sql
run_suite isolation isolation/pg_isolation_regress specs spec
exit "$status"
