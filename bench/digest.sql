-- crdt.digest over 1,000,000 rows of a CRDT table (key, text, counter, doc and row clock),
-- against the floor: one full scan hashing each row's text. Run by scripts/bench.sh.
CREATE EXTENSION crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
CREATE TABLE big (id int PRIMARY KEY, label text, qty crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
SELECT crdt.enable('big');
INSERT INTO big SELECT g, 'label-' || g, g % 100, crdt.patch(NULL, jsonb_build_object('n', g % 7))
FROM generate_series(1, 1000000) g;
VACUUM ANALYZE big;

\echo '== crdt.digest of 1,000,000 rows (256 buckets) against one scan hashing each row (interleaved rounds)'
SELECT bench_rounds('digest of 1,000,000 rows', 3,
  'crdt.digest(big, 256)', 'SELECT count(*) FROM crdt.digest(''big'', 256)',
  'scan hashing each row as text (floor)', 'SELECT sum(hashtextextended(b::text, 0)) FROM big b');
SELECT variant, median_ms, min_ms, max_ms FROM bench_summary WHERE bench = 'digest of 1,000,000 rows';
