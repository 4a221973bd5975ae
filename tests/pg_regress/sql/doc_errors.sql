-- Bad input to every crdt.doc entry point gets a precise SQLSTATE, never XX000.
CREATE SCHEMA doc_errors_test;  -- the test files share one database
SET search_path = doc_errors_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
\set VERBOSITY sqlstate

-- malformed text: 22P02
SELECT ''::crdt.doc;
SELECT '{"a": 1}'::crdt.doc;
SELECT '{"value": {}, "replaced": null, "stamps": {}, "counters": {}}'::crdt.doc;
SELECT '{"value": {"a": 1}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}}'::crdt.doc;
SELECT '{"value": {}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}, "x": 1}'::crdt.doc;
SELECT '{"value": {}, "value": {}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}}'::crdt.doc;
SELECT '{"value": {}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}} junk'::crdt.doc;
SELECT '{"value": {"a": 1}, "replaced": null, "stamps": {"a": [1, "nope"]}, "counters": {}, "removed": {}}'::crdt.doc;
SELECT '{"value": {"a": 9}, "replaced": null, "stamps": {"a": [1, "aaaaaaaa-0000-4000-8000-000000000001"]}, "counters": {"a": {"base": 5, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [5, 0]}}}, "removed": {}}'::crdt.doc;
SELECT repeat('[', 5000)::crdt.doc;

-- patch/put with a non-object: 22023
SELECT crdt.patch(NULL, '[1, 2]');
SELECT crdt.patch(NULL, '"text"');
SELECT crdt.put(NULL, '5');
SELECT crdt.put(NULL, 'null');
SELECT '[1]'::jsonb::crdt.doc;

-- add on a non-numeric property, or with a non-finite number: 22023
SELECT crdt.add(crdt.patch(NULL, '{"name": "x"}'), 'name', 1);
SELECT crdt.add(crdt.patch(NULL, '{"n": [1]}'), 'n', 1);
SELECT crdt.add(NULL, 'n', 'NaN');
SELECT crdt.add(NULL, 'n', 'Infinity');
SELECT crdt.add(NULL, 'n', '-Infinity');

-- numeric overflow: 22003
SELECT crdt.add(NULL, 'n', ('1' || repeat('0', 1001))::numeric);
SELECT crdt.add(crdt.patch(NULL, ('{"n": 1' || repeat('0', 1001) || '}')::jsonb), 'n', 1);

-- NULL where a value is needed: 22004 (a NULL document is an empty record, not an error)
SELECT crdt.patch(NULL, NULL);
SELECT crdt.add(NULL, NULL, 1);
SELECT crdt.add(NULL, 'n', NULL);
SELECT crdt.remove(NULL, NULL);

-- binary input: 22P02
COPY (SELECT 'not a doc'::bytea) TO '/tmp/crdt_regress_doc_bad.bin' (FORMAT binary);
CREATE TABLE bad (d crdt.doc);
COPY bad FROM '/tmp/crdt_regress_doc_bad.bin' (FORMAT binary);
COPY (SELECT substr(crdt.doc_send(crdt.patch(NULL, '{"a": 1, "b": "two"}')), 1, 12))
  TO '/tmp/crdt_regress_doc_bad.bin' (FORMAT binary);
COPY bad FROM '/tmp/crdt_regress_doc_bad.bin' (FORMAT binary);
\set VERBOSITY default
SELECT count(*) AS nothing_stored FROM bad;

-- what a user sees
SELECT crdt.patch(NULL, '[1, 2]');
SELECT crdt.add(crdt.patch(NULL, '{"name": "x"}'), 'name', 1);
