-- crdt 0.1.0 → 0.2.0. Run by `ALTER EXTENSION crdt UPDATE`; never by hand.
--
-- Takes a 0.1.0 install to exactly what `CREATE EXTENSION crdt` creates in 0.2.0: every change
-- to the SQL surface made since 0.1.0 (new or dropped objects, changed function attributes,
-- casts, operators, aggregates, grants, comments) is written here, in order, as the statements
-- that turn the old objects into the new ones. tests/replication/tests/upgrade.rs compares the
-- upgraded extension with a fresh install, object by object, and names what differs.
--
-- Objects are unqualified, as in the install script: PostgreSQL runs this file with
-- search_path = crdt. Once 0.2.0 is released this file is frozen.
\echo Use "ALTER EXTENSION crdt UPDATE TO '0.2.0'" to load this file. \quit

-- Deletes with tombstones (docs/design.md, "A DELETE"): the trigger functions, crdt.deletions
-- and its trigger.
-- Tables enabled under 0.1.0 get the delete and TRUNCATE triggers when crdt.enable is run on
-- them again.
CREATE FUNCTION "record_local_deletes"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'record_local_deletes_wrapper';

CREATE FUNCTION "refuse_truncate"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'refuse_truncate_wrapper';

CREATE FUNCTION "skip_replicated_delete"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'skip_replicated_delete_wrapper';

CREATE FUNCTION "apply_replicated_deletion"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'apply_replicated_deletion_wrapper';

