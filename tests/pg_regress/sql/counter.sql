-- crdt.counter: operators, casts, merge laws on concrete values, text round trips.
-- Two crdt.node_id values stand for two nodes. The operators live in schema crdt, like any
-- extension's: put it on the search_path to write them unqualified.
CREATE SCHEMA counter_test;  -- the test files share one database
SET search_path = counter_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
SELECT crdt.node_id();

-- casts from numbers credit this node; the text form leads with the value
SELECT 5::crdt.counter;
SELECT (-3)::crdt.counter;
SELECT 0::crdt.counter;
SELECT 9223372036854775807::bigint::crdt.counter;

-- + and - with integer and bigint add to this node's slot
SELECT (5::crdt.counter + 5)::bigint AS ten,
       (5::crdt.counter - 1)::bigint AS four,
       (5::crdt.counter + 5::bigint)::bigint AS ten_again,
       (5::crdt.counter - 7::bigint)::bigint AS minus_two;
SELECT 5::crdt.counter + 5 - 2 + 1;

-- comparisons with numbers compare the value, in both orders
SELECT 9::crdt.counter = 9 AS eq, 9::crdt.counter > 8 AS gt, 9::crdt.counter < 8 AS lt,
       9::crdt.counter <> 9::bigint AS ne, 9::crdt.counter != 8 AS ne2,
       9::crdt.counter <= 9 AS le, 9::crdt.counter >= 10 AS ge,
       10 > 9::crdt.counter AS gt_r, 9 = 9::crdt.counter AS eq_r, 8 >= 9::crdt.counter AS ge_r,
       8 < 9::crdt.counter AS lt_r, 9 <= 9::crdt.counter AS le_r, 9 <> 9::crdt.counter AS ne_r;
-- values beyond bigint compare exactly
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [18446744073709551615, 0]}}'::crdt.counter
       > 9223372036854775807 AS beyond_bigint;
SELECT 9::crdt.counter::bigint + 1 AS plus_one, crdt.value(9::crdt.counter) AS numeric_value;

-- a column: INSERT ... VALUES (5), DEFAULT 0, UPDATE ... SET n = n + 1
CREATE TABLE stock (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0);
INSERT INTO stock VALUES (1, 5), (2, 10::bigint);
INSERT INTO stock (id) VALUES (3);
UPDATE stock SET n = n + 1;
UPDATE stock SET n = n - 4 WHERE id = 2;
SELECT id, n::bigint AS value, n FROM stock ORDER BY id;
SELECT sum(n) AS total, crdt.sum(n) AS qualified, avg(n::bigint) AS average, max(n::bigint) AS most
FROM stock;
SELECT sum(n) IS NULL AS no_rows_is_null FROM stock WHERE false;
-- a counter assigned to a bigint column is its value
CREATE TABLE plain (id int, n bigint);
INSERT INTO plain SELECT id, n FROM stock;
SELECT * FROM plain ORDER BY id;

-- the inventory case: both nodes start from the same 5, A adds 5, B subtracts 1
CREATE TABLE replica (node text PRIMARY KEY, c crdt.counter);
INSERT INTO replica VALUES ('start', 5);
INSERT INTO replica SELECT 'A', c + 5 FROM replica WHERE node = 'start';
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
INSERT INTO replica SELECT 'B', c - 1 FROM replica WHERE node = 'start';
SELECT node, c::bigint AS value FROM replica ORDER BY node;
SELECT crdt.merge(a.c, b.c)::bigint AS ab, crdt.merge(b.c, a.c)::bigint AS ba,
       crdt.merge(a.c, b.c)::text = crdt.merge(b.c, a.c)::text AS same_state
FROM replica a, replica b WHERE a.node = 'A' AND b.node = 'B';
SELECT crdt.merge(a.c, b.c) FROM replica a, replica b WHERE a.node = 'A' AND b.node = 'B';

