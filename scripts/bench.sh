#!/usr/bin/env bash
# Benchmarks (not part of the test suite): installs what is missing, installs the release build,
# starts a throwaway PostgreSQL 15 and runs bench/*.sql, printing the figures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_dependencies
install_extension release

CLUSTER="$(postgres_scratch_dir)"
trap 'destroy_cluster "$CLUSTER"' EXIT
PORT="$(free_port 25632)"
start_cluster "$CLUSTER" "$PORT"
log "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; commit $(git -C "$REPO_ROOT" rev-parse --short HEAD)"
for script in "$REPO_ROOT"/bench/*.sql; do
    db="bench_$(basename "$script" .sql)"
    as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$db"
    cp "$script" "$CLUSTER/$(basename "$script")"
    chmod 644 "$CLUSTER/$(basename "$script")"
    log "$(basename "$script")"
    as_postgres "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d "$db" \
        -v ON_ERROR_STOP=1 -f "$CLUSTER/$(basename "$script")"
done
