-- The inventory case on crdt.counter, with two node ids standing for two PostgreSQL nodes.
CREATE EXTENSION crdt;
-- the operators live in schema crdt, like any extension's
SET search_path = public, crdt;
CREATE TABLE replica (node text PRIMARY KEY, inventory crdt.counter);

SET crdt.node_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
INSERT INTO replica VALUES ('start', 5);
-- both nodes begin from the same replicated state
INSERT INTO replica SELECT 'A', inventory FROM replica WHERE node = 'start';
INSERT INTO replica SELECT 'B', inventory FROM replica WHERE node = 'start';
UPDATE replica SET inventory = inventory + 5 WHERE node = 'A';   -- on node A

SET crdt.node_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
UPDATE replica SET inventory = inventory - 1 WHERE node = 'B';   -- on node B, concurrently

\echo 'each node before merging:'
SELECT node, inventory::bigint AS value, inventory AS state FROM replica ORDER BY node;

\echo 'after merging (A into B, and B into A):'
SELECT crdt.merge(a.inventory, b.inventory)::bigint AS "merge(A, B)",
       crdt.merge(b.inventory, a.inventory)::bigint AS "merge(B, A)"
FROM replica a, replica b WHERE a.node = 'A' AND b.node = 'B';
