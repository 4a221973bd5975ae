#!/usr/bin/env bash
# Try it: installs what is missing, builds and installs crdt, starts two throwaway PostgreSQL
# instances (15, or the major given with --major N) on free loopback ports, joins them with
# logical replication in both directions (with origin = none from 16 on), and shows the
# inventory case converge on both. Stops what it started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_major_option "$@"
if [ "${#OTHER_ARGS[@]}" -gt 0 ]; then
    echo "usage: $0 [--major N]" >&2
    exit 2
fi
# Without --major, lib.sh's default: 15 (or CRDT_PG_MAJOR).
if [ "${#MAJORS[@]}" -eq 1 ]; then use_pg_major "${MAJORS[0]}"; fi

ensure_dependencies
install_extension release

NODE_A="$(postgres_scratch_dir)"
NODE_B="$(postgres_scratch_dir)"
trap 'destroy_cluster "$NODE_A"; destroy_cluster "$NODE_B"' EXIT
PORT_A="$(free_port 25432)"
start_cluster "$NODE_A" "$PORT_A"
PORT_B="$(free_port $((PORT_A + 1)))"
start_cluster "$NODE_B" "$PORT_B"
log "PostgreSQL $PG_MAJOR: node A on 127.0.0.1:$PORT_A, node B on 127.0.0.1:$PORT_B"

psql_on() { # psql_on PORT [psql args...]
    local port="$1"; shift
    as_postgres "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}
value_on() { psql_on "$1" -At -c "$2"; }

for port in "$PORT_A" "$PORT_B"; do
    psql_on "$port" -f "$REPO_ROOT/scripts/demo-schema.sql"
done
# From 16 on, a subscriber can skip what its publisher only applied (the merge trigger ends
# such echoes on 15).
ORIGIN=""
if [ "$PG_MAJOR" -ge 16 ]; then ORIGIN=", origin = none"; fi
for pair in "$PORT_A:$PORT_B:a_to_b" "$PORT_B:$PORT_A:b_to_a"; do
    IFS=: read -r from to name <<<"$pair"
    psql_on "$to" -c "CREATE SUBSCRIPTION sub_$name
        CONNECTION 'host=127.0.0.1 port=$from dbname=postgres user=postgres'
        PUBLICATION crdt_demo WITH (copy_data = false$ORIGIN)"
done

# Waits until both nodes show the same product rows (stamps included).
wait_converged() {
    local snapshot="SELECT string_agg(p::text, ';' ORDER BY id) FROM product p"
    for _ in $(seq 1 200); do
        if [ "$(value_on "$PORT_A" "$snapshot")" = "$(value_on "$PORT_B" "$snapshot")" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "the nodes did not converge" >&2
    return 1
}
show_both() {
    for node in "A:$PORT_A" "B:$PORT_B"; do
        IFS=: read -r label port <<<"$node"
        echo "node $label:"
        psql_on "$port" -c "SELECT id, name, inventory::bigint AS inventory FROM product ORDER BY id"
    done
}

log "node A inserts the product; it replicates to B"
psql_on "$PORT_A" -c "INSERT INTO product VALUES (1, 'widget', 5)"
wait_converged
show_both

log "the link goes down; A renames the product and adds 5, B subtracts 1, at the same time"
psql_on "$PORT_A" -c "ALTER SUBSCRIPTION sub_b_to_a DISABLE"
psql_on "$PORT_B" -c "ALTER SUBSCRIPTION sub_a_to_b DISABLE"
psql_on "$PORT_A" -c "UPDATE product SET name = 'widget v2', inventory = inventory + 5 WHERE id = 1"
psql_on "$PORT_B" -c "UPDATE product SET inventory = inventory - 1 WHERE id = 1"
show_both

log "the link comes back; both nodes converge"
psql_on "$PORT_A" -c "ALTER SUBSCRIPTION sub_b_to_a ENABLE"
psql_on "$PORT_B" -c "ALTER SUBSCRIPTION sub_a_to_b ENABLE"
wait_converged
show_both

log "what the merges decided on B (crdt.stats), and B's health (crdt.status())"
psql_on "$PORT_B" -c "SELECT table_name, remote_rows, remote_wins, local_wins, counter_merges FROM crdt.stats"
psql_on "$PORT_B" -c "SELECT item, name, ok, detail FROM crdt.status() WHERE item IN ('stats', 'table', 'subscription', 'slot')"
