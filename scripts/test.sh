#!/usr/bin/env bash
# The whole test suite: format and lints, core unit and property tests (once), then on each
# PostgreSQL major (15, 16, 17, 18): the #[pg_test] tests inside PostgreSQL, the release build
# installed from its package (scripts/package.sh), tests/pg_regress and tests/isolation through
# PostgreSQL's own runners, and the multi-instance replication tests (tests/replication); last,
# a mesh of a 15 node and an 18 node (tests/replication/tests/mixed_majors.rs). Exits non-zero
# on any failure. Installs what is missing first (fast when everything is there).
#
#   bash scripts/test.sh              # every major
#   bash scripts/test.sh --major 18   # one major, for quick work (no mixed-major mesh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_major_option "$@"
if [ "${#OTHER_ARGS[@]}" -gt 0 ]; then
    echo "usage: $0 [--major N]" >&2
    exit 2
fi

ensure_dependencies
cd "$REPO_ROOT"
SUITE_START=$SECONDS
TIMES=()
timed_step() { TIMES+=("$(printf '%-44s %4d s' "$1" $((SECONDS - $2)))"); }

step_start=$SECONDS
log "format and lints: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --check
cargo clippy -p crdt-core -p crdt-macros -p crdt-replication-tests --all-targets --features crdt-core/fuzz-checks -- -D warnings
for major in "${MAJORS[@]}"; do
    cargo clippy -p crdt --all-targets --no-default-features --features "pg$major pg_test" -- -D warnings
done
timed_step "format, lints" "$step_start"

step_start=$SECONDS
log "core: unit and property tests"
cargo test -p crdt-core --features fuzz-checks
timed_step "core tests" "$step_start"

PGDATA_DIR="$(postgres_scratch_dir)"
trap '$SUDO rm -rf "$PGDATA_DIR"' EXIT

# The replication tests of one major: every file of tests/replication/tests but the mixed mesh.
mapfile -t REPLICATION_TESTS < <(cd tests/replication/tests && ls -1 ./*.rs | sed 's|^\./||; s|\.rs$||' \
    | grep -vx mixed_majors | sed 's/^/--test=/')

for major in "${MAJORS[@]}"; do
    use_pg_major "$major"
    major_start=$SECONDS

    step_start=$SECONDS
    log "extension: #[pg_test] tests in PostgreSQL $major"
    # pgrx initialises the cluster itself: hand it a path that does not exist yet, under a
    # directory postgres owns.
    cargo pgrx test "pg$major" --runas postgres --pgdata "$PGDATA_DIR/pg$major"
    timed_step "pg$major: #[pg_test]" "$step_start"

    # The golden, isolation and replication tests run the release build, the one users run,
    # installed from the package users install.
    step_start=$SECONDS
    "$REPO_ROOT/scripts/package.sh" --major "$major" --install
    timed_step "pg$major: release build, package, install" "$step_start"

    step_start=$SECONDS
    "$REPO_ROOT/scripts/regress.sh"
    timed_step "pg$major: pg_regress, isolation" "$step_start"

    step_start=$SECONDS
    log "replication: real PostgreSQL $major clusters joined by logical replication"
    CRDT_PG_MAJOR="$major" cargo test -p crdt-replication-tests "${REPLICATION_TESTS[@]}"
    timed_step "pg$major: replication" "$step_start"
    timed_step "pg$major: all" "$major_start"
done

if [[ " ${MAJORS[*]} " == *" 15 "* && " ${MAJORS[*]} " == *" 18 "* ]]; then
    step_start=$SECONDS
    log "mixed majors: PostgreSQL 15 and 18 nodes replicating both ways; the chaos workload on 15, 18, 18"
    cargo test -p crdt-replication-tests --test=mixed_majors
    CRDT_CHAOS_MAJORS=15,18,18 cargo test -p crdt-replication-tests --test=chaos -- chaos_convergence
    timed_step "mixed majors (15 + 18)" "$step_start"
fi

log "time per step"
printf '%s\n' "${TIMES[@]}" >&2
printf '%-44s %4d s\n' "whole suite" $((SECONDS - SUITE_START)) >&2
