#!/usr/bin/env bash
# Runs tests/pg_regress/sql/*.sql against a temporary PostgreSQL instance with PostgreSQL's own
# pg_regress (run as postgres: `cargo pgrx regress` cannot run as root) and compares the output
# with tests/pg_regress/expected/*.out. Needs the extension installed (scripts/test.sh does it).
# With --accept, copies the actual output over the expected files instead of failing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ACCEPT=0
if [ "${1:-}" = "--accept" ]; then ACCEPT=1; fi

PG_REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
WORK="$(postgres_scratch_dir)"
trap '$SUDO rm -rf "$WORK"' EXIT
# pg_regress runs as postgres: give it its own copy of the inputs in a directory it owns.
cp -r "$REPO_ROOT/tests/pg_regress/." "$WORK/"
mkdir -p "$WORK/expected"
mapfile -t TESTS < <(cd "$REPO_ROOT/tests/pg_regress/sql" && ls -1 *.sql | sed 's/\.sql$//' | sort)
if [ "$ACCEPT" = 1 ]; then
    # pg_regress stops at a test without an expected file; a new test starts from an empty one.
    for test in "${TESTS[@]}"; do touch "$WORK/expected/$test.out"; done
fi
$SUDO chown -R postgres:postgres "$WORK"
PORT="$(free_port 25532)"

log "pg_regress: ${TESTS[*]}"
status=0
as_postgres "$PG_REGRESS" \
    --temp-instance="$WORK/instance" --port="$PORT" --bindir="$PG_BIN" \
    --inputdir="$WORK" --outputdir="$WORK" \
    --load-extension=crdt --dbname=crdt_regress \
    "${TESTS[@]}" || status=$?

if [ "$ACCEPT" = 1 ]; then
    for test in "${TESTS[@]}"; do
        cp "$WORK/results/$test.out" "$REPO_ROOT/tests/pg_regress/expected/$test.out"
    done
    log "accepted ${#TESTS[@]} expected files"
    exit 0
fi

failed=0
if [ "$status" -ne 0 ]; then
    [ -f "$WORK/regression.diffs" ] && cat "$WORK/regression.diffs"
    failed=$(grep -c 'FAILED' "$WORK/regression.out" 2>/dev/null || echo "${#TESTS[@]}")
fi
echo "pg_regress: $(( ${#TESTS[@]} - failed )) passed, $failed failed"
exit "$status"
