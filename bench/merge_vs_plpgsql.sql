-- crdt.merge against the same merges written in PL/pgSQL over the same states kept as jsonb
-- (the text forms, `x::text::jsonb`), and for docs against `jsonb || jsonb` on the plain objects
-- (which merges nothing: the right side simply wins every key it has).
-- Run by scripts/bench.sh on a throwaway instance with the release build; prints figures only.
--
-- Each representation has its own table (crdt values, jsonb states, plain objects), so every
-- query scans only what it reads ("scan included", as in sizes_and_merge.sql). The jsonb tables
-- use toast_tuple_target = 8160 so their ~1 kB states stay inline and uncompressed: PL/pgSQL
-- pays no decompression, the conservative choice for this comparison. Parallel query is off so
-- every figure is one core's work on 50,000 rows.
--
-- The PL/pgSQL is written as one would for production: one pass over b's entries looked up in
-- a's, jsonb numbers cast straight to numeric, values corrected by differences rather than
-- summed again. Variants measured while writing this and left out as no faster: a set-based
-- counter merge (UNION ALL + GROUP BY + jsonb_object_agg, about 1.5x slower), re-summing the
-- nodes in a second loop (about 1.3x slower), and collecting a doc's edits to apply one `||`
-- and one `-` per section at the end (no difference).
CREATE EXTENSION crdt;
SET search_path = public, crdt;
SET max_parallel_workers_per_gather = 0;

\set node_a 'aaaaaaaa-0000-4000-8000-000000000001'
\set node_b 'bbbbbbbb-0000-4000-8000-000000000002'
\set node_c 'cccccccc-0000-4000-8000-000000000003'

------------------------------------------------------------------------------------------------
-- The merges in PL/pgSQL, over the text forms as jsonb
------------------------------------------------------------------------------------------------

-- Counter: {"value": v, "nodes": {"<uuid>": [inc, dec], ...}}. Per node the larger of each sum;
-- the value is a's, corrected by what each node's slot gained. Sums are u64 in crdt, so numeric
-- (not bigint).
CREATE FUNCTION plpgsql_counter_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  nodes jsonb := a->'nodes';
  total numeric := (a->'value')::numeric;   -- the text form's value always matches its nodes
  node text;
  theirs jsonb;
  mine jsonb;
  inc numeric;
  dec numeric;
  my_inc numeric;
  my_dec numeric;
BEGIN
  FOR node, theirs IN SELECT key, value FROM jsonb_each(b->'nodes') LOOP
    mine := nodes->node;
    inc := (theirs->0)::numeric;
    dec := (theirs->1)::numeric;
    IF mine IS NULL THEN
      nodes := nodes || jsonb_build_object(node, theirs);
      total := total + inc - dec;
    ELSE
      my_inc := (mine->0)::numeric;
      my_dec := (mine->1)::numeric;
      IF inc > my_inc OR dec > my_dec THEN
        inc := greatest(inc, my_inc);
        dec := greatest(dec, my_dec);
        nodes := nodes || jsonb_build_object(node, jsonb_build_array(inc, dec));
        total := total + (inc - my_inc) - (dec - my_dec);
      END IF;
    END IF;
  END LOOP;
  RETURN jsonb_build_object('value', total, 'nodes', nodes);
END $$;

