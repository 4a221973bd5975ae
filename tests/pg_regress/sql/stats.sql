-- crdt.stats: what the merges decided, per CRDT table, counted when each transaction commits
-- (this suite's server has crdt in shared_preload_libraries). Two copies of one table stand for
-- two nodes: node C writes to node_c.stock, and its rows are merged into public.stock with
-- crdt.merge_row, exactly as an apply worker merges them.
CREATE TABLE stock (id int PRIMARY KEY, name text, qty crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
SELECT crdt.enable('stock');
CREATE SCHEMA node_c;
CREATE TABLE node_c.stock (LIKE stock);
ALTER TABLE node_c.stock ADD PRIMARY KEY (id);
SELECT crdt.enable('node_c.stock');
-- a CRDT table nothing was merged into yet has a row of zeros
SELECT * FROM crdt.stats WHERE table_name = 'stock'::regclass;

INSERT INTO stock VALUES (1, 'bolt', 5, '{"color": "red"}'::jsonb), (3, 'nut', 1, NULL);
SET crdt.node_id = 'cccccccc-0000-4000-8000-000000000003';
INSERT INTO node_c.stock VALUES (1, 'bolt M6', 2, '{"size": 6}'::jsonb);
RESET crdt.node_id;
CREATE TEMP VIEW c_row AS SELECT to_jsonb(s) AS row FROM node_c.stock s WHERE id = 1;
-- C's insert of a key this node has: merged; the name written later on C wins; the counter and
-- the doc merge
SELECT crdt.merge_row('stock', row) FROM c_row;
SELECT id, name, qty::bigint, attrs::jsonb FROM stock WHERE id = 1;
SELECT remote_rows, remote_wins, local_wins, counter_merges, doc_merges, echoes_skipped, inserts_merged
FROM crdt.stats WHERE table_name = 'stock'::regclass;
-- the same row again (an echo): nothing changes
SELECT crdt.merge_row('stock', row) FROM c_row;
SELECT remote_rows, echoes_skipped, inserts_merged FROM crdt.stats WHERE table_name = 'stock'::regclass;
-- renamed here after C's write: C's older name loses
UPDATE stock SET name = 'bolt (local)' WHERE id = 1;
SET crdt.node_id = 'cccccccc-0000-4000-8000-000000000003';
UPDATE node_c.stock SET qty = qty OPERATOR(crdt.+) 1 WHERE id = 1;
RESET crdt.node_id;
SELECT crdt.merge_row('stock', row) FROM c_row;
SELECT id, name, qty::bigint FROM stock WHERE id = 1;
SELECT remote_rows, remote_wins, local_wins, counter_merges FROM crdt.stats WHERE table_name = 'stock'::regclass;
-- a merge rolled back counts nothing
BEGIN;
SET LOCAL crdt.node_id = 'cccccccc-0000-4000-8000-000000000003';
UPDATE node_c.stock SET qty = qty OPERATOR(crdt.+) 1 WHERE id = 1;
RESET crdt.node_id;
SELECT crdt.merge_row('stock', row) FROM c_row;
ROLLBACK;
SELECT remote_rows, counter_merges FROM crdt.stats WHERE table_name = 'stock'::regclass;
-- deleted here: C's copy, which had not seen the delete, stays deleted
DELETE FROM stock WHERE id = 1;
SELECT crdt.merge_row('stock', row) FROM c_row;
SELECT count(*) AS rows_with_id_1 FROM stock WHERE id = 1;
-- C's delete of row 3 arrives as a tombstone (as an apply worker inserts it): the row goes;
-- the same tombstone again is an echo
SET session_replication_role = replica;
INSERT INTO crdt.deletions (table_name, key, hlc, node, key_hash)
SELECT 'public.stock', '{"id": 3}', crdt.clock_now(), 'cccccccc-0000-4000-8000-000000000003',
       crdt.tombstone_key_hash('public.stock', '{"id": 3}');
INSERT INTO crdt.deletions SELECT * FROM crdt.deletions WHERE key = '{"id": 3}';
RESET session_replication_role;
SELECT count(*) AS rows_with_id_3 FROM stock WHERE id = 3;
SELECT table_name, remote_rows, remote_wins, local_wins, counter_merges, doc_merges, echoes_skipped,
       inserts_merged, deletes_applied, inserts_dropped_by_tombstone, stats_reset IS NULL AS never_reset
FROM crdt.stats WHERE table_name::text LIKE '%stock' ORDER BY table_name::text;

-- anyone may read the counts; only a superuser (or whom it grants to) may reset them, or read
-- crdt.status()
CREATE ROLE stats_reader;
SET ROLE stats_reader;
SELECT count(*) > 0 AS can_read FROM crdt.stats;
\set VERBOSITY sqlstate
SELECT crdt.stats_reset();
SELECT * FROM crdt.status();
\set VERBOSITY default
-- crdt.status() is for monitoring roles
RESET ROLE;
GRANT pg_monitor TO stats_reader;
SET ROLE stats_reader;
SELECT count(*) > 0 AS can_run FROM crdt.status();
RESET ROLE;
DROP ROLE stats_reader;

-- reset: one table, then all
SELECT crdt.stats_reset('stock');
SELECT remote_rows, deletes_applied, stats_reset IS NOT NULL AS reset FROM crdt.stats WHERE table_name = 'stock'::regclass;
SELECT crdt.stats_reset();
SELECT count(*) FILTER (WHERE remote_rows > 0) AS counted FROM crdt.stats;

-- crdt.status(): a table in no publication reaches no other node
SELECT item, name, ok, detail FROM crdt.status()
WHERE item = 'stats' OR name LIKE '%stock' OR name LIKE 'crdt.%' ORDER BY name;
SET client_min_messages = error;  -- this server's wal_level is not logical: said once
CREATE PUBLICATION stats_pub FOR TABLE stock, crdt.deletions, crdt.heartbeats;
RESET client_min_messages;
SELECT item, name, ok, detail FROM crdt.status()
WHERE item = 'table' AND (name LIKE '%stock' OR name LIKE 'crdt.%') ORDER BY name;
SELECT item, ok FROM crdt.status() WHERE item IN ('node', 'tombstones', 'collection') ORDER BY item;

-- leave nothing behind for the files after this one (they share the database)
DROP PUBLICATION stats_pub;
DROP TABLE stock;
DROP VIEW c_row;
DROP TABLE node_c.stock;
DROP SCHEMA node_c;
DELETE FROM crdt.deletions;
SELECT crdt.stats_reset();
