-- The SQL surface under hostile conditions: a search_path that puts an attacker's schema before
-- pg_catalog, an empty search_path (as in apply workers), identifiers that need quoting, a role
-- that does not own the table, and no SECURITY DEFINER without a pinned search_path.
CREATE SCHEMA security_test;  -- the test files share one database
SET search_path = security_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';

-- An attacker's schema: look-alikes of what an unqualified query would reach, each of which
-- refuses to run. If anything the extension runs resolved to one of them, this test fails
-- with "hijacked".
CREATE SCHEMA evil;
CREATE FUNCTION evil.trap_concat(a text, b text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked: ||'; END $$;
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['oid', 'name', 'integer', 'smallint', 'bigint', 'text', 'regclass',
                           'boolean', '"char"', 'tid', 'jsonb', 'crdt.counter']
  LOOP
    EXECUTE format($f$CREATE FUNCTION evil.trap(a %s, b %s) RETURNS boolean LANGUAGE plpgsql AS
                     'BEGIN RAISE EXCEPTION ''hijacked: = on %s''; END'$f$, t, t, t);
    EXECUTE format('CREATE OPERATOR evil.= (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.trap)', t, t);
  END LOOP;
END $$;
CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.trap_concat);
CREATE FUNCTION evil.quote_ident(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked: quote_ident'; END $$;
CREATE FUNCTION evil.format(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked: format'; END $$;
CREATE FUNCTION evil.jsonb_populate_record(anyelement, jsonb) RETURNS anyelement LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked: jsonb_populate_record'; END $$;
CREATE FUNCTION evil.generate_subscripts(anyarray, integer) RETURNS SETOF integer LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked: generate_subscripts'; END $$;

-- A table whose names all need quoting.
CREATE SCHEMA "my schema";
CREATE TABLE "my schema"."tab'le ""x""" (
  "key col" int PRIMARY KEY,
  "a column" text,
  "Quoted""Col" int,
  qty crdt.counter NOT NULL DEFAULT 0,
  "doc col" crdt.doc
);
INSERT INTO "my schema"."tab'le ""x""" VALUES (1, 'one', 1, 5, crdt.patch(NULL, '{"a": 1}'));

-- Everything below runs with the attacker's schema before pg_catalog.
SET search_path = evil, security_test, crdt, pg_catalog, public;
SELECT crdt.enable('"my schema"."tab''le ""x"""');
SELECT crdt.enable('"my schema"."tab''le ""x"""');  -- again: harmless
INSERT INTO "my schema"."tab'le ""x""" VALUES (2, 'two', 2, 7, NULL);
UPDATE "my schema"."tab'le ""x""" SET "a column" = 'uno', qty = qty + 1,
       "doc col" = crdt.patch("doc col", '{"b": 2}') WHERE "key col" OPERATOR(pg_catalog.=) 1;
-- A row from another node, merged as an apply worker would: through crdt.merge_row, and as a
-- replicated INSERT of an existing key (the merge trigger's SQL path).
SELECT crdt.merge_row('"my schema"."tab''le ""x"""',
  pg_catalog.jsonb_build_object('key col', 3, 'a column', 'three', 'Quoted"Col', 3,
                                'qty', '{"value": 3, "nodes": {"cccccccc-0000-4000-8000-000000000003": [3, 0]}}',
                                'doc col', NULL, 'crdt_clock', NULL));
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
CREATE TEMP TABLE incoming AS SELECT * FROM "my schema"."tab'le ""x""" WHERE "key col" OPERATOR(pg_catalog.=) 1;
UPDATE incoming SET "a column" = 'one, from B', crdt_clock = NULL;
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO "my schema"."tab'le ""x""" SELECT * FROM incoming;
COMMIT;
DELETE FROM "my schema"."tab'le ""x""" WHERE "key col" OPERATOR(pg_catalog.=) 2;
SELECT "key col", "a column", "Quoted""Col", qty::text::jsonb OPERATOR(pg_catalog.->) 'value' AS qty,
       crdt.to_jsonb("doc col") AS doc
FROM "my schema"."tab'le ""x""" ORDER BY "key col";
SELECT crdt.merge(qty, qty)::text OPERATOR(pg_catalog.=) qty::text AS merge_idempotent
FROM "my schema"."tab'le ""x""" ORDER BY "key col";
SELECT crdt.sum(qty), crdt.merge_agg("doc col") IS NOT NULL AS docs_merge FROM "my schema"."tab'le ""x""";
SELECT crdt.disable('"my schema"."tab''le ""x"""');
SELECT count(*) AS clock_columns_left FROM pg_catalog.pg_attribute
WHERE attrelid OPERATOR(pg_catalog.=) '"my schema"."tab''le ""x"""'::pg_catalog.regclass
  AND attname OPERATOR(pg_catalog.=) 'crdt_clock' AND NOT attisdropped;

-- An empty search_path, as apply workers have: schema-qualified calls work.
SET search_path = '';
SELECT crdt.enable('"my schema"."tab''le ""x"""');
UPDATE "my schema"."tab'le ""x""" SET qty = qty OPERATOR(crdt.+) 10
WHERE "key col" OPERATOR(pg_catalog.=) 1;
SELECT "key col", crdt.value(qty), qty::bigint FROM "my schema"."tab'le ""x""" ORDER BY "key col";
SELECT crdt.merge('{"value": 1, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1, 0]}}'::crdt.counter,
                  '{"value": 2, "nodes": {"bbbbbbbb-0000-4000-8000-000000000002": [2, 0]}}'::crdt.counter)::text;
SELECT crdt.to_jsonb(crdt.add(crdt.patch(NULL, '{"n": 1}'), 'n', 2));
SET search_path = security_test, public, crdt;

-- Only the owner of a table may enable or disable it (42501), whatever else the role may do.
CREATE ROLE crdt_security_intruder;
GRANT USAGE ON SCHEMA "my schema" TO crdt_security_intruder;
GRANT ALL ON "my schema"."tab'le ""x""" TO crdt_security_intruder;
SET ROLE crdt_security_intruder;
\set VERBOSITY sqlstate
SELECT crdt.disable('"my schema"."tab''le ""x"""');
SELECT crdt.enable('"my schema"."tab''le ""x"""');
-- ... and a node id is a superuser's to set (another role could impersonate a node).
SET crdt.node_id = 'dddddddd-0000-4000-8000-000000000004';
\set VERBOSITY default
-- The role can still write the table it was granted: the triggers need no extra privilege.
UPDATE "my schema"."tab'le ""x""" SET "a column" = 'by the intruder' WHERE "key col" = 1;
RESET ROLE;
SELECT "a column" FROM "my schema"."tab'le ""x""" WHERE "key col" = 1;

-- No function of the extension runs as its owner unless its search_path is pinned.
SELECT p.oid::regprocedure AS definer_without_pinned_search_path
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crdt'
WHERE p.prosecdef AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false);
-- Every function states its volatility and parallel safety deliberately: none is left at the
-- defaults (volatile and parallel unsafe) except those that write or read session state.
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crdt'
WHERE p.provolatile = 'v' AND p.proparallel = 'u'
ORDER BY p.oid::regprocedure::text;

DROP TABLE "my schema"."tab'le ""x""";
DROP SCHEMA "my schema";
DROP SCHEMA evil CASCADE;
DROP ROLE crdt_security_intruder;
-- Tombstones outlive their table (no garbage collection yet): remove this test's by hand.
DELETE FROM crdt.deletions WHERE table_name = '"my schema"."tab''le ""x"""';