-- Doc: {"value": {...}, "replaced": null | [hlc, "<uuid>"], "stamps": {key: [hlc, "<uuid>"]},
--       "counters": {key: {"base": n, "nodes": {...}}}, "removed": {key: [hlc, "<uuid>"]}}
-- (a counter property's stamp, in "stamps", is the stamp of its base.)
-- Per property the entry with the larger (hlc, node, rank) wins, rank being tombstone 0 <
-- value 1 < counter 2; two counters with the same base stamp keep per node the larger of each
-- sum (then the value is base + Σinc − Σdec); a counter on an older base loses with all its
-- increments. Then the later "replaced" watermark drops every entry stamped before it.
-- (Two different values with one stamp only occur in forged states; crdt then keeps the larger
-- canonical JSON text, this keeps the larger jsonb. The data below never has that case.)
CREATE FUNCTION plpgsql_doc_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  val        jsonb := a->'value';
  stamps     jsonb := a->'stamps';
  counters   jsonb := a->'counters';
  removed    jsonb := a->'removed';
  replaced   jsonb := a->'replaced';
  b_value    jsonb := b->'value';
  b_counters jsonb := b->'counters';
  k text; theirs jsonb; their_rank int; mine jsonb; my_rank int; cmp int;
  mc jsonb; tc jsonb; nodes jsonb; node text; s jsonb; m jsonb;
  inc numeric; dec numeric; my_inc numeric; my_dec numeric; base numeric; total numeric;
BEGIN
  -- start from a and merge in each of b's entries: present properties, then tombstones
  FOR k, theirs, their_rank IN
      SELECT key, value, CASE WHEN b_counters ? key THEN 2 ELSE 1 END FROM jsonb_each(b->'stamps')
      UNION ALL
      SELECT key, value, 0 FROM jsonb_each(b->'removed')
  LOOP
    mine := stamps->k;
    IF mine IS NOT NULL THEN
      my_rank := CASE WHEN counters ? k THEN 2 ELSE 1 END;
    ELSE
      mine := removed->k;
      my_rank := 0;
    END IF;
    -- compare (stamp, rank); a stamp is [hlc, "node"], ordered by hlc, then node (as uuid bytes)
    IF mine IS NULL THEN
      cmp := -1;
    ELSIF mine = theirs THEN
      cmp := sign(my_rank - their_rank);
    ELSIF ((mine->0)::numeric, (mine->>1)::uuid) < ((theirs->0)::numeric, (theirs->>1)::uuid) THEN
      cmp := -1;
    ELSE
      cmp := 1;
    END IF;

    IF cmp < 0 THEN
      -- b's entry wins: it replaces a's, whatever the kinds
      IF their_rank = 0 THEN
        IF my_rank > 0 THEN
          val := val - k;
          stamps := stamps - k;
          IF my_rank = 2 THEN counters := counters - k; END IF;
        END IF;
        removed := removed || jsonb_build_object(k, theirs);
      ELSE
        IF mine IS NOT NULL THEN
          IF my_rank = 0 THEN removed := removed - k;
          ELSIF my_rank = 2 AND their_rank = 1 THEN counters := counters - k;
          END IF;
        END IF;
        val := val || jsonb_build_object(k, b_value->k);
        stamps := stamps || jsonb_build_object(k, theirs);
        IF their_rank = 2 THEN
          counters := counters || jsonb_build_object(k, b_counters->k);
        END IF;
      END IF;
    ELSIF cmp = 0 AND my_rank = 2 THEN
      -- two counters on the same base: per node the larger of each sum (the larger base only
      -- differs in forged states); the value is a's, corrected by what changed
      mc := counters->k;
      tc := b_counters->k;
      nodes := mc->'nodes';
      base := (mc->'base')::numeric;
      total := (val->k)::numeric;
      IF (tc->'base')::numeric > base THEN
        total := total + (tc->'base')::numeric - base;
        base := (tc->'base')::numeric;
      END IF;
      FOR node, s IN SELECT key, value FROM jsonb_each(tc->'nodes') LOOP
        m := nodes->node;
        IF m IS NULL THEN
          nodes := nodes || jsonb_build_object(node, s);
          total := total + (s->0)::numeric - (s->1)::numeric;
        ELSE
          inc := (s->0)::numeric; dec := (s->1)::numeric;
          my_inc := (m->0)::numeric; my_dec := (m->1)::numeric;
          IF inc > my_inc OR dec > my_dec THEN
            inc := greatest(inc, my_inc); dec := greatest(dec, my_dec);
            nodes := nodes || jsonb_build_object(node, jsonb_build_array(inc, dec));
            total := total + (inc - my_inc) - (dec - my_dec);
          END IF;
        END IF;
      END LOOP;
      counters := counters || jsonb_build_object(k, jsonb_build_object('base', base, 'nodes', nodes));
      val := val || jsonb_build_object(k, total);
    ELSIF cmp = 0 AND my_rank = 1 AND b_value->k > val->k THEN
      -- one stamp, two values: forged states only; pick one deterministically
      val := val || jsonb_build_object(k, b_value->k);
    END IF;
  END LOOP;

  -- the later watermark, and nothing stamped before it
  IF jsonb_typeof(b->'replaced') = 'array'
     AND (jsonb_typeof(replaced) <> 'array'
          OR ((replaced->0)::numeric, (replaced->>1)::uuid)
             < ((b->'replaced'->0)::numeric, (b->'replaced'->>1)::uuid)) THEN
    replaced := b->'replaced';
  END IF;
  IF jsonb_typeof(replaced) = 'array' THEN
    FOR k, s IN SELECT key, value FROM jsonb_each(stamps) LOOP
      IF ((s->0)::numeric, (s->>1)::uuid) < ((replaced->0)::numeric, (replaced->>1)::uuid) THEN
        val := val - k;
        stamps := stamps - k;
        counters := counters - k;
      END IF;
    END LOOP;
    FOR k, s IN SELECT key, value FROM jsonb_each(removed) LOOP
      IF ((s->0)::numeric, (s->>1)::uuid) < ((replaced->0)::numeric, (replaced->>1)::uuid) THEN
        removed := removed - k;
      END IF;
    END LOOP;
  END IF;

  RETURN jsonb_build_object('value', val, 'replaced', replaced, 'stamps', stamps,
                            'counters', counters, 'removed', removed);
END $$;

------------------------------------------------------------------------------------------------
\echo '== building 50,000 pairs of 3-node counters'
------------------------------------------------------------------------------------------------
-- A common history on three nodes, then each replica moves on its own: a is ahead in node A's
-- increments and node B's decrements, b in node B's increments and (every other row) node C's
-- decrements; a shares node C's slot with b on odd rows.
SET crdt.node_id = :'node_a';
CREATE TEMP TABLE counter_build AS
  SELECT i AS id, (i % 97)::crdt.counter AS a FROM generate_series(1, 50000) i;
SET crdt.node_id = :'node_b';
UPDATE counter_build SET a = a + (id % 13 + 1);
SET crdt.node_id = :'node_c';
UPDATE counter_build SET a = a - (id % 7 + 1);
ALTER TABLE counter_build ADD COLUMN b crdt.counter;
UPDATE counter_build SET b = a;
SET crdt.node_id = :'node_a';
UPDATE counter_build SET a = a + (id % 5 + 1);
SET crdt.node_id = :'node_b';
UPDATE counter_build SET a = a - 1, b = b + 3;
SET crdt.node_id = :'node_c';
UPDATE counter_build SET b = b - 2 WHERE id % 2 = 0;

CREATE TABLE counter_pairs AS SELECT id, a, b FROM counter_build ORDER BY id;
CREATE TABLE counter_jsonb_pairs WITH (toast_tuple_target = 8160) AS
  SELECT id, a::text::jsonb AS ja, b::text::jsonb AS jb FROM counter_build ORDER BY id;
DROP TABLE counter_build;

------------------------------------------------------------------------------------------------
\echo '== building 50,000 pairs of 10-property docs'
------------------------------------------------------------------------------------------------
-- Written on node A at once; then A re-patches p1, p2 and p4 (and p5 on every 5th row, which
-- gives p5 a new counter base there) and adds to p5; B later re-patches p2, p3 and p4, adds to
-- p5 (on the old base) and removes p8 on every 10th row; then A re-patches p4 once more (A wins
-- it) and, on every 100th row, replaces its whole record (crdt.put), which drops B's earlier
-- writes from the merge.
SET crdt.node_id = :'node_a';
CREATE TEMP TABLE doc_build AS
  SELECT i AS id,
         crdt.patch(NULL, jsonb_build_object(
           'p0', 'value-0-' || i, 'p1', i, 'p2', 'value-2', 'p3', i % 100, 'p4', 'value-4',
           'p5', i % 50, 'p6', 'value-6', 'p7', 7, 'p8', 'value-8', 'p9', i % 2 = 0)) AS a
  FROM generate_series(1, 50000) i;
ALTER TABLE doc_build ADD COLUMN b crdt.doc;
UPDATE doc_build SET b = a;
UPDATE doc_build SET a = crdt.add(
  crdt.patch(a, CASE WHEN id % 5 = 0
                     THEN jsonb_build_object('p1', -id, 'p2', 'a-2', 'p4', 'a-4', 'p5', 100 + id % 7)
                     ELSE jsonb_build_object('p1', -id, 'p2', 'a-2', 'p4', 'a-4') END),
  'p5', id % 4 + 1);
SET crdt.node_id = :'node_b';
UPDATE doc_build SET b = crdt.add(
  crdt.patch(b, CASE WHEN id % 10 = 0
                     THEN jsonb_build_object('p2', 'b-2', 'p3', 'b-3', 'p4', 'b-4', 'p8', NULL)
                     ELSE jsonb_build_object('p2', 'b-2', 'p3', 'b-3', 'p4', 'b-4') END),
  'p5', -(id % 3 + 1));
SET crdt.node_id = :'node_a';
UPDATE doc_build SET a = crdt.patch(a, jsonb_build_object('p4', 'a-4-again-' || id));
UPDATE doc_build SET a = crdt.put(a, crdt.to_jsonb(a) || '{"p9": "put"}') WHERE id % 100 = 0;

CREATE TABLE doc_pairs AS SELECT id, a, b FROM doc_build ORDER BY id;
CREATE TABLE doc_jsonb_pairs WITH (toast_tuple_target = 8160) AS
  SELECT id, a::text::jsonb AS ja, b::text::jsonb AS jb FROM doc_build ORDER BY id;
CREATE TABLE doc_plain_pairs WITH (toast_tuple_target = 8160) AS
  SELECT id, a::jsonb AS pa, b::jsonb AS pb FROM doc_build ORDER BY id;
DROP TABLE doc_build;

VACUUM ANALYZE counter_pairs, counter_jsonb_pairs, doc_pairs, doc_jsonb_pairs, doc_plain_pairs;

SELECT relname AS "table", pg_size_pretty(pg_table_size(oid)) AS size
FROM pg_class
WHERE relname IN ('counter_pairs', 'counter_jsonb_pairs', 'doc_pairs', 'doc_jsonb_pairs', 'doc_plain_pairs')
ORDER BY relname;

------------------------------------------------------------------------------------------------
\echo '== the PL/pgSQL merges give what crdt.merge gives (every row, both argument orders; must be 0)'
------------------------------------------------------------------------------------------------
-- value: the "value" sections compared (as jsonb, so numbers compare as numbers), as crdt.merge(a, b)
-- and the PL/pgSQL merge of the same states give them; state: the whole merged state, stamps,
-- counters, tombstones and watermark included, in both argument orders.
CREATE TEMP TABLE merge_checks ("case" text, mismatches bigint, compared bigint);
INSERT INTO merge_checks
SELECT c."case", c.mismatches, c.compared
FROM (SELECT count(*) FILTER (WHERE plpgsql_counter_merge(j.ja, j.jb)->'value'
                                    IS DISTINCT FROM crdt.merge(p.a, p.b)::text::jsonb->'value') AS v,
             count(*) FILTER (WHERE plpgsql_counter_merge(j.ja, j.jb)
                                    IS DISTINCT FROM crdt.merge(p.a, p.b)::text::jsonb
                                 OR plpgsql_counter_merge(j.jb, j.ja)
                                    IS DISTINCT FROM crdt.merge(p.b, p.a)::text::jsonb) AS s,
             count(*) AS n
      FROM counter_pairs p JOIN counter_jsonb_pairs j USING (id)) m,
     LATERAL (VALUES ('counter pairs: value', m.v, m.n),
                     ('counter pairs: whole state, both orders', m.s, m.n)) c("case", mismatches, compared);
INSERT INTO merge_checks
SELECT c."case", c.mismatches, c.compared
FROM (SELECT count(*) FILTER (WHERE plpgsql_doc_merge(j.ja, j.jb)->'value'
                                    IS DISTINCT FROM crdt.merge(p.a, p.b)::text::jsonb->'value') AS v,
             count(*) FILTER (WHERE plpgsql_doc_merge(j.ja, j.jb)
                                    IS DISTINCT FROM crdt.merge(p.a, p.b)::text::jsonb
                                 OR plpgsql_doc_merge(j.jb, j.ja)
                                    IS DISTINCT FROM crdt.merge(p.b, p.a)::text::jsonb) AS s,
             count(*) AS n
      FROM doc_pairs p JOIN doc_jsonb_pairs j USING (id)) m,
     LATERAL (VALUES ('doc pairs: value', m.v, m.n),
                     ('doc pairs: whole state, both orders', m.s, m.n)) c("case", mismatches, compared);

-- The rarer cases, a few pairs each, merged both ways: removals and re-patches racing, a put on
-- each side, adds on a missing and on a removed property, a set racing an add, a record
-- replaced after adds, and merges of a merge.
SET crdt.node_id = :'node_a';
CREATE TEMP TABLE doc_edges (name text, a crdt.doc, b crdt.doc);
SELECT crdt.patch(NULL, '{"x": 1, "y": "y", "z": [1, 2], "n": 10}') AS d0 \gset
INSERT INTO doc_edges VALUES ('remove vs later patch',
  crdt.remove(:'d0', 'y'), NULL), ('add on missing', crdt.add(:'d0', 'm', 2.5), NULL);
SET crdt.node_id = :'node_b';
UPDATE doc_edges SET b = crdt.patch(:'d0', '{"y": "later"}') WHERE name = 'remove vs later patch';
UPDATE doc_edges SET b = crdt.add(:'d0', 'm', -1) WHERE name = 'add on missing';
INSERT INTO doc_edges VALUES
  ('patch vs later remove', crdt.patch(:'d0', '{"y": "earlier"}'), NULL),
  ('add on removed', crdt.add(crdt.remove(:'d0', 'x'), 'x', 4), NULL),
  ('set vs add', crdt.add(:'d0', 'n', 5), NULL),
  ('put vs patch', crdt.put(:'d0', '{"x": 2, "w": true}'), NULL),
  ('put on both', crdt.put(:'d0', '{"x": 3}'), NULL),
  ('put after adds', crdt.add(:'d0', 'n', 7), NULL);
SET crdt.node_id = :'node_c';
UPDATE doc_edges SET b = crdt.remove(crdt.patch(:'d0', '{"x": 9}'), 'y') WHERE name = 'patch vs later remove';
UPDATE doc_edges SET b = crdt.add(crdt.patch(:'d0', '{"q": 1}'), 'x', -3) WHERE name = 'add on removed';
UPDATE doc_edges SET b = crdt.patch(crdt.add(:'d0', 'n', 2), '{"n": 100}') WHERE name = 'set vs add';
UPDATE doc_edges SET b = crdt.patch(:'d0', '{"x": 5, "v": null}') WHERE name = 'put vs patch';
UPDATE doc_edges SET b = crdt.put(:'d0', '{"y": 4}') WHERE name = 'put on both';
UPDATE doc_edges SET b = crdt.put(crdt.add(:'d0', 'n', -2), '{"n": 1}') WHERE name = 'put after adds';
UPDATE doc_edges SET a = crdt.add(a, 'n', 1) WHERE name = 'put after adds';
INSERT INTO doc_edges
  SELECT 'merged with ' || name, crdt.merge(a, b), crdt.add(crdt.patch(b, '{"k": 0}'), 'k', 1)
  FROM doc_edges;
INSERT INTO merge_checks
SELECT c."case", c.mismatches, c.compared
FROM (SELECT count(*) FILTER (WHERE plpgsql_doc_merge(a::text::jsonb, b::text::jsonb)->'value'
                                    IS DISTINCT FROM crdt.merge(a, b)::text::jsonb->'value'
                                 OR plpgsql_doc_merge(b::text::jsonb, a::text::jsonb)->'value'
                                    IS DISTINCT FROM crdt.merge(b, a)::text::jsonb->'value') AS v,
             count(*) FILTER (WHERE plpgsql_doc_merge(a::text::jsonb, b::text::jsonb)
                                    IS DISTINCT FROM crdt.merge(a, b)::text::jsonb
                                 OR plpgsql_doc_merge(b::text::jsonb, a::text::jsonb)
                                    IS DISTINCT FROM crdt.merge(b, a)::text::jsonb) AS s,
             count(*) AS n
      FROM doc_edges) m,
     LATERAL (VALUES ('doc edge cases: value, both orders', m.v, m.n),
                     ('doc edge cases: whole state, both orders', m.s, m.n)) c("case", mismatches, compared);
SELECT "case", mismatches, compared FROM merge_checks;

------------------------------------------------------------------------------------------------
\echo '== 50,000 counter merges: crdt.merge vs PL/pgSQL on jsonb (3 rounds, interleaved)'
------------------------------------------------------------------------------------------------
\timing on
SELECT count(crdt.merge(a, b)) AS counter_merge_crdt FROM counter_pairs;
SELECT count(plpgsql_counter_merge(ja, jb)) AS counter_merge_plpgsql FROM counter_jsonb_pairs;
SELECT count(crdt.merge(a, b)) AS counter_merge_crdt FROM counter_pairs;
SELECT count(plpgsql_counter_merge(ja, jb)) AS counter_merge_plpgsql FROM counter_jsonb_pairs;
SELECT count(crdt.merge(a, b)) AS counter_merge_crdt FROM counter_pairs;
SELECT count(plpgsql_counter_merge(ja, jb)) AS counter_merge_plpgsql FROM counter_jsonb_pairs;
\timing off

------------------------------------------------------------------------------------------------
\echo '== 50,000 doc merges: crdt.merge vs PL/pgSQL on jsonb vs jsonb || jsonb (3 rounds, interleaved)'
------------------------------------------------------------------------------------------------
\timing on
SELECT count(crdt.merge(a, b)) AS doc_merge_crdt FROM doc_pairs;
SELECT count(plpgsql_doc_merge(ja, jb)) AS doc_merge_plpgsql FROM doc_jsonb_pairs;
SELECT count(pa || pb) AS doc_jsonb_concat FROM doc_plain_pairs;
SELECT count(crdt.merge(a, b)) AS doc_merge_crdt FROM doc_pairs;
SELECT count(plpgsql_doc_merge(ja, jb)) AS doc_merge_plpgsql FROM doc_jsonb_pairs;
SELECT count(pa || pb) AS doc_jsonb_concat FROM doc_plain_pairs;
SELECT count(crdt.merge(a, b)) AS doc_merge_crdt FROM doc_pairs;
SELECT count(plpgsql_doc_merge(ja, jb)) AS doc_merge_plpgsql FROM doc_jsonb_pairs;
SELECT count(pa || pb) AS doc_jsonb_concat FROM doc_plain_pairs;
\timing off

------------------------------------------------------------------------------------------------
-- The harness that scripts/bench.sh loads first (bench/harness.sql), when it is there: the same
-- cases again through bench_rounds (a warm-up, then :rounds interleaved rounds, 5 unless set),
-- and the mismatch counts as figures, so BENCHMARKS.md shows them. Run without it, the file
-- stops above.
------------------------------------------------------------------------------------------------
SELECT to_regproc('public.bench_rounds') IS NOT NULL AS harness \gset
\if :harness
\if :{?rounds}
\else
\set rounds 5
\endif
\echo '== the same cases through bench_rounds (warm-up +' :rounds 'interleaved rounds, recorded for BENCHMARKS.md)'
INSERT INTO bench_figure
  SELECT 'PL/pgSQL merges vs crdt.merge: mismatches', "case", mismatches, format('pairs, of %s compared', compared)
  FROM merge_checks;
SELECT bench_rounds('counter merge vs PL/pgSQL, 50,000 pairs of 3-node counters', :rounds,
  'crdt.merge(counter, counter)', 'SELECT count(crdt.merge(a, b)) FROM counter_pairs',
  'plpgsql_counter_merge(jsonb, jsonb)', 'SELECT count(plpgsql_counter_merge(ja, jb)) FROM counter_jsonb_pairs')
  \g /dev/null
SELECT bench_rounds('doc merge vs PL/pgSQL, 50,000 pairs of 10-property docs', :rounds,
  'crdt.merge(doc, doc)', 'SELECT count(crdt.merge(a, b)) FROM doc_pairs',
  'plpgsql_doc_merge(jsonb, jsonb)', 'SELECT count(plpgsql_doc_merge(ja, jb)) FROM doc_jsonb_pairs',
  'jsonb || jsonb (plain objects)', 'SELECT count(pa || pb) FROM doc_plain_pairs')
  \g /dev/null
SELECT bench, variant, median_ms, min_ms, max_ms FROM bench_summary
WHERE bench LIKE '% vs PL/pgSQL, %' ORDER BY bench, variant;
\endif
