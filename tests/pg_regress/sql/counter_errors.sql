-- Bad input to every crdt.counter entry point gets a precise SQLSTATE, never XX000.
\set VERBOSITY sqlstate
CREATE SCHEMA counter_errors_test;  -- the test files share one database
SET search_path = counter_errors_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';

-- malformed text: 22P02
SELECT ''::crdt.counter;
SELECT 'nonsense'::crdt.counter;
SELECT '5.5'::crdt.counter;  -- 22023: a plain number must be whole
SELECT '99999999999999999999'::crdt.counter;  -- 22003
SELECT '{}'::crdt.counter;
SELECT '{"nodes": []}'::crdt.counter;
SELECT '{"nodes": {"not-a-uuid": [1, 0]}}'::crdt.counter;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1]}}'::crdt.counter;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [-1, 0]}}'::crdt.counter;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1.5, 0]}}'::crdt.counter;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [18446744073709551616, 0]}}'::crdt.counter;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [0, 0]}}'::crdt.counter;
SELECT '{"value": 2, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1, 0]}}'::crdt.counter;
SELECT '{"nodes": {}, "extra": 1}'::crdt.counter;
SELECT '{"nodes": {}, "nodes": {}}'::crdt.counter;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1, 0], "aaaaaaaa-0000-4000-8000-000000000001": [2, 0]}}'::crdt.counter;
SELECT '{"nodes": {}} trailing'::crdt.counter;

-- overflow: 22003, never a wrap
SELECT 9223372036854775807::bigint::crdt.counter + 1;
SELECT (-9223372036854775807)::bigint::crdt.counter - 2;
SELECT 1::crdt.counter - (-9223372036854775808)::bigint;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [18446744073709551615, 0]}}'::crdt.counter + 1;
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [9223372036854775808, 0]}}'::crdt.counter::bigint;

-- a bad node id setting: 22023
SET crdt.node_id = 'not-a-uuid';
SELECT crdt.node_id();

\set VERBOSITY default

-- what a user sees: the message names the type and the detail says what was wrong
SELECT '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1, 0]}, "value": 7}'::crdt.counter;
SELECT 9223372036854775807::bigint::crdt.counter + 1;