-- The hash that leads the key of crdt.deletions (src/table/deletions.rs computes it the same way).
CREATE FUNCTION tombstone_key_hash(table_name text, key jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.jsonb_hash_extended(key, pg_catalog.hashtext(table_name COLLATE pg_catalog."C"));
COMMENT ON FUNCTION tombstone_key_hash(text, jsonb) IS
    'The key_hash of a tombstone in crdt.deletions: a hash of its table_name and key.';
CREATE TABLE deletions (
    table_name text NOT NULL,
    key jsonb NOT NULL,
    hlc numeric(20, 0) NOT NULL CHECK (hlc >= 0 AND hlc <= 18446744073709551615),
    node uuid NOT NULL,
    key_hash bigint NOT NULL,
    CONSTRAINT deletions_key_hash_check CHECK (key_hash = tombstone_key_hash(table_name, key)),
    PRIMARY KEY (key_hash, table_name, key, hlc, node)
);
COMMENT ON TABLE deletions IS 'Tombstones of rows deleted from CRDT tables; publish it with them.';
REVOKE ALL ON deletions FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('deletions', '');
CREATE TRIGGER zz_crdt_apply_deletion BEFORE INSERT ON deletions
    FOR EACH ROW EXECUTE FUNCTION apply_replicated_deletion();
ALTER TABLE deletions ENABLE REPLICA TRIGGER zz_crdt_apply_deletion;

-- Counter amounts as drivers bind them: smallint, numeric (whole numbers) and text (an untyped
-- parameter or literal) besides integer and bigint, as operators and assignment casts; and a
-- plain number as a counter's text input ('5', credited to this node), so its input function
-- reads a setting now: STABLE.
ALTER FUNCTION counter_in(cstring) STABLE;

CREATE FUNCTION "counter_plus_smallint"("counter" counter, "amount" smallint) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_plus_smallint_wrapper';
CREATE FUNCTION "counter_minus_smallint"("counter" counter, "amount" smallint) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_minus_smallint_wrapper';
CREATE FUNCTION "counter_plus_numeric"("counter" counter, "amount" numeric) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_plus_numeric_wrapper';
CREATE FUNCTION "counter_minus_numeric"("counter" counter, "amount" numeric) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_minus_numeric_wrapper';
CREATE FUNCTION "counter_plus_text"("counter" counter, "amount" text) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_plus_text_wrapper';
CREATE FUNCTION "counter_minus_text"("counter" counter, "amount" text) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_minus_text_wrapper';
CREATE OPERATOR + (PROCEDURE = "counter_plus_smallint", LEFTARG = counter, RIGHTARG = smallint);
CREATE OPERATOR - (PROCEDURE = "counter_minus_smallint", LEFTARG = counter, RIGHTARG = smallint);
CREATE OPERATOR + (PROCEDURE = "counter_plus_numeric", LEFTARG = counter, RIGHTARG = numeric);
CREATE OPERATOR - (PROCEDURE = "counter_minus_numeric", LEFTARG = counter, RIGHTARG = numeric);
CREATE OPERATOR + (PROCEDURE = "counter_plus_text", LEFTARG = counter, RIGHTARG = text);
CREATE OPERATOR - (PROCEDURE = "counter_minus_text", LEFTARG = counter, RIGHTARG = text);

CREATE FUNCTION "counter_from_smallint"("value" smallint) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_from_smallint_wrapper';
CREATE FUNCTION "counter_from_numeric"("value" numeric) RETURNS counter
	STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counter_from_numeric_wrapper';
CREATE CAST (smallint AS counter) WITH FUNCTION counter_from_smallint(smallint) AS ASSIGNMENT;
CREATE CAST (numeric AS counter) WITH FUNCTION counter_from_numeric(numeric) AS ASSIGNMENT;

-- Every type that merges now gets its merge_agg from one declaration, with one wording.
COMMENT ON AGGREGATE merge_agg(doc) IS 'Merges doc states from any number of replicas.';

-- Tombstone collection (docs/tombstones.md). Heartbeats: each node's latest, sent by
-- crdt.vacuum_tombstones() through the same subscriptions as the data; publish this table with
-- the CRDT tables and crdt.deletions. A receiver records one that came straight from its node
-- (via = node) in crdt.peers.
CREATE TABLE heartbeats (
    node uuid PRIMARY KEY,
    -- the node that wrote this copy: the sender, or one that applied it and published it again
    via uuid NOT NULL,
    -- HLC values (unsigned 64-bit): see crdt_core::stability
    covers numeric(20, 0) NOT NULL,
    received numeric(20, 0) NOT NULL,
    settled numeric(20, 0) NOT NULL,
    members uuid[] NOT NULL,
    sent_at timestamptz NOT NULL
);
COMMENT ON TABLE heartbeats IS 'Heartbeats of tombstone collection; publish it with the CRDT tables.';
REVOKE ALL ON heartbeats FROM PUBLIC;
-- What this node heard from each node (and its own latest heartbeat, in its own row). Local:
-- never published, and replicated changes to it are ignored.
CREATE TABLE peers (
    node uuid PRIMARY KEY,
    covers numeric(20, 0) NOT NULL DEFAULT 0,
    received numeric(20, 0) NOT NULL DEFAULT 0,
    -- for this node's own row, the largest it has sent
    settled numeric(20, 0) NOT NULL DEFAULT 0,
    members uuid[] NOT NULL DEFAULT '{}',
    heard_at timestamptz,
    -- crdt.forget_node: left the mesh for good, neither waited for nor counted
    forgotten boolean NOT NULL DEFAULT false,
    -- this node's own row: the next covers' candidate time (wall-clock ms) and the
    -- transactions that were running then
    candidate_ms bigint,
    candidate_xids xid8[]
);
COMMENT ON TABLE peers IS 'What this node heard from each node of the mesh (tombstone collection).';
REVOKE ALL ON peers FROM PUBLIC;
-- Read by the merge triggers, which on PostgreSQL 16 and later run as each table's owner.
GRANT SELECT ON peers TO PUBLIC;

-- A replicated change (trigger depth 1) is skipped; what receive_heartbeat writes from within
-- the apply worker (depth 2) goes through.
CREATE FUNCTION ignore_replicated_row() RETURNS trigger
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF pg_catalog.pg_trigger_depth() > 1 THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION ignore_replicated_row() IS 'Skips a replicated change to a table of tombstone collection.';

CREATE FUNCTION receive_heartbeat() RETURNS trigger
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    own uuid := crdt.node_id();
BEGIN
    IF NEW.node = own OR NEW.via <> NEW.node THEN
        -- This node's own heartbeat back through another node, or a copy another node published
        -- again (origin = any): not straight from its node, so it proves nothing, and is dropped
        -- here so that it goes no further.
        RETURN NULL;
    END IF;
    -- Straight from its node: everything that node committed before it has arrived.
    INSERT INTO crdt.peers AS p (node, covers, received, settled, members, heard_at)
    VALUES (NEW.node, NEW.covers, NEW.received, NEW.settled, NEW.members, now())
    ON CONFLICT (node) DO UPDATE
        SET covers = excluded.covers, received = excluded.received, settled = excluded.settled,
            members = excluded.members, heard_at = excluded.heard_at
        WHERE NOT p.forgotten;
    -- Kept as one row per node, updated in place: replicated DELETEs and UPDATEs of this table
    -- are skipped (zz_crdt_local_only), so the sender's DELETE before each heartbeat, and what
    -- another node publishes again of its own copy, change nothing here.
    UPDATE crdt.heartbeats h
        SET covers = NEW.covers, received = NEW.received, settled = NEW.settled,
            members = NEW.members, sent_at = NEW.sent_at
        WHERE h.node = NEW.node;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    -- Published again from here (origin = any) it is no longer straight from its node.
    NEW.via := own;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION receive_heartbeat() IS 'Records a heartbeat a subscription applies (tombstone collection).';
CREATE TRIGGER zz_crdt_receive_heartbeat BEFORE INSERT ON heartbeats
    FOR EACH ROW EXECUTE FUNCTION receive_heartbeat();
ALTER TABLE heartbeats ENABLE REPLICA TRIGGER zz_crdt_receive_heartbeat;
CREATE TRIGGER zz_crdt_local_only BEFORE UPDATE OR DELETE ON heartbeats
    FOR EACH ROW EXECUTE FUNCTION ignore_replicated_row();
ALTER TABLE heartbeats ENABLE REPLICA TRIGGER zz_crdt_local_only;

CREATE TRIGGER zz_crdt_local_only BEFORE INSERT OR UPDATE OR DELETE ON peers
    FOR EACH ROW EXECUTE FUNCTION ignore_replicated_row();
ALTER TABLE peers ENABLE REPLICA TRIGGER zz_crdt_local_only;

CREATE FUNCTION forget_node(node uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF node = crdt.node_id() THEN
        RAISE EXCEPTION 'a node cannot forget itself'
            USING ERRCODE = '22023', HINT = 'Run crdt.forget_node on the nodes that stay.';
    END IF;
    INSERT INTO crdt.peers AS p (node, forgotten) VALUES (node, true)
    ON CONFLICT ON CONSTRAINT peers_pkey DO UPDATE SET forgotten = true;
END
$$;
COMMENT ON FUNCTION forget_node(uuid) IS
    'Stops waiting for a node that left the mesh for good (drop its subscriptions first).';
REVOKE ALL ON FUNCTION forget_node(uuid) FROM PUBLIC;

CREATE FUNCTION "vacuum_tombstones"() RETURNS bigint
	STRICT VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'vacuum_tombstones_wrapper';

-- Divergence checked from SQL: crdt.digest and crdt.digest_rows (src/digest.rs).
-- The primary key of a table as the jsonb object crdt.deletions names keys with, as an SQL
-- expression over the row alias t: jsonb_build_object('id', t.id, ...). 42P10 without a key.
CREATE FUNCTION key_json_expression(tab regclass) RETURNS text
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expression text;
BEGIN
    SELECT 'pg_catalog.jsonb_build_object(' ||
           string_agg(quote_literal(a.attname) || '::pg_catalog.text, t.' || quote_ident(a.attname), ', '
                      ORDER BY k.position) || ')'
    INTO expression
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = tab AND i.indisprimary;
    IF expression IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', tab USING ERRCODE = '42P10';
    END IF;
    RETURN expression;
END
$$;
COMMENT ON FUNCTION key_json_expression(regclass) IS
    'The primary key of a row t as a jsonb object, as an SQL expression (crdt.digest).';

-- A row of a table as text, its columns in the order of their names (not of their numbers,
-- which differ between nodes that added them in another order), as an SQL expression over the
-- row alias t.
CREATE FUNCTION row_text_expression(tab regclass) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
RETURN (SELECT 'ROW(' || string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY a.attname COLLATE "C")
               || ')::pg_catalog.text'
        FROM pg_attribute a
        WHERE a.attrelid = tab AND a.attnum > 0 AND NOT a.attisdropped);
COMMENT ON FUNCTION row_text_expression(regclass) IS
    'A row t as text, its columns in the order of their names, as an SQL expression (crdt.digest).';

CREATE FUNCTION digest(tab regclass, buckets int DEFAULT 256)
    RETURNS TABLE (bucket int, rows bigint, digest text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF buckets < 1 THEN
        RAISE EXCEPTION 'buckets must be at least 1, not %', buckets USING ERRCODE = '22023';
    END IF;
    -- Two 64-bit hashes of each row's text (crdt.row_text_expression), combined in an order that
    -- does not matter (XOR and a sum): no sort, so a million rows take seconds.
    RETURN QUERY EXECUTE format(
        'SELECT b, pg_catalog.count(*),
                pg_catalog.md5(pg_catalog.count(*)::pg_catalog.text || '':'' || pg_catalog.bit_xor(h1)::pg_catalog.text
                               || '':'' || pg_catalog.sum(h2::pg_catalog.numeric)::pg_catalog.text)
         FROM (SELECT (((pg_catalog.jsonb_hash_extended(k, 0) %% $1) + $1) %% $1)::pg_catalog.int4 AS b,
                      pg_catalog.hashtextextended(r, 0) AS h1, pg_catalog.hashtextextended(r, 1) AS h2
               FROM (SELECT %s AS k, %s AS r FROM %s t) s) d
         GROUP BY b ORDER BY b',
        crdt.key_json_expression(tab), crdt.row_text_expression(tab), tab) USING buckets::bigint;
END
$$;
COMMENT ON FUNCTION digest(regclass, int) IS
    'A hash per bucket of the primary key space over every column: equal on two nodes exactly when their rows are.';

CREATE FUNCTION digest_rows(tab regclass, bucket int, buckets int DEFAULT 256)
    RETURNS TABLE (key jsonb, digest text, "row" jsonb)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF buckets < 1 OR bucket < 0 OR bucket >= buckets THEN
        RAISE EXCEPTION 'bucket % is not one of 0 to % - 1', bucket, buckets USING ERRCODE = '22023';
    END IF;
    -- The same two hashes of each row as crdt.digest, as hex.
    RETURN QUERY EXECUTE format(
        'SELECT k, pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.hashtextextended(r, 0)), 16, ''0'')
                   || pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.hashtextextended(r, 1)), 16, ''0''),
                j
         FROM (SELECT %s AS k, %s AS r, pg_catalog.to_jsonb(t) AS j FROM %s t) s
         WHERE ((pg_catalog.jsonb_hash_extended(k, 0) %% $2) + $2) %% $2 = $1
         ORDER BY k',
        crdt.key_json_expression(tab), crdt.row_text_expression(tab), tab) USING bucket::bigint, buckets::bigint;
