-- crdt.enable / crdt.disable, local stamping, and merging rows from other nodes (crdt.merge_row,
-- and an apply worker simulated with session_replication_role = replica). Stamps depend on the
-- clock, so only who wrote each column and how stamps compare are shown.
CREATE SCHEMA tables_test;  -- the test files share one database
SET search_path = tables_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';

CREATE TABLE product (id int PRIMARY KEY, name text, price numeric,
                      inventory crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
INSERT INTO product (id, name, price, inventory) VALUES (1, 'widget', 9.99, 5);
SELECT crdt.enable('product');
SELECT crdt.enable('product');  -- harmless the second time
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'product'::regclass ORDER BY tgname;

-- which node last wrote each column of a row (registers only: counters and docs carry their own);
-- a row clock's text form is a doc's, so crdt.stamps reads it
CREATE FUNCTION writers(c crdt.row_clock) RETURNS TABLE (col text, node text) LANGUAGE sql AS $$
  SELECT key, left(node::text, 8) FROM crdt.stamps(c::text::crdt.doc) ORDER BY key $$;
CREATE FUNCTION stamp_of(c crdt.row_clock, col text) RETURNS bigint LANGUAGE sql AS $$
  SELECT (c::text::jsonb -> 'stamps' -> col ->> 0)::bigint $$;

-- rows that existed before enable are stamped as of enable
SELECT * FROM writers((SELECT crdt_clock FROM product WHERE id = 1));

-- a local UPDATE stamps only the columns it changed
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
CREATE TEMP TABLE before AS SELECT crdt_clock FROM product WHERE id = 1;
UPDATE product SET name = 'gadget', price = 9.99 WHERE id = 1;
SELECT * FROM writers((SELECT crdt_clock FROM product WHERE id = 1));
SELECT stamp_of(p.crdt_clock, 'name') > stamp_of(b.crdt_clock, 'name') AS name_newer,
       stamp_of(p.crdt_clock, 'price') = stamp_of(b.crdt_clock, 'price') AS price_untouched
FROM product p, before b WHERE p.id = 1;
-- crdt.write_mode = put stamps every column (a whole-row replace)
BEGIN;
SET LOCAL crdt.write_mode = put;
UPDATE product SET name = 'gadget' WHERE id = 1;
COMMIT;
SELECT * FROM writers((SELECT crdt_clock FROM product WHERE id = 1));
SHOW crdt.write_mode;

-- a number assigned to a counter column is recorded as the difference from its value
UPDATE product SET inventory = 20 WHERE id = 1;
SELECT inventory FROM product WHERE id = 1;
UPDATE product SET inventory = inventory - 2 WHERE id = 1;
SELECT inventory::bigint FROM product WHERE id = 1;
-- a document assigned to a doc column is merged into the stored one
UPDATE product SET attrs = '{"color": "red", "size": 3}'::jsonb WHERE id = 1;
UPDATE product SET attrs = '{"color": "blue"}'::jsonb WHERE id = 1;
SELECT attrs::jsonb FROM product WHERE id = 1;
-- a doc column that holds a value is not set to NULL (23502: NULL merges as absent, so the
-- other nodes would keep theirs); crdt.put empties it
UPDATE product SET attrs = NULL WHERE id = 1;
UPDATE product SET attrs = crdt.put(attrs, '{}') WHERE id = 1;
SELECT attrs::jsonb AS emptied FROM product WHERE id = 1;
UPDATE product SET attrs = '{"color": "blue", "size": 3}'::jsonb WHERE id = 1;
-- a hand-written crdt_clock is ignored: local writes are always stamped by the trigger
UPDATE product SET crdt_clock = NULL WHERE id = 1;
SELECT crdt_clock IS NOT NULL AS still_stamped FROM product WHERE id = 1;

-- rows from another node, merged exactly as the apply worker's trigger would:
-- an older write of a column loses, a newer one wins, counters and docs merge
SET crdt.node_id = 'cccccccc-0000-4000-8000-000000000003';
CREATE TABLE remote AS SELECT * FROM product;            -- node C's copy of the row
UPDATE remote SET inventory = inventory + 100;           -- C adds 100 (no trigger on this copy)
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
UPDATE product SET price = 11 WHERE id = 1;              -- meanwhile B changes the price
SET crdt.node_id = 'cccccccc-0000-4000-8000-000000000003';
UPDATE remote SET name = 'renamed on C',
  crdt_clock = (SELECT crdt_clock FROM product WHERE id = 1);  -- C's clock, then its own write:
SELECT crdt.merge_row('product', to_jsonb(r) || jsonb_build_object('crdt_clock',
         (SELECT c.crdt_clock FROM product c WHERE c.id = 1)::text))
FROM remote r;
-- the name: C's clock holds no newer stamp for it (C wrote without a trigger); the counter merges C's +100
SELECT id, name, price, inventory::bigint FROM product ORDER BY id;
-- a newer stamp for the name arrives, but not with the value it was given to (fingerprint 0 is
-- nobody's value: what an unchanged TOASTed column looks like): the name stays
SELECT crdt.merge_row('product', jsonb_build_object('id', 1, 'name', 'newer on C', 'price', 1,
  'inventory', '{"nodes": {"cccccccc-0000-4000-8000-000000000003": [100, 0]}}',
  'crdt_clock', jsonb_build_object('value', jsonb_build_object('name', 0), 'replaced', NULL,
     'stamps', jsonb_build_object('name', jsonb_build_array(stamp_of(crdt_clock, 'name') + 1000,
       'cccccccc-0000-4000-8000-000000000003')), 'counters', '{}'::jsonb, 'removed', '{}'::jsonb)::text))
FROM product WHERE id = 1;
SELECT id, name, price, inventory::bigint FROM product ORDER BY id;
-- a row C has and we do not is inserted as it is
SELECT crdt.merge_row('product', to_jsonb(p) || '{"id": 2, "name": "new on C"}') FROM product p WHERE id = 1;
SELECT id, name FROM product ORDER BY id;

-- the apply worker's path: session_replication_role = replica fires the merge trigger
SET session_replication_role = replica;
UPDATE product SET name = 'stale' WHERE id = 2;   -- same clock: nothing newer, so nothing written
SELECT id, name FROM product WHERE id = 2;
RESET session_replication_role;

-- deletes (docs/design.md, "A DELETE"): a local DELETE records a tombstone in crdt.deletions — the table, the key
-- as a jsonb object, and a stamp after every stamp of the row
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
CREATE TEMP TABLE gone AS SELECT crdt_clock FROM product WHERE id = 2;
DELETE FROM product WHERE id = 2;
SELECT table_name, key, left(node::text, 8) AS node FROM crdt.deletions;
SELECT d.hlc > stamp_of(g.crdt_clock, 'name') AS after_the_row FROM crdt.deletions d, gone g;
-- a row inserted again after the delete was seen records it (the entry "", which no column can
-- be named) and is stamped after it
INSERT INTO product (id, name) VALUES (2, 'back');
SELECT * FROM writers((SELECT crdt_clock FROM product WHERE id = 2));
SELECT stamp_of(p.crdt_clock, '') = d.hlc AS marks_the_delete,
       stamp_of(p.crdt_clock, 'name') > d.hlc AS stamped_after
FROM product p, crdt.deletions d WHERE p.id = 2;
-- the apply worker's path for deletes
SET session_replication_role = replica;
DELETE FROM product WHERE id = 2;                 -- a replicated DELETE alone does nothing:
SELECT count(*) AS still_there FROM product WHERE id = 2;  -- the tombstone after it decides
INSERT INTO crdt.deletions SELECT * FROM crdt.deletions;   -- a known tombstone (an echo): skipped
SELECT count(*) AS tombstones FROM crdt.deletions;
-- a delete on C older than the one the row was inserted after: the row stays, the tombstone is kept
INSERT INTO crdt.deletions SELECT table_name, key, hlc - 1, 'cccccccc-0000-4000-8000-000000000003'
FROM crdt.deletions;
SELECT count(*) AS still_there FROM product WHERE id = 2;
-- a delete on C the row had not seen: the row goes
INSERT INTO crdt.deletions SELECT table_name, key, stamp_of(p.crdt_clock, 'name') + 1000,
  'cccccccc-0000-4000-8000-000000000003' FROM crdt.deletions d, product p WHERE p.id = 2 LIMIT 1;
SELECT count(*) AS deleted FROM product WHERE id = 2;
SELECT key, left(node::text, 8) AS node FROM crdt.deletions ORDER BY hlc;
-- an INSERT replicated from a node that had not seen that delete (an echo of the old row, or an
-- insert concurrent with the delete): the delete wins
INSERT INTO product (id, name, crdt_clock) SELECT 2, 'echo', crdt_clock FROM gone;
SELECT count(*) AS deleted FROM product WHERE id = 2;
-- one from a node that had seen it: inserted
INSERT INTO product (id, name, crdt_clock)
SELECT 2, 'after the delete', jsonb_set(jsonb_set(g.crdt_clock::text::jsonb, ARRAY['value', ''], '0'),
  ARRAY['stamps', ''], jsonb_build_array(d.hlc, d.node))::text::crdt.row_clock
FROM gone g, (SELECT * FROM crdt.deletions ORDER BY hlc DESC LIMIT 1) d;
SELECT id, name FROM product WHERE id = 2;
-- a tombstone of a table this node does not have is kept
INSERT INTO crdt.deletions VALUES ('elsewhere.t', '{"k": 1}', 1, 'cccccccc-0000-4000-8000-000000000003');
SELECT count(*) AS kept FROM crdt.deletions WHERE table_name = 'elsewhere.t';
-- key_hash is computed again on arrival, whatever the publisher sent (none above; a wrong one here)
INSERT INTO crdt.deletions VALUES ('elsewhere.t', '{"k": 2}', 1, 'cccccccc-0000-4000-8000-000000000003', 42);
SELECT key, key_hash = crdt.tombstone_key_hash(table_name, key) AS hash_right
FROM crdt.deletions WHERE table_name = 'elsewhere.t' ORDER BY key;
RESET session_replication_role;
-- a tombstone written by hand with a wrong key_hash is refused: probes by key would miss it
INSERT INTO crdt.deletions VALUES ('elsewhere.t', '{"k": 3}', 1, 'cccccccc-0000-4000-8000-000000000003', 42);
-- a table owner who is not a superuser deletes rows of their CRDT table: the trigger writes the
-- tombstone, though the owner has no privilege on crdt.deletions (nobody but its owner has)
CREATE ROLE crdt_owner;
GRANT CREATE, USAGE ON SCHEMA tables_test TO crdt_owner;
SET ROLE crdt_owner;
CREATE TABLE owned (id int PRIMARY KEY, v text);
SELECT crdt.enable('owned');
INSERT INTO owned VALUES (1, 'a');
DELETE FROM owned;
INSERT INTO owned VALUES (1, 'again');
SELECT count(*) FROM crdt.deletions;  -- refused: tombstones name keys of every CRDT table
INSERT INTO crdt.deletions VALUES ('tables_test.owned', '{"id": 1}', 1, crdt.node_id());
RESET ROLE;
SELECT table_name, key FROM crdt.deletions WHERE table_name = 'tables_test.owned';
SELECT id, v FROM owned;
DROP TABLE owned;
DROP OWNED BY crdt_owner;
DROP ROLE crdt_owner;
SET crdt.node_id = 'cccccccc-0000-4000-8000-000000000003';
-- a key of several columns, one of them needing quotes: the tombstone's key names each column
CREATE TABLE pair (a int, "B c" text, v text, PRIMARY KEY (a, "B c"));
SELECT crdt.enable('pair');
INSERT INTO pair VALUES (1, 'x', 'one'), (2, 'y', 'two');
DELETE FROM pair WHERE a = 1;
SELECT table_name, key FROM crdt.deletions WHERE table_name = 'tables_test.pair';
SET session_replication_role = replica;
INSERT INTO crdt.deletions VALUES ('tables_test.pair', '{"a": 2, "B c": "y"}',
  (SELECT stamp_of(crdt_clock, 'v') + 1 FROM pair WHERE a = 2), 'dddddddd-0000-4000-8000-000000000004');
RESET session_replication_role;
SELECT count(*) AS deleted FROM pair;
DROP TABLE pair;
-- a replicated tombstone reads its key's values from the jsonb object with each key column's
-- input function (quotes, a numeric's scale, uuid, date), or, for a key column of a JSON type,
-- through jsonb_populate_record
CREATE TABLE keyed (a text, b numeric, c uuid, d date, v int, PRIMARY KEY (a, b, c, d));
SELECT crdt.enable('keyed');
INSERT INTO keyed VALUES ('x"y', 1.50, 'aaaaaaaa-0000-4000-8000-000000000001', '2024-02-29', 1),
                         ('x"y', 2.50, 'aaaaaaaa-0000-4000-8000-000000000001', '2024-02-29', 2);
CREATE TABLE json_keyed (k jsonb PRIMARY KEY, v int);
SELECT crdt.enable('json_keyed');
INSERT INTO json_keyed VALUES ('{"x": [1, 2]}', 1), ('{"x": [1, 3]}', 2);
SET session_replication_role = replica;
INSERT INTO crdt.deletions
SELECT 'tables_test.keyed', jsonb_build_object('a', a, 'b', b, 'c', c, 'd', d), 1, 'dddddddd-0000-4000-8000-000000000004'
FROM keyed WHERE v = 1;
INSERT INTO crdt.deletions
SELECT 'tables_test.json_keyed', jsonb_build_object('k', k), 1, 'dddddddd-0000-4000-8000-000000000004'
FROM json_keyed WHERE v = 1;
RESET session_replication_role;
SELECT a, b, v FROM keyed;
SELECT k, v FROM json_keyed;
DROP TABLE keyed, json_keyed;

-- a DELETE of many rows records their tombstones in one statement, all with one stamp after
-- every stamp of every deleted row
CREATE TABLE many (id int PRIMARY KEY, v text);
SELECT crdt.enable('many');
INSERT INTO many SELECT g, 'v' || g FROM generate_series(1, 1000) g;
DELETE FROM many WHERE id <= 600;
SELECT count(*) AS tombstones, count(DISTINCT hlc) AS stamps,
       min(hlc) > (SELECT max(stamp_of(crdt_clock, 'v')) FROM many) AS after_the_rows
FROM crdt.deletions WHERE table_name = 'tables_test.many';
-- a key deleted and inserted again in one transaction: the row records the delete it saw
BEGIN;
DELETE FROM many WHERE id = 700;
INSERT INTO many VALUES (700, 'again');
COMMIT;
SELECT stamp_of(m.crdt_clock, '') = d.hlc AS marks_the_delete
FROM many m, crdt.deletions d
WHERE m.id = 700 AND d.table_name = 'tables_test.many' AND d.key = '{"id": 700}';
-- keys are not changed in place (a replicated change of a key is skipped, with a WARNING)
UPDATE many SET id = 5000 WHERE id = 800;
UPDATE many SET id = id, v = 'same key' WHERE id = 800;
SET session_replication_role = replica;
UPDATE many SET id = 5001 WHERE id = 801;
RESET session_replication_role;
SELECT id, v FROM many WHERE id IN (800, 801, 5000, 5001) ORDER BY id;
-- a NULL key is refused by the key's NOT NULL constraint, after the triggers looked at nothing
\set VERBOSITY terse
INSERT INTO many VALUES (NULL, 'no key');
\set VERBOSITY default
-- TRUNCATE is refused: it would record no tombstones
TRUNCATE many;
SELECT count(*) AS kept FROM many;
DROP TABLE many;

-- refusals
CREATE TABLE no_key (a int);
SELECT crdt.enable('no_key');
CREATE TABLE full_identity (a int PRIMARY KEY);
ALTER TABLE full_identity REPLICA IDENTITY FULL;
SELECT crdt.enable('full_identity');
CREATE VIEW product_view AS SELECT * FROM product;
SELECT crdt.enable('product_view');
CREATE ROLE crdt_stranger;
GRANT USAGE ON SCHEMA tables_test TO crdt_stranger;
SET ROLE crdt_stranger;
SELECT crdt.enable('tables_test.product');
RESET ROLE;
DROP OWNED BY crdt_stranger;
DROP ROLE crdt_stranger;
SELECT crdt.enable('no_such_table');
CREATE TABLE own_clock (id int PRIMARY KEY, crdt_clock timestamptz);
SELECT crdt.enable('own_clock');

-- quoted names work
CREATE TABLE "tab'le ""x""" ("the id" int PRIMARY KEY, "a column" text);
SELECT crdt.enable('"tab''le ""x"""');
INSERT INTO "tab'le ""x""" VALUES (1, 'v');
SELECT * FROM writers((SELECT crdt_clock FROM "tab'le ""x"""));

-- disable removes the triggers and the clock, keeps the data (a view on the clock blocks it)
SELECT crdt.disable('product');
DROP VIEW product_view;
SELECT crdt.disable('product');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'product'::regclass;
SELECT id, name, inventory::bigint FROM product ORDER BY id;

-- a schema renamed while this session holds the table's shape: the triggers use the new name
-- (their statements on the table, and the table's name in crdt.deletions)
CREATE SCHEMA tables_renamed_from;
CREATE TABLE tables_renamed_from.t (id int PRIMARY KEY, v text);
SELECT crdt.enable('tables_renamed_from.t');
INSERT INTO tables_renamed_from.t VALUES (1, 'a'), (2, 'b');
DELETE FROM tables_renamed_from.t WHERE id = 1;
ALTER SCHEMA tables_renamed_from RENAME TO tables_renamed_to;
DELETE FROM tables_renamed_to.t WHERE id = 2;
SELECT table_name, key FROM crdt.deletions WHERE table_name LIKE 'tables_renamed_%' ORDER BY key::text;

-- a row stored before an ADD COLUMN ... DEFAULT (the new column's value comes from the
-- catalog) merges like any other on the apply worker's path
CREATE TABLE widened (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0);
SELECT crdt.enable('widened');
INSERT INTO widened VALUES (1, 5);
ALTER TABLE widened ADD COLUMN label text DEFAULT 'from the catalog';
SET session_replication_role = replica;
UPDATE widened SET n = crdt.merge(n, '{"nodes": {"bbbbbbbb-0000-4000-8000-000000000002": [3, 0]}}')
WHERE id = 1;
RESET session_replication_role;
SELECT id, n::bigint, label FROM widened;

-- a counter or doc column that holds a value is not set back to NULL (23502): NULL merges as
-- absent, so the other nodes would keep their value. One that starts NULL takes a value, and
-- a doc is emptied with crdt.put.
CREATE TABLE nullable_merged (id int PRIMARY KEY, n crdt.counter, d crdt.doc);
SELECT crdt.enable('nullable_merged');
INSERT INTO nullable_merged VALUES (1, NULL, NULL);
UPDATE nullable_merged SET n = 4, d = '{"a": 1}'::jsonb;
UPDATE nullable_merged SET n = NULL;
\set VERBOSITY sqlstate
UPDATE nullable_merged SET n = NULL;
\set VERBOSITY default
UPDATE nullable_merged SET n = 0, d = crdt.put(d, '{}');
SELECT id, n::bigint, d::jsonb FROM nullable_merged;

-- a copy of a deleted row (an echo, a late update of the old row) never merges into the row
-- inserted again after the delete: the delete it had seen ended the copy's incarnation
CREATE TABLE reborn (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0, s text);
SELECT crdt.enable('reborn');
INSERT INTO reborn VALUES (1, 5, 'first');
CREATE TEMP TABLE reborn_first AS SELECT to_jsonb(r) AS row FROM reborn r;
DELETE FROM reborn;
INSERT INTO reborn VALUES (1, 0, 'second');
SELECT crdt.merge_row('reborn', row) FROM reborn_first;
SELECT id, n::bigint, s FROM reborn;
-- and a node still holding the first row takes the new one whole, without merging the two
CREATE TEMP TABLE reborn_second AS SELECT to_jsonb(r) AS row FROM reborn r;
DELETE FROM reborn;
DELETE FROM crdt.deletions WHERE table_name LIKE '%reborn';
SET session_replication_role = replica;
INSERT INTO reborn SELECT * FROM jsonb_populate_record(NULL::reborn, (SELECT row FROM reborn_first));
RESET session_replication_role;
SELECT id, n::bigint, s FROM reborn;
SELECT crdt.merge_row('reborn', row) FROM reborn_second;
SELECT id, n::bigint, s, crdt_clock::text = (SELECT row->>'crdt_clock' FROM reborn_second) AS same_clock
FROM reborn;

-- upserts: the INSERT's trigger finds the existing row and locks it (FOR KEY SHARE, so that no
-- delete comes before the unique check); ON CONFLICT then does nothing, or updates the row
-- through the UPDATE path, taking the stronger lock in the same transaction
CREATE TABLE upserted (id int PRIMARY KEY, v text, n crdt.counter NOT NULL DEFAULT 0, d crdt.doc);
SELECT crdt.enable('upserted');
INSERT INTO upserted VALUES (1, 'first', 1, '{"a": 1}'::jsonb);
INSERT INTO upserted VALUES (1, 'ignored', 7) ON CONFLICT (id) DO NOTHING;
INSERT INTO upserted VALUES (1, 'second', 5) ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = upserted.n + 5;
INSERT INTO upserted (id, v) SELECT g, 'bulk ' || g FROM generate_series(1, 3) g
    ON CONFLICT (id) DO UPDATE SET n = upserted.n + 1;
SELECT id, v, n::bigint, d::jsonb, crdt_clock IS NOT NULL AS stamped FROM upserted ORDER BY id;
-- a plain INSERT of a key that exists meets PostgreSQL's own unique violation, as on any table
\set VERBOSITY sqlstate
INSERT INTO upserted VALUES (2, 'again');
\set VERBOSITY default
-- an UPDATE that leaves the doc column alone leaves the doc as it was
UPDATE upserted SET v = 'updated' WHERE id = 1;
SELECT id, v, d::jsonb FROM upserted WHERE id = 1;
-- the same with a doc stored out of line: compared by its TOAST pointer, left as it was; a
-- statement that writes the doc back as read merges it with itself, which changes nothing
ALTER TABLE upserted ALTER COLUMN d SET STORAGE EXTERNAL;
UPDATE upserted SET d = (SELECT jsonb_object_agg('p' || g, repeat('x', 20)) FROM generate_series(1, 200) g)::crdt.doc
WHERE id = 2;
UPDATE upserted SET v = 'updated again' WHERE id = 2;
UPDATE upserted SET d = (SELECT d FROM upserted WHERE id = 2) WHERE id = 2;
SELECT id, v, jsonb_typeof(d::jsonb) AS kind, (SELECT count(*) FROM jsonb_object_keys(d::jsonb)) AS properties,
       d::jsonb->>'p200' AS p200
FROM upserted WHERE id = 2;
