#!/usr/bin/env bash
# The whole test suite: core unit and property tests, #[pg_test] tests inside PostgreSQL, and
# the tests/pg_regress golden files through PostgreSQL's own pg_regress, and the multi-instance
# replication tests (tests/replication). Exits non-zero on any
# failure. Installs what is missing first (fast when everything is there).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_dependencies
cd "$REPO_ROOT"

log "format and lints: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --check
cargo clippy -p crdt-core -p crdt-replication-tests --all-targets -- -D warnings
cargo clippy -p crdt --all-targets --features "pg$PG_MAJOR pg_test" -- -D warnings

log "core: unit and property tests"
cargo test -p crdt-core

log "extension: #[pg_test] tests in PostgreSQL $PG_MAJOR"
PGDATA_DIR="$(postgres_scratch_dir)"
trap '$SUDO rm -rf "$PGDATA_DIR"' EXIT
# pgrx initialises the cluster itself: hand it a path that does not exist yet, under a
# directory postgres owns.
cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$PGDATA_DIR/pgdata"

# The golden, isolation and replication tests run the release build, the one users run: the
# replication tests write transactions of 200,000 rows, which a debug build applies 5× slower.
install_extension release
"$REPO_ROOT/scripts/regress.sh"

log "replication: real PostgreSQL 15 clusters joined by logical replication"
cargo test -p crdt-replication-tests