END
$$;
COMMENT ON FUNCTION digest_rows(regclass, int, int) IS
    'The rows of one bucket of crdt.digest: key, hash and the row as crdt.merge_row takes it.';

-- Merges made visible: crdt.stats, crdt.stats_reset (src/stats/) and crdt.status() (src/status.rs).
CREATE FUNCTION "table_stats"() RETURNS TABLE (
	"relid" oid, "remote_rows" bigint, "remote_wins" bigint, "local_wins" bigint,
	"counter_merges" bigint, "doc_merges" bigint, "echoes_skipped" bigint, "inserts_merged" bigint,
	"deletes_applied" bigint, "inserts_dropped_by_tombstone" bigint,
	"stats_reset" timestamp with time zone
)
	STRICT STABLE PARALLEL RESTRICTED LANGUAGE c AS 'MODULE_PATHNAME', 'table_stats_wrapper';
CREATE FUNCTION "stats_reset"("table" regclass DEFAULT NULL) RETURNS void
	VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'stats_reset_wrapper';
CREATE FUNCTION "status"() RETURNS TABLE ("item" text, "name" text, "ok" bool, "detail" text)
	STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
	SET search_path TO pg_catalog, pg_temp
	LANGUAGE c AS 'MODULE_PATHNAME', 'status_wrapper';

