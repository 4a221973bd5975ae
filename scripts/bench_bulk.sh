#!/usr/bin/env bash
# Bulk benchmarks (not part of the test suite): one statement of BENCH_BULK_ROWS rows (default
# 100,000) on a CRDT table (counter, doc, text) against the same statement on a plain table
# (bigint, jsonb, text) and on a plain table with a do-nothing C trigger on UPDATE (PostgreSQL's
# suppress_redundant_updates_trigger, its only one) — INSERT ... SELECT, COPY FROM text and
# binary, UPDATE and DELETE of every row, and INSERT of the deleted keys again — with time per
# row and WAL bytes per row; then the catch-up of a subscriber (binary)
# applying one INSERT and one UPDATE transaction of that many rows, CRDT against plain. Medians
# of BENCH_BULK_ROUNDS rounds (default 3), the two tables alternating. Prints a Markdown table;
# scripts/bench.sh puts it in BENCHMARKS.md. BENCH_BULK_ROWS=1000000 is the issue's million.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS="${BENCH_BULK_ROWS:-100000}"
ROUNDS="${BENCH_BULK_ROUNDS:-3}"

if [ -z "${BENCH_BULK_INSTALLED:-}" ]; then
    ensure_dependencies
    install_extension release
fi

NODE_A="$(postgres_scratch_dir)"
NODE_B="$(postgres_scratch_dir)"
trap 'destroy_cluster "$NODE_A"; destroy_cluster "$NODE_B"' EXIT
PORT_A="$(free_port 25732)"
start_cluster "$NODE_A" "$PORT_A"
PORT_B="$(free_port $((PORT_A + 1)))"
start_cluster "$NODE_B" "$PORT_B"

