-- crdt.doc: PATCH, PUT, addTo counters, merge, reading. Two crdt.node_id values stand for two
-- nodes; stamps are never printed (they depend on the clock), only compared.
CREATE SCHEMA doc_test;  -- the test files share one database
SET search_path = doc_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';

-- jsonb -> doc stamps every key; doc -> jsonb gives the plain object back
SELECT '{"name": "x", "inventoryCount": 5}'::jsonb::crdt.doc::jsonb;
SELECT crdt.to_jsonb(crdt.patch(NULL, '{"a": 1}'));
-- the text form leads with the plain object; the metadata follows
SELECT left(crdt.patch(NULL, '{"a": 1}')::text, 31) AS text_form_starts_with;

-- the inventory case: node A renames and adds 5, node B subtracts 1, from the same record
CREATE TABLE replica (node text PRIMARY KEY, d crdt.doc);
INSERT INTO replica VALUES ('start', '{"name": "x", "inventoryCount": 5}'::jsonb);
INSERT INTO replica SELECT 'A', crdt.add(crdt.patch(d, '{"name": "renamed on A"}'), 'inventoryCount', 5)
  FROM replica WHERE node = 'start';
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
INSERT INTO replica SELECT 'B', crdt.add(d, 'inventoryCount', -1) FROM replica WHERE node = 'start';
SELECT node, d::jsonb FROM replica ORDER BY node;
SELECT crdt.merge(a.d, b.d)::jsonb AS ab, crdt.merge(b.d, a.d)::jsonb AS ba,
       crdt.merge(a.d, b.d)::text = crdt.merge(b.d, a.d)::text AS same_state
FROM replica a, replica b WHERE a.node = 'A' AND b.node = 'B';

-- same property on two nodes: the later stamp wins on both
CREATE TABLE two (node text PRIMARY KEY, d crdt.doc);
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
INSERT INTO two VALUES ('A', crdt.patch(NULL, '{"color": "red"}'));
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
INSERT INTO two SELECT 'B', crdt.patch(d, '{"color": "blue"}') FROM two WHERE node = 'A';
SELECT crdt.merge(a.d, b.d) -> 'color' AS ab, crdt.merge(b.d, a.d) -> 'color' AS ba
FROM two a, two b WHERE a.node = 'A' AND b.node = 'B';

-- put after a concurrent older patch of another property drops it; a patch after the put survives
CREATE TABLE puts (step text PRIMARY KEY, d crdt.doc);
INSERT INTO puts VALUES ('base', crdt.patch(NULL, '{"a": 1, "b": 2}'));
INSERT INTO puts SELECT 'older patch', crdt.patch(d, '{"c": 3}') FROM puts WHERE step = 'base';
INSERT INTO puts SELECT 'put', crdt.put(d, '{"a": 10}') FROM puts WHERE step = 'base';
INSERT INTO puts SELECT 'newer patch', crdt.patch(d, '{"d": 4}') FROM puts WHERE step = 'put';
SELECT crdt.merge(o.d, p.d)::jsonb AS put_wins,
       crdt.merge(crdt.merge(o.d, p.d), n.d)::jsonb AS newer_patch_survives,
       crdt.merge(n.d, crdt.merge(p.d, o.d))::jsonb AS any_order
FROM puts o, puts p, puts n WHERE o.step = 'older patch' AND p.step = 'put' AND n.step = 'newer patch';

-- a patch that sets a counter property wins over increments it had not seen, keeps later ones
CREATE TABLE sets (step text PRIMARY KEY, d crdt.doc);
INSERT INTO sets VALUES ('base', crdt.add(crdt.patch(NULL, '{"n": 5}'), 'n', 1));
INSERT INTO sets SELECT 'unseen +100', crdt.add(d, 'n', 100) FROM sets WHERE step = 'base';
INSERT INTO sets SELECT 'set 50', crdt.patch(d, '{"n": 50}') FROM sets WHERE step = 'base';
INSERT INTO sets SELECT 'set 50 then +2', crdt.add(d, 'n', 2) FROM sets WHERE step = 'set 50';
SELECT crdt.merge(u.d, s.d) -> 'n' AS set_wins,
       crdt.merge(u.d, t.d) -> 'n' AS later_increment_kept,
       crdt.merge(t.d, u.d) -> 'n' AS either_order
