#!/usr/bin/env bash
# Benchmarks (not part of the test suite). On each PostgreSQL major given (default 15 and 18,
# the oldest and the newest supported), installs what is missing and the release build, starts
# two throwaway instances, runs every case side by side in interleaved rounds after a warm-up,
# and writes the figures to BENCHMARKS.md (machine, commit, medians and spreads, ratios against
# the targets), a section per major.
#   bench/*.sql         in-database cases (sizes, merges, digest), timed by bench/harness.sql
#   pgbench             increments: CRDT counter table vs plain bigint table, 2 clients, bound
#                       by the commit's fsync; and CPU-bound (fsync and synchronous_commit off,
#                       prepared statements), also against a plain table with a do-nothing C
#                       trigger
#                       rate limit checks: crdt.rate_limit vs a plain UPDATE ... RETURNING,
#                       one key and 100,000 keys
#   WAL                 bytes per single-row update, CRDT vs plain
#   apply               logical-replication catch-up rate, merge trigger vs plain table
#   callgrind           instructions per replicated update (apply worker), per row of a local
#                       UPDATE, INSERT and DELETE, and of a new session's first INSERT (backend)
#   bulk                statements of 100,000 rows and their replicated catch-up (bench_bulk.sh)
#
#   bash scripts/bench.sh               # PostgreSQL 15 and 18
#   bash scripts/bench.sh --major 17    # one major
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_major_option "$@"
if [ "${#OTHER_ARGS[@]}" -gt 0 ]; then
    echo "usage: $0 [--major N]" >&2
    exit 2
fi
if [ -z "${BENCH_SECTION:-}" ]; then
    # The parent: one run per major, each writing its section; then BENCHMARKS.md.
    [ "$#" -eq 0 ] && MAJORS=(15 18)
    sections=()
    for major in "${MAJORS[@]}"; do
        section="$REPO_ROOT/target/bench/pg$major.md"
        mkdir -p "$(dirname "$section")"
        BENCH_SECTION="$section" CRDT_PG_MAJOR="$major" bash "${BASH_SOURCE[0]}" --major "$major"
        sections+=("$section")
    done
    {
        echo "# Benchmarks"
        echo
        echo "Written by \`bash scripts/bench.sh\` — do not edit by hand. Commit \`$(git -C "$REPO_ROOT" rev-parse --short HEAD)\`,"
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), release build; machine: $(nproc) cores"
        echo "($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(free -g | awk '/Mem:/ {print $2}') GiB."
        echo "How the figures are made: docs/benchmarking.md."
        for section in "${sections[@]}"; do
            echo
            cat "$section"
        done
    } >"$REPO_ROOT/BENCHMARKS.md"
    cat "$REPO_ROOT/BENCHMARKS.md"
    exit 0
fi
use_pg_major "${MAJORS[0]}"

ROUNDS="${BENCH_ROUNDS:-5}"
# The merges run for a few hundred milliseconds on a machine whose neighbours take CPU at times.
MERGE_ROUNDS="${BENCH_MERGE_ROUNDS:-9}"
PGBENCH_SECONDS="${BENCH_PGBENCH_SECONDS:-10}"
APPLY_UPDATES="${BENCH_APPLY_UPDATES:-40000}"
# A catch-up lasts a second or two on a machine whose neighbours take CPU at times: more rounds.
APPLY_ROUNDS="${BENCH_APPLY_ROUNDS:-9}"

# valgrind (callgrind) counts the apply worker's instructions: a figure the machine's noise
# does not move. Only the benchmarks need it.
DEBIAN_PACKAGES+=(valgrind)
ensure_dependencies
install_extension release

NODE_A="$(postgres_scratch_dir)"
NODE_B="$(postgres_scratch_dir)"
trap 'destroy_cluster "$NODE_A"; destroy_cluster "$NODE_B"' EXIT
PORT_A="$(free_port 25632)"
start_cluster "$NODE_A" "$PORT_A"
PORT_B="$(free_port $((PORT_A + 1)))"
start_cluster "$NODE_B" "$PORT_B"
RESULTS="$NODE_A/results.tsv"   # kind | bench | variant | median | min | max | unit
touch "$RESULTS" && chmod 666 "$RESULTS"

psql_at() { # psql_at PORT DB SQL...
    local port="$1" db="$2"; shift 2
    as_postgres "$PG_BIN/psql" -X -q -At -F $'\t' -h 127.0.0.1 -p "$port" -U postgres -d "$db" \
        -v ON_ERROR_STOP=1 "$@"
}
pgbench_on() { # PGBENCH_OPTIONS: server settings for pgbench's sessions (PGOPTIONS, through sudo)
    as_postgres env PGOPTIONS="${PGBENCH_OPTIONS:-}" "$PG_BIN/pgbench" -h 127.0.0.1 -U postgres "$@"
}
stats() { # reads numbers, prints "median<TAB>min<TAB>max"
    sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                     printf "%.1f\t%.1f\t%.1f\n", m, v[1], v[NR] }'
}
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"; }

