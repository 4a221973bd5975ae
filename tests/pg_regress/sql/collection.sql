-- Tombstone collection on a node alone (no subscriptions): crdt.vacuum_tombstones() collects
-- every tombstone once its covers has passed them, which takes a run to see the transactions
-- running at its candidate time end, the candidate a second after the delete
-- (docs/tombstones.md).
CREATE TABLE collected (id int PRIMARY KEY, v text);
SELECT crdt.enable('collected');
INSERT INTO collected SELECT g, 'v' FROM generate_series(1, 20) g;
DELETE FROM collected WHERE id <= 15;
SELECT count(*) AS tombstones FROM crdt.deletions;
-- the first run only takes its candidate: nothing is covered yet
SELECT crdt.vacuum_tombstones() AS removed;
SELECT pg_sleep(1.1);
SELECT crdt.vacuum_tombstones() AS removed;
SELECT pg_sleep(1.1);
SELECT crdt.vacuum_tombstones() AS removed;
SELECT count(*) AS tombstones FROM crdt.deletions;
-- what it sent and kept: its own row of crdt.peers, a heartbeat naming only itself
SELECT node = crdt.node_id() AS own, covers > 0 AS covers, settled = covers AS settled_all,
       members = ARRAY[crdt.node_id()] AS alone
FROM crdt.peers;
SELECT node = crdt.node_id() AS own, via = node AS straight FROM crdt.heartbeats;
-- a key deleted and collected can be inserted again, and deleted again
INSERT INTO collected VALUES (1, 'again');
DELETE FROM collected WHERE id = 1;
SELECT count(*) AS tombstones FROM crdt.deletions;
-- forget_node: not this node; another one is recorded as forgotten
\set VERBOSITY sqlstate
SELECT crdt.forget_node(crdt.node_id());
\set VERBOSITY default
SELECT crdt.forget_node('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
SELECT node, forgotten FROM crdt.peers WHERE node <> crdt.node_id();
-- a replicated change to crdt.peers (a publication FOR ALL TABLES) is ignored
SET session_replication_role = replica;
UPDATE crdt.peers SET forgotten = false;
DELETE FROM crdt.peers;
RESET session_replication_role;
SELECT count(*) AS peers, count(*) FILTER (WHERE forgotten) AS forgotten FROM crdt.peers;
-- leave nothing behind for the files after this one (they share the database)
DROP TABLE collected;
DELETE FROM crdt.deletions;
DELETE FROM crdt.peers;
DELETE FROM crdt.heartbeats;
