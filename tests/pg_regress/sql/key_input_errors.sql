-- An error PostgreSQL raises inside the extension's own calls (here a key column's input
-- function, for a replicated tombstone whose key is not a date) reaches the client as
-- PostgreSQL's, hint and all. PostgreSQL 17 and later spell the hint's setting "DateStyle":
-- expected/key_input_errors_1.out.
CREATE SCHEMA key_input_test;  -- the test files share one database
SET search_path = key_input_test, public, crdt;
CREATE TABLE dated (d date PRIMARY KEY, v text);
SELECT crdt.enable('dated');
SET session_replication_role = replica;
INSERT INTO crdt.deletions VALUES ('key_input_test.dated', '{"d": "2024-13-45"}', 1, 'dddddddd-0000-4000-8000-000000000004');
RESET session_replication_role;
DROP SCHEMA key_input_test CASCADE;
