-- The demo's schema, the same on both nodes: a CRDT table, published for the other node.
CREATE EXTENSION crdt;
ALTER DATABASE postgres SET search_path = "$user", public, crdt;
SET search_path = "$user", public, crdt;
CREATE TABLE product (id int PRIMARY KEY, name text, inventory crdt.counter NOT NULL DEFAULT 0);
SELECT crdt.enable('product') \gset
-- deletes travel as tombstones (crdt.deletions), collected with heartbeats (crdt.heartbeats);
-- TRUNCATE is not published
CREATE PUBLICATION crdt_demo FOR TABLE product, crdt.deletions, crdt.heartbeats WITH (publish = 'insert, update, delete');