log "in-database cases: bench/*.sql"
for script in "$REPO_ROOT"/bench/*.sql; do
    name="$(basename "$script" .sql)"
    [ "$name" = "harness" ] && continue
    db="bench_$name"
    as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT_A" -U postgres "$db"
    cp "$REPO_ROOT/bench/harness.sql" "$script" "$NODE_A/" && chmod 644 "$NODE_A"/*.sql
    log "$name"
    psql_at "$PORT_A" "$db" -f "$NODE_A/harness.sql" >/dev/null
    as_postgres "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PORT_A" -U postgres -d "$db" \
        -v ON_ERROR_STOP=1 -v rounds="$MERGE_ROUNDS" -f "$NODE_A/$name.sql"
    psql_at "$PORT_A" "$db" -c "SELECT 'time', bench, variant, median_ms, min_ms, max_ms, 'ms'
                                FROM bench_summary ORDER BY bench, variant" >>"$RESULTS"
    psql_at "$PORT_A" "$db" -c "SELECT 'figure', bench, figure, value, value, value, unit
                                FROM bench_figure" >>"$RESULTS"
done

# Both nodes: plain tables and CRDT tables of 1,000 rows, counters at 0 (tables named *b are
# replicated with binary subscriptions, the others with text ones).
# The rows are written on A and copied to B as replication's initial copy would, so both nodes
# start as converged replicas do: the same values and the same row clocks.
TABLES_SQL="CREATE EXTENSION IF NOT EXISTS crdt;
ALTER DATABASE postgres SET search_path = public, crdt;"
for suffix in n nb; do
    TABLES_SQL+="
CREATE TABLE plain_$suffix (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
CREATE TABLE crdt_$suffix (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0);
SELECT crdt.enable('crdt_$suffix');"
done
# Two controls, plain tables with a BEFORE UPDATE trigger that fires in the apply worker (and
# in ordinary sessions, for the local cases) and does nothing (PostgreSQL's own C function, which compares the two rows): plain_t/plain_tb,
# what a row trigger costs replication by itself; plain_wt/plain_wtb, padded to the CRDT rows'
# width, what a merge run from a trigger would reach if the merge itself cost nothing.
for suffix in t tb wt wtb; do
    pad=""
    [[ "$suffix" == w* ]] && pad=", pad bytea NOT NULL DEFAULT ''"
    TABLES_SQL+="
CREATE TABLE plain_$suffix (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0$pad);
CREATE TRIGGER no_op BEFORE UPDATE ON plain_$suffix FOR EACH ROW
    EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger();
ALTER TABLE plain_$suffix ENABLE ALWAYS TRIGGER no_op;"
done
for port in "$PORT_A" "$PORT_B"; do psql_at "$port" postgres -c "$TABLES_SQL" >/dev/null; done
# The subscriber's launcher starts a worker at most once per wal_retrieve_retry_interval (5 s by
# default): catch-ups follow each other more closely than that.
psql_at "$PORT_B" postgres -c "ALTER SYSTEM SET wal_retrieve_retry_interval = '50ms'" -c "SELECT pg_reload_conf()" >/dev/null
APPLY_TABLES=(plain_n crdt_n plain_t plain_wt plain_nb crdt_nb plain_tb plain_wtb)
for table in "${APPLY_TABLES[@]}"; do
    psql_at "$PORT_A" postgres -c "INSERT INTO $table (id) SELECT i FROM generate_series(1, 1000) i" >/dev/null
done
row_bytes() { psql_at "$PORT_A" postgres -c "SELECT pg_column_size(t.*) FROM $1 t WHERE id = 1"; }
# The width of a CRDT row once a node has incremented it (as every row is during a catch-up).
psql_at "$PORT_A" postgres -c "UPDATE crdt_n SET n = n + 1 WHERE id = 1" -c "UPDATE crdt_nb SET n = n + 1 WHERE id = 1" >/dev/null
CRDT_ROW_BYTES="$(row_bytes crdt_n)"
for table in plain_wt plain_wtb; do
    psql_at "$PORT_A" postgres -c "UPDATE $table SET pad = pg_catalog.decode(pg_catalog.repeat('ab',
        $CRDT_ROW_BYTES - $(row_bytes "$table")), 'hex')" >/dev/null
done
log "rows: plain $(row_bytes plain_n) bytes, CRDT $CRDT_ROW_BYTES, padded plain $(row_bytes plain_wt)"
for table in "${APPLY_TABLES[@]}"; do
    psql_at "$PORT_A" postgres -c "COPY $table TO STDOUT" \
        | psql_at "$PORT_B" postgres -c "SET session_replication_role = replica" \
                                     -c "COPY $table FROM STDIN" >/dev/null
    printf '\\set id random(1, 1000)\nUPDATE %s SET n = n + 1 WHERE id = :id;\n' "$table" >"$NODE_A/$table.pgbench"
done
chmod 644 "$NODE_A"/*.pgbench

log "increments: pgbench, 2 clients, ${PGBENCH_SECONDS}s per round, $ROUNDS interleaved rounds"
pgbench_on -p "$PORT_A" -n -c 2 -j 2 -T 3 -f "$NODE_A/crdt_n.pgbench" postgres >/dev/null   # warm-up
pgbench_on -p "$PORT_A" -n -c 2 -j 2 -T 3 -f "$NODE_A/plain_n.pgbench" postgres >/dev/null
declare -A TPS
for round in $(seq 1 "$ROUNDS"); do
    for table in plain_n crdt_n; do
        tps="$(pgbench_on -p "$PORT_A" -n -c 2 -j 2 -T "$PGBENCH_SECONDS" -f "$NODE_A/$table.pgbench" postgres \
               | awk '/^tps/ { print $3 }')"
        echo "round $round $table: $tps tps"
        TPS[$table]+="$tps"$'\n'
    done
done
for table in plain_n crdt_n; do
    record time "increments (pgbench TPS)" "$table" "$(printf '%s' "${TPS[$table]}" | stats)" tps
done

# The same increments with the commit's cost taken away (no fsync, asynchronous commit, prepared
# statements): what is left is the CPU of each write, where the stamping trigger's cost shows.
# plain_t is the plain table with a do-nothing C trigger (suppress_redundant_updates_trigger).
CPU_CASE="increments, CPU-bound (pgbench TPS; fsync off, synchronous_commit off, -M prepared)"
log "$CPU_CASE"
psql_at "$PORT_A" postgres -c "ALTER SYSTEM SET fsync = off" -c "SELECT pg_reload_conf()" >/dev/null
declare -A CPU_TPS
for round in $(seq 0 "$ROUNDS"); do    # round 0 is the warm-up
    for table in plain_n plain_t crdt_n; do
        tps="$(PGBENCH_OPTIONS="-c synchronous_commit=off" pgbench_on -p "$PORT_A" -n -M prepared -c 2 -j 2 \
               -T "$PGBENCH_SECONDS" -f "$NODE_A/$table.pgbench" postgres | awk '/^tps/ { print $3 }')"
        echo "round $round $table: $tps tps"
        [ "$round" -gt 0 ] && CPU_TPS[$table]+="$tps"$'\n'
    done
done
for table in plain_n plain_t crdt_n; do
    record time "$CPU_CASE" "$table" "$(printf '%s' "${CPU_TPS[$table]}" | stats)" tps
done

# Rate limiting (docs/rate_limit.md), CPU-bound as above: checks per second from 2 clients on one
# hot key (shared and split mode) and on 100,000 keys, against a plain counter row per key
# (UPDATE ... RETURNING).
RATE_LIMIT_CASE="rate limit checks, CPU-bound (pgbench TPS; 2 clients, -M prepared)"
log "$RATE_LIMIT_CASE"
psql_at "$PORT_A" postgres \
    -c "CREATE TABLE plain_limits (key text PRIMARY KEY, n bigint NOT NULL DEFAULT 0)" \
    -c "INSERT INTO plain_limits SELECT 'k' || g FROM generate_series(1, 100000) g UNION ALL SELECT 'hot'" >/dev/null
printf "SELECT crdt.rate_limit('hot', 1000000000, '1 hour');\n" >"$NODE_A/limit_crdt_one_key.pgbench"
printf "SELECT crdt.rate_limit('hot', 1000000000, '1 hour', 1, 'split');\n" >"$NODE_A/limit_crdt_split_one_key.pgbench"
printf "\\set k random(1, 100000)\nSELECT crdt.rate_limit('k' || :k, 1000000000, '1 hour');\n" \
    >"$NODE_A/limit_crdt_100k_keys.pgbench"
printf "UPDATE plain_limits SET n = n + 1 WHERE key = 'hot' RETURNING n <= 1000000000;\n" \
    >"$NODE_A/limit_plain_one_key.pgbench"
printf "\\set k random(1, 100000)\nUPDATE plain_limits SET n = n + 1 WHERE key = 'k' || :k RETURNING n <= 1000000000;\n" \
    >"$NODE_A/limit_plain_100k_keys.pgbench"
chmod 644 "$NODE_A"/*.pgbench
LIMIT_CASES="limit_plain_one_key limit_crdt_one_key limit_crdt_split_one_key limit_plain_100k_keys limit_crdt_100k_keys"
declare -A LIMIT_TPS
for round in $(seq 0 "$ROUNDS"); do    # round 0 is the warm-up
    for case in $LIMIT_CASES; do
        tps="$(PGBENCH_OPTIONS="-c synchronous_commit=off" pgbench_on -p "$PORT_A" -n -M prepared -c 2 -j 2 \
               -T "$PGBENCH_SECONDS" -f "$NODE_A/$case.pgbench" postgres | awk '/^tps/ { print $3 }')"
        echo "round $round $case: $tps tps"
        [ "$round" -gt 0 ] && LIMIT_TPS[$case]+="$tps"$'\n'
    done
done
for case in $LIMIT_CASES; do
    record time "$RATE_LIMIT_CASE" "$case" "$(printf '%s' "${LIMIT_TPS[$case]}" | stats)" tps
done
psql_at "$PORT_A" postgres -c "ALTER SYSTEM RESET fsync" -c "SELECT pg_reload_conf()" >/dev/null

log "WAL bytes per single-row update (1,000 updates, $ROUNDS interleaved rounds after a checkpoint and a warm-up)"
# One sample varies by a tenth with what the table's pages hold (pruning, page splits): medians.
psql_at "$PORT_A" postgres -c "CHECKPOINT" >/dev/null
declare -A WAL_BYTES
for round in $(seq 0 "$ROUNDS"); do    # round 0 is the warm-up: it takes the full-page images
    for table in plain_n crdt_n; do
        before="$(psql_at "$PORT_A" postgres -c "SELECT pg_current_wal_lsn()")"
        pgbench_on -p "$PORT_A" -n -c 1 -t 1000 -f "$NODE_A/$table.pgbench" postgres >/dev/null
        bytes="$(psql_at "$PORT_A" postgres -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$before') / 1000)")"
        echo "round $round $table: $bytes bytes per update"
        [ "$round" -gt 0 ] && WAL_BYTES[$table]+="$bytes"$'\n'
    done
done
for table in plain_n crdt_n; do
    record figure "WAL per single-row update" "$table" "$(printf '%s' "${WAL_BYTES[$table]}" | stats)" bytes
done

log "apply: $APPLY_UPDATES updates made while the subscription is disabled, then the catch-up ($APPLY_ROUNDS rounds)"
for table in "${APPLY_TABLES[@]}"; do
    binary=false
    [[ "$table" == *b ]] && binary=true
    psql_at "$PORT_A" postgres -c "CREATE PUBLICATION pub_$table FOR TABLE $table" >/dev/null
    psql_at "$PORT_B" postgres -c "CREATE SUBSCRIPTION sub_$table
        CONNECTION 'host=127.0.0.1 port=$PORT_A dbname=postgres user=postgres'
        PUBLICATION pub_$table WITH (copy_data = false, enabled = false, binary = $binary)" >/dev/null 2>&1
    # Each catch-up starts from a VACUUM of its own; autovacuum would strike some rounds only.
    for port in "$PORT_A" "$PORT_B"; do
        psql_at "$port" postgres -c "ALTER TABLE $table SET (autovacuum_enabled = off)" >/dev/null
    done
done
subscription_mode() { # subscription_mode TABLE: tables named *b replicate in binary
    if [[ "$1" == *b ]]; then echo "binary subscription"; else echo "text subscription"; fi
}
worker_running() {
    [ -n "$(psql_at "$PORT_B" postgres -c "SELECT pid FROM pg_stat_subscription WHERE subname = '$1' AND pid IS NOT NULL")" ]
}
slot_active() {
    [ "$(psql_at "$PORT_A" postgres -c "SELECT active FROM pg_replication_slots WHERE slot_name = '$1'")" = t ]
}
wait_until_applied() { # wait_until_applied TABLE TEXT: returns once row 1 of TABLE on B reads TEXT
    # One session on the subscriber polling every 5 ms, committing between polls so that it
    # holds back no snapshot (which would keep the apply worker from pruning dead rows).
    psql_at "$PORT_B" postgres -c "DO \$\$ BEGIN
        WHILE (SELECT n::text FROM $1 WHERE id = 1) IS DISTINCT FROM '$2' LOOP
            COMMIT;
            PERFORM pg_catalog.pg_sleep(0.005);
        END LOOP; END \$\$" >/dev/null
}
cpu_us_per_update() { # cpu_us_per_update PID UPDATES: the process's CPU time (it started with the catch-up) per update
    # Nothing if the process is gone (or was not found): the round then has no CPU figure.
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 0
    awk -v tick="$(getconf CLK_TCK)" -v n="$2" \
        '{ printf "%.1f", ($14 + $15) * 1e6 / tick / n }' "/proc/$1/stat"
}
catch_up() { # catch_up TABLE UPDATES: UPDATES updates on A with the subscription disabled, then
    # the timed catch-up on B. Sets CAUGHT_UP_SECONDS, APPLY_WORKER_PID and the CPU time per
    # update of the apply worker and the walsender (APPLY_WORKER_CPU, WALSENDER_CPU).
    local table="$1" updates="$2" last started
    # A new slot: the walsender decodes this catch-up's updates only. An advanced slot kept
    # its restart point up to 70 MB behind, so the walsender first decoded, and skipped, the
    # other tables' WAL: up to half a second that varied from round to round, not by table.
    while slot_active "sub_$table"; do sleep 0.05; done
    psql_at "$PORT_A" postgres -c "SELECT pg_catalog.pg_drop_replication_slot('sub_$table')" \
        -c "SELECT pg_catalog.pg_create_logical_replication_slot('sub_$table', 'pgoutput')" >/dev/null
    # Generating the updates is not measured: asynchronous commits make it quicker, with
    # the same WAL to replicate.
    PGBENCH_OPTIONS="-c synchronous_commit=off" pgbench_on -p "$PORT_A" -n -c 2 -j 2 \
        -t $((updates / 2)) -f "$NODE_A/$table.pgbench" postgres >/dev/null
    # The last update, to row 1, marks the end: updates apply in commit order, so once row 1
    # reads as on A, all of them are applied.
    last="$(psql_at "$PORT_A" postgres -c "UPDATE $table SET n = n + 1 WHERE id = 1 RETURNING n::text")"
    # The same start for every variant: no dead rows left by the previous round, and no
    # checkpoint due in the middle of the catch-up.
    psql_at "$PORT_B" postgres -c "VACUUM $table" -c "CHECKPOINT" >/dev/null
    started="$(date +%s.%N)"
    psql_at "$PORT_B" postgres -c "ALTER SUBSCRIPTION sub_$table ENABLE" >/dev/null
    wait_until_applied "$table" "$last"
    CAUGHT_UP_SECONDS="$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { printf "%.3f", a - b }')"
    # CPU of the two processes that did the work, steadier than the rate on a shared machine.
    APPLY_WORKER_PID="$(psql_at "$PORT_B" postgres -c "SELECT pid FROM pg_stat_subscription WHERE subname = 'sub_$table'")"
    APPLY_WORKER_CPU="$(cpu_us_per_update "$APPLY_WORKER_PID" "$((updates + 1))")"
    WALSENDER_CPU="$(cpu_us_per_update "$(psql_at "$PORT_A" postgres -c "SELECT pid FROM pg_stat_replication WHERE application_name = 'sub_$table'")" "$((updates + 1))")"
    psql_at "$PORT_B" postgres -c "ALTER SUBSCRIPTION sub_$table DISABLE" >/dev/null
    while worker_running "sub_$table"; do sleep 0.05; done
}
# The cases' names in the results, for the rows and for the ratios under Targets.
RATE_CASE="apply rate (updates/s)"
INSTRUCTIONS_CASE="apply worker instructions per update (callgrind)"
declare -A RATE APPLY_CPU SENDER_CPU
for round in $(seq 0 "$APPLY_ROUNDS"); do    # round 0 is the warm-up
    for table in "${APPLY_TABLES[@]}"; do
        catch_up "$table" "$APPLY_UPDATES"
        rate="$(awk -v n="$((APPLY_UPDATES + 1))" -v s="$CAUGHT_UP_SECONDS" 'BEGIN { printf "%d", n / s }')"
        echo "round $round $table: ${CAUGHT_UP_SECONDS}s, $rate updates/s; CPU per update: apply worker ${APPLY_WORKER_CPU} µs, walsender ${WALSENDER_CPU} µs"
        if [ "$round" -gt 0 ]; then
            RATE[$table]+="$rate"$'\n'
            [ -n "$APPLY_WORKER_CPU" ] && APPLY_CPU[$table]+="$APPLY_WORKER_CPU"$'\n'
            [ -n "$WALSENDER_CPU" ] && SENDER_CPU[$table]+="$WALSENDER_CPU"$'\n'
        fi
    done
done
for table in "${APPLY_TABLES[@]}"; do
    mode="$(subscription_mode "$table")"
    record time "$RATE_CASE, $mode" "$table" "$(printf '%s' "${RATE[$table]}" | stats)" "updates/s"
    if [ -n "${APPLY_CPU[$table]:-}" ]; then
        record time "catch-up CPU per update, apply worker, $mode" "$table" "$(printf '%s' "${APPLY_CPU[$table]}" | stats)" "µs"
    fi
    if [ -n "${SENDER_CPU[$table]:-}" ]; then
        record time "catch-up CPU per update, walsender, $mode" "$table" "$(printf '%s' "${SENDER_CPU[$table]}" | stats)" "µs"
    fi
done
for table in crdt_n crdt_nb; do
    same="$(for port in "$PORT_A" "$PORT_B"; do
                psql_at "$port" postgres -c "SELECT md5(string_agg(n::text || crdt_clock::text, ',' ORDER BY id)) FROM $table"
            done | sort -u | wc -l)"
    [ "$same" = 1 ] || { echo "apply benchmark: the nodes differ on $table after catching up" >&2; exit 1; }
done

log "apply: the apply worker's instructions per update (callgrind)"
# The subscriber again, under callgrind, every process writing its own profile. Two catch-ups
# per table, of 1,000 and of 5,000 updates, each in a fresh apply worker: the difference of
# their totals over 4,000 updates is the cost of one, without the worker's start-up.
as_postgres "$PG_BIN/pg_ctl" -D "$NODE_B/data" -m fast -w stop >/dev/null
as_postgres mkdir "$NODE_B/callgrind"
as_postgres valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$NODE_B/callgrind/%p" \
    "$PG_BIN/postgres" -D "$NODE_B/data" -p "$PORT_B" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$NODE_B" -c wal_level=logical >"$NODE_B/callgrind.log" 2>&1 &
until as_postgres "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT_B"; do sleep 1; done
per_row() { # per_row LARGE SMALL ROWS: the instructions of one row, of ROWS more in LARGE than SMALL
    awk -v a="$1" -v b="$2" -v rows="$3" 'BEGIN { printf "%d", (a - b) / rows }'
}
instructions_of() { # instructions_of PID: the total of a process's profile
    # valgrind writes the profile as the process exits, which can be after the subscription
    # stops listing its apply worker: wait for the totals line (at most a minute).
    local profile="$NODE_B/callgrind/$1" waited=0
    until as_postgres grep -qs '^totals:' "$profile"; do
        [ "$waited" -lt 600 ] || { echo "no callgrind profile for process $1" >&2; return 1; }
        sleep 0.1
        waited=$((waited + 1))
    done
    as_postgres awk '/^totals:/ { print $2 }' "$profile"
}
for table in "${APPLY_TABLES[@]}"; do
    mode="$(subscription_mode "$table")"
    catch_up "$table" 1000
    small="$(instructions_of "$APPLY_WORKER_PID")"
    catch_up "$table" 5000
    large="$(instructions_of "$APPLY_WORKER_PID")"
    per_update="$(per_row "$large" "$small" 4000)"
    echo "$table: $per_update instructions per update"
    record figure "$INSTRUCTIONS_CASE, $mode" "$table" "$per_update"$'\t'"$per_update"$'\t'"$per_update" instructions
done

LOCAL_CASE="local UPDATE, instructions per row (callgrind, backend)"
log "$LOCAL_CASE"
# In ordinary sessions on the subscriber, still under callgrind, its subscriptions disabled:
# per table, one backend updating the 1,000 rows once and one updating them five times; the
# difference over 4,000 row updates is the cost of one, without the session's start-up and its
# first catalog reads. plain_t has the do-nothing C trigger.
session_instructions() { # session_instructions PASSES PASS: sets TOTAL, the total instructions of
    # one backend that runs PASS (a function adding one pass's statements to PASS_SQL) PASSES times.
    # Not run in a subshell: a PASS may move NEXT_KEY on for the next session.
    PASS_SQL=(-c "SELECT pg_catalog.pg_backend_pid()")
    local pass pid
    for pass in $(seq "$1"); do "$2"; done
    pid="$(psql_at "$PORT_B" postgres "${PASS_SQL[@]}" | head -n 1)"
    TOTAL="$(instructions_of "$pid")"
}
update_pass() { PASS_SQL+=(-c "UPDATE $TABLE SET n = n + 1"); }
for TABLE in plain_n plain_t crdt_n; do
    # The catch-ups left dead versions behind, as many as each table's rounds made: pruning
    # them would land in the measured sessions, by a table's history rather than its path.
    psql_at "$PORT_B" postgres -c "VACUUM $TABLE" >/dev/null
    session_instructions 1 update_pass; small="$TOTAL"
    session_instructions 5 update_pass; large="$TOTAL"
    per_update="$(per_row "$large" "$small" 4000)"
    echo "$TABLE: $per_update instructions per row updated"
    record figure "$LOCAL_CASE" "$TABLE" "$per_update"$'\t'"$per_update"$'\t'"$per_update" instructions
done

# INSERT and DELETE the same way, on tables of their own: per session, passes of 2,000 new keys
# each (INSERT ... SELECT), or of 2,000 new keys inserted and then deleted; a session of one pass
# against one of five gives the cost per row, and the DELETE's is the second less the first.
LOCAL_INSERT_CASE="local INSERT, instructions per row (callgrind, backend)"
LOCAL_DELETE_CASE="local DELETE, instructions per row (callgrind, backend)"
log "$LOCAL_INSERT_CASE; $LOCAL_DELETE_CASE"
psql_at "$PORT_B" postgres -c "CREATE TABLE ins_plain (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
    CREATE TABLE ins_crdt (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0);
    SELECT crdt.enable('ins_crdt');" >/dev/null
NEXT_KEY=0
insert_pass() {
    PASS_SQL+=(-c "INSERT INTO $TABLE (id) SELECT g FROM generate_series($((NEXT_KEY + 1)), $((NEXT_KEY + 2000))) g")
    NEXT_KEY=$((NEXT_KEY + 2000))
}
insert_delete_pass() { # the keys insert_pass has just inserted, deleted
    insert_pass
    PASS_SQL+=(-c "DELETE FROM $TABLE WHERE id BETWEEN $((NEXT_KEY - 1999)) AND $NEXT_KEY")
}
for kind in plain crdt; do
    TABLE="ins_$kind"
    session_instructions 1 insert_pass; small="$TOTAL"
    session_instructions 5 insert_pass; large="$TOTAL"
    insert="$(per_row "$large" "$small" 8000)"
    session_instructions 1 insert_delete_pass; small="$TOTAL"
    session_instructions 5 insert_delete_pass; large="$TOTAL"
    delete=$(($(per_row "$large" "$small" 8000) - insert))
    echo "$TABLE: $insert instructions per row inserted, $delete per row deleted"
    record figure "$LOCAL_INSERT_CASE" "$TABLE" "$insert"$'\t'"$insert"$'\t'"$insert" instructions
    record figure "$LOCAL_DELETE_CASE" "$TABLE" "$delete"$'\t'"$delete"$'\t'"$delete" instructions
done

# A new session's first write to a table: a session of one single-row INSERT against a session
# that runs nothing but what every session here runs. The CRDT figure includes loading the library and reading the table's shape (its
# key, columns and statements), which a session pays once per table: what an application that
# connects per request pays on every request.
FIRST_WRITE_CASE="a new session's first single-row INSERT, instructions (callgrind, backend)"
log "$FIRST_WRITE_CASE"
nothing_pass() { :; }
single_insert_pass() {
    NEXT_KEY=$((NEXT_KEY + 1))
    PASS_SQL+=(-c "INSERT INTO $TABLE (id) VALUES ($NEXT_KEY)")
}
for kind in plain crdt; do
    TABLE="ins_$kind"
    session_instructions 1 nothing_pass; small="$TOTAL"
    session_instructions 1 single_insert_pass; large="$TOTAL"
    first=$((large - small))
    echo "$TABLE: $first instructions for a session's first INSERT"
    record figure "$FIRST_WRITE_CASE" "$TABLE" "$first"$'\t'"$first"$'\t'"$first" instructions
done

log "bulk statements (scripts/bench_bulk.sh)"
BULK="$NODE_A/bulk.md"
BENCH_BULK_INSTALLED=1 bash "$REPO_ROOT/scripts/bench_bulk.sh" >"$BULK"
cat "$BULK"

log "writing this major's section of BENCHMARKS.md"
value_of() { awk -F'\t' -v b="$1" -v v="$2" '$2 == b && $3 == v { print $4; exit }' "$RESULTS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mode_ratio() { # mode_ratio CASE MODE A B: CASE's figure for table A over table B, MODE text or binary
    ratio "$(value_of "$1, $2 subscription" "$3")" "$(value_of "$1, $2 subscription" "$4")"
}
bulk_ratio() { # bulk_ratio CASE: the CRDT/plain column of CASE's row in the bulk table
    awk -F'|' -v c="$1" '{ gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $6) } $2 == c { print $6; exit }' "$BULK"
}
bulk_rows() { awk -F'|' '/rows in one statement/ { split($2, w, " "); print w[1]; exit }' "$BULK"; }
controls() { # controls DESCRIPTION TABLE: the Targets row of a control table, against the plain one
    echo "| (control, no target) $1: rate text, binary; instructions text, binary | $(mode_ratio "$RATE_CASE" text "$2" plain_n) ×, $(mode_ratio "$RATE_CASE" binary "$2b" plain_nb) ×; $(mode_ratio "$INSTRUCTIONS_CASE" text plain_n "$2") ×, $(mode_ratio "$INSTRUCTIONS_CASE" binary plain_nb "$2b") × |"
}
{
    echo "## PostgreSQL $("$PG_CONFIG" --version | awk '{print $2}')"
    echo
    echo "Times are medians of interleaved rounds after a warm-up ($MERGE_ROUNDS for the in-database cases, $ROUNDS for pgbench, $APPLY_ROUNDS for the catch-ups); min–max is the spread."
    echo
    echo "| case | variant | median | min–max | unit |"
    echo "| --- | --- | ---: | ---: | --- |"
    awk -F'\t' '{ for (i = 2; i <= 3; i++) gsub(/\|/, "\\|", $i)
                  spread = ($5 == $6) ? "" : $5 "–" $6
                  printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, spread, $7 }' "$RESULTS"
    echo
    echo "### Targets"
    echo
    echo "| target | measured |"
    echo "| --- | --- |"
    echo "| increment TPS, CRDT ≥ 0.95 × plain (bound by the commit's fsync) | $(ratio "$(value_of "increments (pgbench TPS)" crdt_n)" "$(value_of "increments (pgbench TPS)" plain_n)") × |"
    echo "| increment TPS, CPU-bound, CRDT ≥ 0.90 × plain | $(ratio "$(value_of "$CPU_CASE" crdt_n)" "$(value_of "$CPU_CASE" plain_n)") × |"
    echo "| (control, no target) increment TPS, CPU-bound, plain with a do-nothing C trigger against plain | $(ratio "$(value_of "$CPU_CASE" plain_t)" "$(value_of "$CPU_CASE" plain_n)") × |"
    echo "| (no target) local INSERT and DELETE, instructions per row (callgrind), CRDT against plain | $(ratio "$(value_of "$LOCAL_INSERT_CASE" ins_crdt)" "$(value_of "$LOCAL_INSERT_CASE" ins_plain)") ×, $(ratio "$(value_of "$LOCAL_DELETE_CASE" ins_crdt)" "$(value_of "$LOCAL_DELETE_CASE" ins_plain)") × |"
    echo "| local UPDATE, instructions per row (callgrind), CRDT ≤ 1.5 × plain | $(ratio "$(value_of "$LOCAL_CASE" crdt_n)" "$(value_of "$LOCAL_CASE" plain_n)") × (plain with a do-nothing C trigger: $(ratio "$(value_of "$LOCAL_CASE" plain_t)" "$(value_of "$LOCAL_CASE" plain_n)") ×) |"
    echo "| apply, instructions per replicated update (callgrind), plain against CRDT: binary ≥ 0.85 ×, text ≥ 0.80 × | $(mode_ratio "$INSTRUCTIONS_CASE" binary plain_nb crdt_nb) ×, $(mode_ratio "$INSTRUCTIONS_CASE" text plain_n crdt_n) × |"
    echo "| apply worker CPU per replicated update, CRDT ≤ 1.3 × plain: binary, text | $(mode_ratio "catch-up CPU per update, apply worker" binary crdt_nb plain_nb) ×, $(mode_ratio "catch-up CPU per update, apply worker" text crdt_n plain_n) × |"
    echo "| WAL per single-row update, CRDT ≤ 1.5 × plain | $(ratio "$(value_of "WAL per single-row update" crdt_n)" "$(value_of "WAL per single-row update" plain_n)") × |"
    echo "| (no target) apply rate, CRDT against plain: binary, text | $(mode_ratio "$RATE_CASE" binary crdt_nb plain_nb) ×, $(mode_ratio "$RATE_CASE" text crdt_n plain_n) × |"
    controls "a plain table with a do-nothing BEFORE UPDATE trigger (\`suppress_redundant_updates_trigger\`), against the plain table — what a row trigger costs by itself" plain_t
    controls "the same trigger on a plain table padded to the CRDT rows' width, against the plain table — a merge from a trigger that cost nothing" plain_wt
    doc_merge="$(value_of "doc merge vs PL/pgSQL, 50,000 pairs of 10-property docs" "crdt.merge(doc, doc)")"
    doc_concat="$(value_of "doc merge vs PL/pgSQL, 50,000 pairs of 10-property docs" "jsonb || jsonb (plain objects)")"
    newer_merge="$(value_of "doc merge, one side newer, 50,000 pairs of 10-property docs" "crdt.merge(doc, doc)")"
    newer_concat="$(value_of "doc merge, one side newer, 50,000 pairs of 10-property docs" "jsonb || jsonb")"
    counter_crdt="$(value_of "counter merge vs PL/pgSQL, 50,000 pairs of 3-node counters" "crdt.merge(counter, counter)")"
    counter_plpgsql="$(value_of "counter merge vs PL/pgSQL, 50,000 pairs of 3-node counters" "plpgsql_counter_merge(jsonb, jsonb)")"
    echo "| crdt.digest of 1,000,000 rows in a few seconds (and against a scan hashing each row) | $(awk -v ms="$(value_of "digest of 1,000,000 rows" "crdt.digest(big, 256)")" 'BEGIN { printf "%.1f s", ms / 1000 }') ($(ratio "$(value_of "digest of 1,000,000 rows" "crdt.digest(big, 256)")" "$(value_of "digest of 1,000,000 rows" "scan hashing each row as text (floor)")") ×) |"
    echo "| (no target) rate limit checks/s, crdt.rate_limit against a plain UPDATE ... RETURNING: one key, one key in split mode, 100,000 keys | $(ratio "$(value_of "$RATE_LIMIT_CASE" limit_crdt_one_key)" "$(value_of "$RATE_LIMIT_CASE" limit_plain_one_key)") ×, $(ratio "$(value_of "$RATE_LIMIT_CASE" limit_crdt_split_one_key)" "$(value_of "$RATE_LIMIT_CASE" limit_plain_one_key)") ×, $(ratio "$(value_of "$RATE_LIMIT_CASE" limit_crdt_100k_keys)" "$(value_of "$RATE_LIMIT_CASE" limit_plain_100k_keys)") × |"
    vacuum_ms="$(value_of "expired rate-limit windows, 1,000,000 keys" "crdt.rate_limit_vacuum()")"
    echo "| (no target) crdt.rate_limit_vacuum() of 1,000,000 expired windows (and against a plain DELETE); rows and tombstones left | $(awk -v ms="$vacuum_ms" 'BEGIN { printf "%.1f s", ms / 1000 }') ($(ratio "$vacuum_ms" "$(value_of "expired rate-limit windows, 1,000,000 keys" "DELETE from a plain table (floor)")") ×); $(value_of "expired rate-limit windows, 1,000,000 keys" "rows and tombstones left after the last round") |"
    echo "| bulk UPDATE of $(bulk_rows) rows, time per row, CRDT ≤ 1.5 × plain | $(bulk_ratio update) |"
    echo "| bulk INSERT, COPY (text, binary) and DELETE, time per row, CRDT ≤ 2 × plain | $(bulk_ratio insert), $(bulk_ratio copy_text), $(bulk_ratio copy_binary), $(bulk_ratio delete) |"
    echo "| counter merge ≥ 30× faster than the PL/pgSQL merge | $(ratio "$counter_plpgsql" "$counter_crdt") × faster |"
    echo "| a counter ≤ 8 + 24·k bytes for k nodes | see the size rows above (target in parentheses) |"
    echo "| doc overhead ≤ 24 bytes per property | see \"crdt.doc overhead per property\" above |"
    echo "| 10-property doc merge ≤ 0.7 × the time of \`jsonb \\|\\| jsonb\`: docs both replicas wrote to | $(ratio "$doc_merge" "$doc_concat") × the time of \`jsonb \\|\\| jsonb\` |"
    echo "| the same, one side newer (it holds the merge) | $(ratio "$newer_merge" "$newer_concat") × the time of \`jsonb \\|\\| jsonb\` |"
    echo
    echo "### Bulk statements"
    echo
    echo "\`scripts/bench_bulk.sh\`: one statement of many rows on a CRDT table (counter, doc, text) against the"
    echo "same on a plain table (bigint, jsonb, text), medians of ${BENCH_BULK_ROUNDS:-3} rounds; then one transaction of as"
    echo "many rows applied by a subscriber (binary), from the publisher's commit until the subscriber has it."
    cat "$BULK"
} >"$BENCH_SECTION"