-- What the merges decided, one row per CRDT table of this database (docs/stats.md).
CREATE VIEW stats AS
SELECT c.oid::pg_catalog.regclass AS table_name,
       COALESCE(s.remote_rows, 0) AS remote_rows,
       COALESCE(s.remote_wins, 0) AS remote_wins,
       COALESCE(s.local_wins, 0) AS local_wins,
       COALESCE(s.counter_merges, 0) AS counter_merges,
       COALESCE(s.doc_merges, 0) AS doc_merges,
       COALESCE(s.echoes_skipped, 0) AS echoes_skipped,
       COALESCE(s.inserts_merged, 0) AS inserts_merged,
       COALESCE(s.deletes_applied, 0) AS deletes_applied,
       COALESCE(s.inserts_dropped_by_tombstone, 0) AS inserts_dropped_by_tombstone,
       s.stats_reset
FROM pg_catalog.pg_class c
LEFT JOIN crdt.table_stats() s ON s.relid OPERATOR(pg_catalog.=) c.oid
WHERE EXISTS (SELECT FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND t.tgname OPERATOR(pg_catalog.=) 'zz_crdt_merge');
COMMENT ON VIEW stats IS 'What the merges decided, per CRDT table (needs crdt in shared_preload_libraries).';
GRANT SELECT ON stats TO PUBLIC;
REVOKE ALL ON FUNCTION stats_reset(pg_catalog.regclass) FROM PUBLIC;