psql_at() { # psql_at PORT SQL...
    local port="$1"; shift
    as_postgres "$PG_BIN/psql" -X -q -At -F $'\t' -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 "$@"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

SCHEMA="CREATE EXTENSION IF NOT EXISTS crdt;
DROP TABLE IF EXISTS crdt_t, plain_t, trigger_t;
CREATE TABLE crdt_t (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0, d crdt.doc, s text);
SELECT crdt.enable('crdt_t');
CREATE TABLE plain_t (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0, d jsonb, s text);
CREATE TABLE trigger_t (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0, d jsonb, s text);
CREATE TRIGGER no_op BEFORE UPDATE ON trigger_t FOR EACH ROW
    EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger();"
for port in "$PORT_A" "$PORT_B"; do psql_at "$port" -c "$SCHEMA" >/dev/null; done

# The values each table gets: the same numbers, objects and texts.
psql_at "$PORT_A" -c "CREATE TABLE crdt_src AS SELECT g AS id, (g % 100)::bigint::crdt.counter AS n,
        crdt.patch(NULL, jsonb_build_object('g', g, 'name', 'item ' || g)) AS d, 'row ' || g AS s
    FROM generate_series(1, $ROWS) g;
    CREATE TABLE plain_src AS SELECT g AS id, (g % 100)::bigint AS n,
        jsonb_build_object('g', g, 'name', 'item ' || g) AS d, 'row ' || g AS s
    FROM generate_series(1, $ROWS) g;
    CREATE TABLE trigger_src AS SELECT * FROM plain_src;
    COPY crdt_src TO '$NODE_A/crdt.text'; COPY crdt_src TO '$NODE_A/crdt.binary' (FORMAT binary);
    COPY plain_src TO '$NODE_A/plain.text'; COPY plain_src TO '$NODE_A/plain.binary' (FORMAT binary);
    COPY plain_src TO '$NODE_A/trigger.text'; COPY plain_src TO '$NODE_A/trigger.binary' (FORMAT binary);" >/dev/null

# Runs one statement on table kind $1 (crdt, plain or trigger) and prints "milliseconds<TAB>WAL bytes".
measure() {
    local kind="$1" statement="$2"
    statement="${statement//\{t\}/${kind}_t}"
    statement="${statement//\{src\}/${kind}_src}"
    statement="${statement//\{file\}/$NODE_A/$kind}"
    psql_at "$PORT_A" <<SQL
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \gset
$statement;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0');
SQL
}

declare -A STATEMENTS=(
    [1_insert]="INSERT INTO {t} SELECT * FROM {src}"
    [2_copy_text]="DELETE FROM {t}; TRUNCATE crdt.deletions; CHECKPOINT; SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \\gset
COPY {t} (id, n, d, s) FROM '{file}.text'"
    [3_copy_binary]="DELETE FROM {t}; TRUNCATE crdt.deletions; CHECKPOINT; SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS t0 \\gset
COPY {t} (id, n, d, s) FROM '{file}.binary' (FORMAT binary)"
    [4_update]="UPDATE {t} SET n = n OPERATOR(crdt.+) 1, s = s || ' v2'"
    [5_delete]="DELETE FROM {t}"
    # The same keys again, each now with a tombstone the insert looks up and records.
    [6_insert_deleted_keys]="INSERT INTO {t} SELECT * FROM {src}"
)
declare -A TIMES WAL
log "bulk: $ROWS rows per statement, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    for kind in plain trigger crdt; do
        # Each -c its own transaction: VACUUM runs outside one. TRUNCATE, not DELETE: dead
        # tombstones left in the index would slow the next round's lookups.
        psql_at "$PORT_A" -c "DELETE FROM ${kind}_t" -c "TRUNCATE crdt.deletions" -c "VACUUM ${kind}_t" \
            -c "CHECKPOINT" >/dev/null
        for case in $(printf '%s\n' "${!STATEMENTS[@]}" | sort); do
            statement="${STATEMENTS[$case]}"
            # The plain table's counter is a bigint: + is plain addition there.
            [ "$kind" != crdt ] && statement="${statement//OPERATOR(crdt.+)/+}"
            read -r ms bytes < <(measure "$kind" "$statement" | tail -n 1)
            TIMES[$case.$kind]+="$ms "
            WAL[$case.$kind]+="$bytes "
        done
    done
done

# One transaction of $ROWS rows on A, applied by B's apply worker: seconds from commit to caught up.
log "bulk: replicated catch-up"
psql_at "$PORT_A" -c "DELETE FROM crdt_t; DELETE FROM plain_t; TRUNCATE crdt.deletions;
    CREATE PUBLICATION bulk FOR TABLE crdt_t, plain_t, crdt.deletions WITH (publish = 'insert, update, delete')" >/dev/null
psql_at "$PORT_B" -c "CREATE SUBSCRIPTION bulk CONNECTION 'host=127.0.0.1 port=$PORT_A user=postgres dbname=postgres'
    PUBLICATION bulk WITH (copy_data = false, binary = true)" >/dev/null
catch_up() { # catch_up KIND STATEMENT CONDITION: seconds until B satisfies CONDITION
    local kind="$1" statement="$2" condition="$3" start
    psql_at "$PORT_A" -c "${statement//\{t\}/${kind}_t}" >/dev/null
    start="$(date +%s.%N)"
    until [ "$(psql_at "$PORT_B" -c "SELECT ${condition//\{t\}/${kind}_t}")" = t ]; do sleep 0.1; done
    awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { printf "%.2f", end - start }'
}
declare -A APPLY
for kind in plain crdt; do
    src="${kind}_src"
    APPLY[insert.$kind]="$(catch_up "$kind" "INSERT INTO {t} SELECT * FROM $src" "(SELECT count(*) FROM {t}) = $ROWS")"
    APPLY[update.$kind]="$(catch_up "$kind" "UPDATE {t} SET s = s || ' v2'" "NOT EXISTS (SELECT FROM {t} WHERE s NOT LIKE '% v2')")"
done

per_row() { awk -v total="$1" -v rows="$ROWS" -v scale="$2" 'BEGIN { printf "%.2f", total * scale / rows }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", (b > 0) ? a / b : 0 }'; }
echo
echo "| $ROWS rows in one statement | plain µs/row | plain + C trigger µs/row | CRDT µs/row | CRDT/plain | plain WAL B/row | CRDT WAL B/row |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for case in $(printf '%s\n' "${!STATEMENTS[@]}" | sort); do
    plain_ms="$(echo "${TIMES[$case.plain]}" | tr ' ' '\n' | grep . | median)"
    trigger_ms="$(echo "${TIMES[$case.trigger]}" | tr ' ' '\n' | grep . | median)"
    crdt_ms="$(echo "${TIMES[$case.crdt]}" | tr ' ' '\n' | grep . | median)"
    # The C trigger fires on UPDATE only: elsewhere its table is a plain table again.
    trigger_column="—"
    [ "$case" = 4_update ] && trigger_column="$(per_row "$trigger_ms" 1000)"
    plain_wal="$(echo "${WAL[$case.plain]}" | tr ' ' '\n' | grep . | median)"
    crdt_wal="$(echo "${WAL[$case.crdt]}" | tr ' ' '\n' | grep . | median)"
    echo "| ${case#*_} | $(per_row "$plain_ms" 1000) | $trigger_column | $(per_row "$crdt_ms" 1000) | $(ratio "$crdt_ms" "$plain_ms") | $(per_row "$plain_wal" 1) | $(per_row "$crdt_wal" 1) |"
done
echo
echo "| one replicated transaction of $ROWS rows (binary) | plain s | CRDT s | CRDT/plain |"
echo "| --- | --- | --- | --- |"
for case in insert update; do
    echo "| $case, commit to caught up | ${APPLY[$case.plain]} | ${APPLY[$case.crdt]} | $(ratio "${APPLY[$case.crdt]}" "${APPLY[$case.plain]}") |"
done