FROM sets u, sets s, sets t WHERE u.step = 'unseen +100' AND s.step = 'set 50' AND t.step = 'set 50 then +2';
SELECT crdt.to_jsonb(crdt.add(crdt.add(NULL, 'n', 1.25), 'n', -0.5)) AS fractional;

-- remove, and PATCH null, leave tombstones that replicate
SELECT crdt.remove(crdt.patch(NULL, '{"a": 1, "b": 2}'), 'a')::jsonb AS removed,
       crdt.patch(crdt.patch(NULL, '{"a": 1, "b": 2}'), '{"b": null}')::jsonb AS patched_null;
SELECT crdt.merge(x.d, crdt.remove(x.d, 'a'))::jsonb AS removal_wins_over_older
FROM (SELECT crdt.patch(NULL, '{"a": 1, "b": 2}') AS d) x;

-- reading one property: -> jsonb, ->> text
SELECT d -> 'name' AS name_json, d ->> 'name' AS name_text, d -> 'inventoryCount' AS count,
       d -> 'missing' IS NULL AS missing
FROM replica WHERE node = 'A';

-- every kind of JSON value round-trips exactly through text, binary and ::jsonb
CREATE TABLE kinds (id int PRIMARY KEY, d crdt.doc);
INSERT INTO kinds VALUES (1, '{"s": "quote \" backslash \\ tab \t newline \n unicode é ☃ 𝄞 \u0001",
  "big": 123456789012345678901234567890.123456789, "frac": 1.50, "neg": -0.001, "exp": 1e3,
  "arr": [1, "two", null, true, false, {"x": []}], "obj": {"z": 1, "a": {"deep": [[]]}},
  "t": true, "f": false, "empty": {}}'::jsonb);
SELECT d::jsonb = '{"s": "quote \" backslash \\ tab \t newline \n unicode é ☃ 𝄞 \u0001",
  "big": 123456789012345678901234567890.123456789, "frac": 1.50, "neg": -0.001, "exp": 1e3,
  "arr": [1, "two", null, true, false, {"x": []}], "obj": {"z": 1, "a": {"deep": [[]]}},
  "t": true, "f": false, "empty": {}}'::jsonb AS jsonb_exact,
  d::text::crdt.doc::text = d::text AS text_round_trip,
  d -> 'big' AS big, d -> 'frac' AS frac, d ->> 's' AS s
FROM kinds;
\set copyfile '/tmp/crdt_regress_doc.bin'
COPY kinds TO :'copyfile' (FORMAT binary);
CREATE TABLE kinds_copy (id int PRIMARY KEY, d crdt.doc);
COPY kinds_copy FROM :'copyfile' (FORMAT binary);
SELECT k.d::text = c.d::text AS binary_round_trip FROM kinds k JOIN kinds_copy c USING (id);

-- merge laws on concrete values, and merge_agg
SELECT crdt.merge(a.d, a.d)::text = a.d::text AS idempotent,
       crdt.merge(a.d, b.d)::text = crdt.merge(b.d, a.d)::text AS commutative,
       crdt.merge(crdt.merge(a.d, b.d), c.d)::text = crdt.merge(a.d, crdt.merge(b.d, c.d))::text AS associative
FROM puts a, puts b, puts c WHERE a.step = 'older patch' AND b.step = 'put' AND c.step = 'newer patch';
SELECT crdt.merge_agg(d)::jsonb FROM puts;
SELECT crdt.merge_agg(d)::jsonb FROM replica;

-- stamps, for debugging: which node wrote what (times are not shown: they depend on the clock)
SELECT key, kind, node, written_at IS NOT NULL AS has_time FROM crdt.stamps(
  (SELECT crdt.merge(a.d, b.d) FROM replica a, replica b WHERE a.node = 'A' AND b.node = 'B'))
ORDER BY key NULLS FIRST;
SELECT key, kind, node FROM crdt.stamps((SELECT d FROM puts WHERE step = 'newer patch'))
ORDER BY key NULLS FIRST;
-- successive writes get strictly increasing stamps, whatever the wall clock does
WITH d AS MATERIALIZED (SELECT crdt.patch(crdt.patch(crdt.patch(NULL, '{"a": 1}'), '{"b": 1}'), '{"c": 1}') AS d)
SELECT bool_and(s1.hlc < s2.hlc) AS strictly_increasing, count(*) AS pairs
FROM d, crdt.stamps(d.d) s1, crdt.stamps(d.d) s2 WHERE s1.key < s2.key;