-- It reads crdt.deletions and crdt.peers as their owner: for superusers and monitoring roles.
REVOKE ALL ON FUNCTION status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION status() TO pg_monitor;

-- The conflict journal (src/table/conflicts.rs): a ring of crdt.conflicts_kept rows, written
-- only with crdt.log_conflicts = on. Local: never published, and replicated changes to it are
-- ignored.
CREATE SEQUENCE conflicts_id_seq;
CREATE TABLE conflicts (
    -- the place in the ring: id modulo crdt.conflicts_kept
    slot bigint PRIMARY KEY,
    -- in the order they were recorded
    id bigint NOT NULL,
    logged_at timestamptz NOT NULL,
    -- schema.table, as crdt.deletions names it
    table_name text NOT NULL,
    key jsonb NOT NULL,
    -- PostgreSQL 18's name where one fits: insert_exists, update_origin_differs,
    -- delete_origin_differs; insert_deleted (ours) for an insert a tombstone dropped
    conflict text NOT NULL,
    -- the columns whose values differed: "local", "remote" or "merged"
    columns jsonb,
    -- the newest stamp of each side (HLC and node)
    local_hlc numeric(20, 0),
    local_node uuid,
    remote_hlc numeric(20, 0),
    remote_node uuid
);
COMMENT ON TABLE conflicts IS 'The latest conflicts merges decided (with crdt.log_conflicts = on).';
REVOKE ALL ON conflicts FROM PUBLIC;
REVOKE ALL ON SEQUENCE conflicts_id_seq FROM PUBLIC;
GRANT SELECT ON conflicts TO pg_monitor;
CREATE TRIGGER zz_crdt_local_only BEFORE INSERT OR UPDATE OR DELETE ON conflicts
    FOR EACH ROW EXECUTE FUNCTION ignore_replicated_row();
ALTER TABLE conflicts ENABLE REPLICA TRIGGER zz_crdt_local_only;

-- Rate limiting (src/rate_limit/, docs/rate_limit.md).
CREATE FUNCTION "rate_limit"(
	"key" TEXT,
	"max_count" bigint,
	"per" interval,
	"cost" bigint DEFAULT 1,
	"mode" TEXT DEFAULT 'shared'
) RETURNS bool
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'rate_limit_wrapper';

CREATE FUNCTION "rate_limit_peek"(
	"key" TEXT,
	"max_count" bigint,
	"per" interval,
	"cost" bigint DEFAULT 1,
	"mode" TEXT DEFAULT 'shared'
) RETURNS bool
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'rate_limit_peek_wrapper';

CREATE FUNCTION "rate_limit_vacuum"() RETURNS bigint
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'rate_limit_vacuum_wrapper';

-- Rate limiting (src/rate_limit/, docs/rate_limit.md): counts per key, window length, window,
-- node and slot. A CRDT table: publish it with the other CRDT tables and crdt.deletions. A
-- node writes only its own rows.
CREATE TABLE rate_limits (
    key text NOT NULL,
    per interval NOT NULL,
    window_start timestamptz NOT NULL,
    node uuid NOT NULL,
    slot smallint NOT NULL,
    count crdt.counter NOT NULL DEFAULT 0,
    PRIMARY KEY (key, per, window_start, node, slot)
);
COMMENT ON TABLE rate_limits IS 'Counts of crdt.rate_limit; publish it with the CRDT tables.';
REVOKE ALL ON rate_limits FROM PUBLIC;
GRANT SELECT ON rate_limits TO pg_monitor;
SELECT crdt.enable('crdt.rate_limits');

-- Expired windows go without tombstones: see crdt.rate_limit_vacuum.
CREATE FUNCTION rate_limit_reset(key text) RETURNS void
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM crdt.rate_limits r WHERE r.key OPERATOR(pg_catalog.=) rate_limit_reset.key;
END;
COMMENT ON FUNCTION rate_limit_reset(text) IS 'Forgets every count of a rate-limited key, on every node.';
REVOKE ALL ON FUNCTION rate_limit_reset(text) FROM PUBLIC;
