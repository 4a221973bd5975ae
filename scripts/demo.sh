#!/usr/bin/env bash
# Try it: installs what is missing, builds and installs crdt, starts a throwaway PostgreSQL 15
# on a free loopback port and shows the inventory case on counters. Stops what it started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_dependencies
install_extension release

CLUSTER="$(postgres_scratch_dir)"
trap 'destroy_cluster "$CLUSTER"' EXIT
PORT="$(free_port 54320)"
log "starting PostgreSQL $PG_MAJOR on 127.0.0.1:$PORT"
start_cluster "$CLUSTER" "$PORT"

log "the inventory case: two nodes start from 5; node A adds 5, node B subtracts 1"
as_postgres "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -f "$REPO_ROOT/scripts/demo.sql"
