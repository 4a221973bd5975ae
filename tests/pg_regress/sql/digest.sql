-- crdt.digest: a hash per bucket of the key space, over every column by name; crdt.digest_rows
-- lists a bucket's rows. Two tables holding the same rows, their columns added in another
-- order, digest the same.
CREATE TABLE left_side (id int PRIMARY KEY, v text, n crdt.counter NOT NULL DEFAULT 0);
CREATE TABLE right_side (n crdt.counter NOT NULL DEFAULT 0, id int PRIMARY KEY, v text);
INSERT INTO left_side (id, v, n) SELECT g, 'v' || g, g FROM generate_series(1, 1000) g;
INSERT INTO right_side (id, v, n) SELECT id, v, n FROM left_side;
SELECT count(*) AS buckets, sum(rows) AS rows FROM crdt.digest('left_side', 16);
SELECT count(*) AS differing
FROM crdt.digest('left_side', 16) l FULL JOIN crdt.digest('right_side', 16) r USING (bucket)
WHERE l.digest IS DISTINCT FROM r.digest OR l.rows IS DISTINCT FROM r.rows;
-- one row differs: one bucket, and in it one row, which crdt.merge_row could then carry over
UPDATE right_side SET v = 'changed' WHERE id = 500;
SELECT count(*) AS differing
FROM crdt.digest('left_side', 16) l FULL JOIN crdt.digest('right_side', 16) r USING (bucket)
WHERE l.digest IS DISTINCT FROM r.digest;
SELECT l.key, l.row->>'v' AS left_v, r.row->>'v' AS right_v
FROM crdt.digest('left_side', 16) ld JOIN crdt.digest('right_side', 16) rd USING (bucket)
CROSS JOIN LATERAL crdt.digest_rows('left_side', ld.bucket, 16) l
JOIN LATERAL crdt.digest_rows('right_side', rd.bucket, 16) r ON r.key = l.key
WHERE ld.digest <> rd.digest AND l.digest <> r.digest;
-- a row missing on one side shows as a row count
DELETE FROM right_side WHERE id = 7;
SELECT count(*) AS differing_buckets
FROM crdt.digest('left_side', 16) l FULL JOIN crdt.digest('right_side', 16) r USING (bucket)
WHERE l.digest IS DISTINCT FROM r.digest;
-- one bucket, and errors
SELECT bucket, rows FROM crdt.digest('left_side', 1);
\set VERBOSITY sqlstate
SELECT * FROM crdt.digest('left_side', 0);
SELECT * FROM crdt.digest_rows('left_side', 16, 16);
CREATE TABLE keyless (v text);
SELECT * FROM crdt.digest('keyless');
\set VERBOSITY default
DROP TABLE left_side, right_side, keyless;
