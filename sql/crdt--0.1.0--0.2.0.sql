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

-- No change to the SQL surface yet.
