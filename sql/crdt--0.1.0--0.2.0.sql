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
