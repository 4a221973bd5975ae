-- crdt.counter binary send/recv: COPY ... (FORMAT binary) out and back in is exact.
CREATE SCHEMA counter_binary_test;  -- the test files share one database
SET search_path = counter_binary_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
CREATE TABLE src (id int PRIMARY KEY, c crdt.counter);
INSERT INTO src VALUES (1, 5), (2, -3), (3, 0);
UPDATE src SET c = c + 7 WHERE id = 1;
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
UPDATE src SET c = c - 2 WHERE id = 1;

-- binary send is the compact encoding: version byte, node count, then per node 16 bytes of id
-- and two varints
SELECT id, crdt.counter_send(c) AS wire, octet_length(crdt.counter_send(c)) AS bytes
FROM src ORDER BY id;

\set copyfile '/tmp/crdt_regress_counter.bin'
COPY src TO :'copyfile' (FORMAT binary);
CREATE TABLE dst (id int PRIMARY KEY, c crdt.counter);
COPY dst FROM :'copyfile' (FORMAT binary);
SELECT s.id, s.c::text = d.c::text AS same, d.c
FROM src s JOIN dst d USING (id) ORDER BY s.id;

-- garbage and truncated binary values are rejected with 22P02
\set VERBOSITY sqlstate
COPY (SELECT 'not a counter'::bytea) TO :'copyfile' (FORMAT binary);
CREATE TABLE bad (c crdt.counter);
COPY bad FROM :'copyfile' (FORMAT binary);
COPY (SELECT substr(crdt.counter_send(c), 1, 10) FROM src WHERE id = 1) TO :'copyfile' (FORMAT binary);
COPY bad FROM :'copyfile' (FORMAT binary);
COPY (SELECT crdt.counter_send(c) || '\x00'::bytea FROM src WHERE id = 1) TO :'copyfile' (FORMAT binary);
COPY bad FROM :'copyfile' (FORMAT binary);
\set VERBOSITY default
SELECT count(*) AS nothing_stored FROM bad;