-- merge laws on concrete values: idempotent, commutative, associative
CREATE TABLE laws (name text PRIMARY KEY, c crdt.counter);
INSERT INTO laws VALUES ('x', '{"value": 3, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [4, 1]}}'),
  ('y', '{"value": 6, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [2, 2], "bbbbbbbb-0000-4000-8000-000000000002": [6, 0]}}'),
  ('z', '{"nodes": {"cccccccc-0000-4000-8000-000000000003": [0, 9]}}');
SELECT crdt.merge(x.c, x.c)::text = x.c::text AS idempotent,
       crdt.merge(x.c, y.c)::text = crdt.merge(y.c, x.c)::text AS commutative,
       crdt.merge(crdt.merge(x.c, y.c), z.c)::text = crdt.merge(x.c, crdt.merge(y.c, z.c))::text AS associative,
       crdt.merge(crdt.merge(x.c, y.c), z.c) AS merged
FROM laws x, laws y, laws z WHERE x.name = 'x' AND y.name = 'y' AND z.name = 'z';

-- merge_agg folds replicas; NULLs are skipped; no rows gives NULL
SELECT crdt.merge_agg(c) FROM laws;
SELECT crdt.merge_agg(c)::bigint FROM (SELECT c FROM laws UNION ALL SELECT NULL) s;
SELECT crdt.merge_agg(c) IS NULL AS empty_is_null FROM laws WHERE false;
-- merge with NULL is NULL (strict)
SELECT crdt.merge(c, NULL) IS NULL AS strict FROM laws WHERE name = 'x';

-- text input: any key order and whitespace, value optional, canonical output
SELECT '{ "nodes" : { "bbbbbbbb-0000-4000-8000-000000000002" : [ 1 , 0 ] , "aaaaaaaa-0000-4000-8000-000000000001": [0, 2] }, "value": -1 }'::crdt.counter;
SELECT '{"nodes": {}}'::crdt.counter;
SELECT '{"value": 18446744073709551615, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [18446744073709551615, 0]}}'::crdt.counter;
-- a merged value beyond bigint is kept exactly but cannot be read as bigint
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [18446744073709551615, 0]}}'::crdt.counter::bigint;
SELECT crdt.value('{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [18446744073709551615, 0], "bbbbbbbb-0000-4000-8000-000000000002": [18446744073709551615, 0]}}');
-- text round trip through a table is exact
SELECT c::text::crdt.counter::text = c::text AS round_trip FROM laws ORDER BY name;

-- without crdt on the search_path the operators are not found: an error, never a silent
-- fallback to bigint arithmetic
SET search_path = counter_test, public;
SELECT n + 1 FROM stock WHERE id = 1;
SELECT n OPERATOR(crdt.+) 1 AS qualified FROM stock WHERE id = 1;

-- amounts as client drivers bind them (tests/replication/tests/drivers.rs does it through a
-- real client library): smallint, integer, bigint, whole numeric, and untyped (text)
SET search_path = counter_test, public, crdt;
CREATE TABLE bound (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0);
PREPARE add_smallint(smallint) AS UPDATE bound SET n = n + $1 WHERE id = 1;
PREPARE add_numeric(numeric) AS UPDATE bound SET n = n - $1 WHERE id = 1;
PREPARE add_untyped AS UPDATE bound SET n = n + $1 WHERE id = 1;
PREPARE insert_untyped AS INSERT INTO bound VALUES ($1, $2);
PREPARE insert_smallint(int, smallint) AS INSERT INTO bound VALUES ($1, $2);
PREPARE insert_numeric(int, numeric) AS INSERT INTO bound VALUES ($1, $2);
EXECUTE insert_untyped(1, '5');
EXECUTE insert_smallint(2, 7);
EXECUTE insert_numeric(3, 8.000);
EXECUTE add_smallint(2);
EXECUTE add_numeric(3);
EXECUTE add_untyped('10');
SELECT id, n::bigint, n::text FROM bound ORDER BY id;
SELECT parameter_types FROM pg_prepared_statements WHERE name IN ('add_untyped', 'insert_untyped') ORDER BY name;
EXECUTE add_numeric(0.5);
EXECUTE add_untyped('1e3');
DEALLOCATE ALL;
DROP TABLE bound;
