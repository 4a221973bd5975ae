-- The conflict journal: with crdt.log_conflicts = on, each replicated change whose merge took
-- something from both sides, or dropped a row, is recorded in crdt.conflicts, a ring of
-- crdt.conflicts_kept rows, and a failure to record one never fails the merge. As in
-- stats.sql, node C writes to node_c.part and its rows are merged with crdt.merge_row.
SET search_path = public, crdt;
CREATE TABLE part (id int PRIMARY KEY, name text, color text, qty crdt.counter NOT NULL DEFAULT 0);
SELECT crdt.enable('part');
CREATE SCHEMA node_c;
CREATE TABLE node_c.part (LIKE part);
ALTER TABLE node_c.part ADD PRIMARY KEY (id);
SELECT crdt.enable('node_c.part');
CREATE TEMP VIEW c_rows AS SELECT to_jsonb(p) AS row FROM node_c.part p ORDER BY id;
CREATE FUNCTION as_node_c(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('crdt.node_id', 'cccccccc-0000-4000-8000-000000000003', true);
    EXECUTE statement;
    PERFORM set_config('crdt.node_id', '', true);
END
$$;

-- off by default: nothing recorded
INSERT INTO part VALUES (1, 'bolt', 'red', 5);
SELECT as_node_c($$INSERT INTO node_c.part VALUES (1, 'bolt M6', 'red', 2)$$);
SELECT crdt.merge_row('part', row) FROM c_rows;
SELECT count(*) AS recorded FROM crdt.conflicts;

SET crdt.log_conflicts = on;
-- both sides: C renames and adds 1, this node recolours and adds 10
SELECT as_node_c($$UPDATE node_c.part SET name = 'bolt M8', qty = qty + 1$$);
UPDATE part SET color = 'blue', qty = qty + 10;
SELECT crdt.merge_row('part', row) FROM c_rows;
SELECT id, name, color, qty::bigint FROM part;
-- a row only C writes: replication as usual, no conflict
SELECT as_node_c($$INSERT INTO node_c.part VALUES (4, 'pin', 'grey', 1)$$);
SELECT crdt.merge_row('part', row) FROM c_rows WHERE (row->>'id')::int = 4;
SELECT as_node_c($$UPDATE node_c.part SET name = 'pin 2mm', qty = qty + 1 WHERE id = 4$$);
SELECT crdt.merge_row('part', row) FROM c_rows WHERE (row->>'id')::int = 4;
SELECT id, name, qty::bigint FROM part WHERE id = 4;
SELECT id, table_name, key, conflict, columns, local_node = crdt.node_id() AS local_is_this_node, remote_node,
       local_hlc > 0 AND remote_hlc > 0 AS stamped
FROM crdt.conflicts ORDER BY id;

-- the same, through the apply worker's UPDATE path (session_replication_role = replica)
UPDATE part SET color = 'green';
SET session_replication_role = replica;
UPDATE part SET name = 'from elsewhere',
    crdt_clock = (SELECT crdt_clock FROM node_c.part WHERE id = 1),
    qty = (SELECT qty FROM node_c.part WHERE id = 1) + 7;
RESET session_replication_role;
SELECT conflict, columns FROM crdt.conflicts ORDER BY id DESC LIMIT 1;

-- dropped rows: C's insert of a key deleted here, and C's tombstone of a row written here
INSERT INTO part VALUES (2, 'nut', 'black', 1);
SELECT as_node_c($$INSERT INTO node_c.part VALUES (2, 'nut C', 'black', 1)$$);
DELETE FROM part WHERE id = 2;
SELECT crdt.merge_row('part', row) FROM c_rows WHERE (row->>'id')::int = 2;
INSERT INTO part VALUES (3, 'washer', 'grey', 1);
SET session_replication_role = replica;
INSERT INTO crdt.deletions (table_name, key, hlc, node, key_hash)
SELECT 'public.part', '{"id": 3}', crdt.clock_now(), 'cccccccc-0000-4000-8000-000000000003',
       crdt.tombstone_key_hash('public.part', '{"id": 3}');
RESET session_replication_role;
SELECT key, conflict, columns, local_node = crdt.node_id() AS local_is_this_node, remote_node
FROM crdt.conflicts ORDER BY id DESC LIMIT 2;

-- bounded: the oldest are overwritten
SET crdt.conflicts_kept = 2;
SELECT as_node_c($$UPDATE node_c.part SET name = 'bolt M10', qty = qty + 1 WHERE id = 1$$);
UPDATE part SET color = 'white', qty = qty + 1 WHERE id = 1;
SELECT crdt.merge_row('part', row) FROM c_rows WHERE (row->>'id')::int = 1;
SELECT count(*) AS kept, max(id) = (SELECT last_value FROM crdt.conflicts_id_seq) AS newest_kept
FROM crdt.conflicts WHERE slot < 2;
RESET crdt.conflicts_kept;

-- a journal that cannot be written: a WARNING, and the merge goes on
ALTER TABLE crdt.conflicts ADD CONSTRAINT refuse_all CHECK (false) NOT VALID;
SELECT as_node_c($$UPDATE node_c.part SET name = 'bolt M12', qty = qty + 1 WHERE id = 1$$);
UPDATE part SET color = 'black', qty = qty + 1 WHERE id = 1;
SELECT crdt.merge_row('part', row) FROM c_rows WHERE (row->>'id')::int = 1;
SELECT id, name, color, qty::bigint FROM part WHERE id = 1;
ALTER TABLE crdt.conflicts DROP CONSTRAINT refuse_all;

-- only superusers set it; the journal is readable by superusers and pg_monitor
CREATE ROLE conflict_reader;
SET ROLE conflict_reader;
\set VERBOSITY sqlstate
SET crdt.log_conflicts = off;
SELECT count(*) FROM crdt.conflicts;
\set VERBOSITY default
RESET ROLE;
GRANT pg_monitor TO conflict_reader;
SET ROLE conflict_reader;
SELECT count(*) > 0 AS can_read FROM crdt.conflicts;
RESET ROLE;
DROP ROLE conflict_reader;

-- leave nothing behind for the files after this one (they share the database)
RESET crdt.log_conflicts;
RESET search_path;
DROP VIEW c_rows;
DROP FUNCTION as_node_c(text);
DROP TABLE part;
DROP TABLE node_c.part;
DROP SCHEMA node_c;
DELETE FROM crdt.deletions;
DELETE FROM crdt.conflicts;
SELECT crdt.stats_reset();
