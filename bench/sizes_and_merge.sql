-- Sizes of counters and docs against plain columns, and crdt.merge against jsonb || jsonb.
-- Run by scripts/bench.sh on a throwaway instance with the release build; prints figures only.
CREATE EXTENSION crdt;
SET search_path = public, crdt;

\echo '== counter size by number of nodes (stored bytes, as pg_column_size reports them)'
CREATE FUNCTION counter_with(k int) RETURNS crdt.counter LANGUAGE plpgsql AS $$
DECLARE c crdt.counter := 0; BEGIN
  FOR i IN 1..k LOOP
    PERFORM set_config('crdt.node_id', format('%s-0000-4000-8000-000000000000', lpad(to_hex(i), 8, '0')), true);
    c := c + 7;
  END LOOP; RETURN c; END $$;
SELECT k AS nodes, pg_column_size(counter_with(k)) AS counter_bytes, 8 + 24 * k AS target_bytes
FROM unnest(ARRAY[1, 3, 10, 100]) k;
INSERT INTO bench_figure SELECT 'size', format('counter, %s nodes (target %s)', k, 8 + 24 * k),
  pg_column_size(counter_with(k)), 'bytes' FROM unnest(ARRAY[1, 3, 10, 100]) k;

\echo '== a 10-property doc against the same object as jsonb'
\set obj '{"p0": "value-0", "p1": 1, "p2": "value-2", "p3": 3, "p4": "value-4", "p5": 5, "p6": "value-6", "p7": 7, "p8": "value-8", "p9": 9}'
SELECT pg_column_size(:'obj'::jsonb) AS jsonb_bytes,
       pg_column_size(crdt.patch(NULL, :'obj'::jsonb)) AS doc_bytes_one_write,
       pg_column_size(crdt.patch(crdt.patch(crdt.patch(crdt.patch(crdt.patch(crdt.patch(crdt.patch(
         crdt.patch(crdt.patch(crdt.patch(NULL, '{"p0": "value-0"}'), '{"p1": 1}'), '{"p2": "value-2"}'),
         '{"p3": 3}'), '{"p4": "value-4"}'), '{"p5": 5}'), '{"p6": "value-6"}'), '{"p7": 7}'),
         '{"p8": "value-8"}'), '{"p9": 9}')) AS doc_bytes_ten_writes;
INSERT INTO bench_figure VALUES
  ('size', '10-property object as jsonb', pg_column_size(:'obj'::jsonb), 'bytes'),
  ('size', 'the same as crdt.doc', pg_column_size(crdt.patch(NULL, :'obj'::jsonb)), 'bytes'),
  ('size', 'crdt.doc overhead per property (target <= 24)',
   round((pg_column_size(crdt.patch(NULL, :'obj'::jsonb)) - pg_column_size(:'obj'::jsonb)) / 10.0, 1), 'bytes');

\echo '== 50,000 merges of two 10-property docs, one newer in every property, and jsonb || jsonb on the same objects (interleaved rounds)'
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
CREATE TABLE doc_pairs AS
  SELECT crdt.patch(NULL, :'obj'::jsonb) AS a, :'obj'::jsonb AS ja FROM generate_series(1, 50000);
SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002';
ALTER TABLE doc_pairs ADD COLUMN b crdt.doc, ADD COLUMN jb jsonb;
UPDATE doc_pairs SET b = crdt.patch(a, replace(:'obj', 'value', 'other')::jsonb),
                     jb = replace(:'obj', 'value', 'other')::jsonb;
VACUUM ANALYZE doc_pairs;
\if :{?rounds}
\else
\set rounds 5
\endif
SELECT bench_rounds('doc merge, one side newer, 50,000 pairs of 10-property docs', :rounds,
  'crdt.merge(doc, doc)', 'SELECT count(crdt.merge(a, b)) FROM doc_pairs',
  'jsonb || jsonb', 'SELECT count(ja || jb) FROM doc_pairs');
