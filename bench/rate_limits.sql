-- crdt.rate_limit_vacuum over 1,000,000 expired windows (a million keys limited once, in a
-- one-minute window ten minutes ago), against the floor: a DELETE of as many rows from a plain
-- table of the same columns. Each round refills both tables first (timed too: what writing the
-- windows costs through the CRDT triggers). Run by scripts/bench.sh.
CREATE EXTENSION crdt;
CREATE TABLE plain_windows (
    key text, per interval, window_start timestamptz, node uuid, slot smallint, count bigint,
    PRIMARY KEY (key, per, window_start, node, slot)
);

\echo '== crdt.rate_limit_vacuum of 1,000,000 expired windows against a plain DELETE (interleaved rounds)'
SELECT bench_rounds('expired rate-limit windows, 1,000,000 keys', 3,
  'INSERT into crdt.rate_limits',
  'INSERT INTO crdt.rate_limits (key, per, window_start, node, slot, count)
   SELECT ''key-'' || g, ''1 minute'', date_trunc(''minute'', now()) - interval ''10 minutes'',
          crdt.node_id(), 0, 1
   FROM generate_series(1, 1000000) g',
  'crdt.rate_limit_vacuum()', 'SELECT crdt.rate_limit_vacuum()',
  'INSERT into a plain table',
  'INSERT INTO plain_windows
   SELECT ''key-'' || g, ''1 minute'', date_trunc(''minute'', now()) - interval ''10 minutes'',
          crdt.node_id(), 0, 1
   FROM generate_series(1, 1000000) g',
  'DELETE from a plain table (floor)',
  'DELETE FROM plain_windows WHERE window_start + per * 2 <= now()');
INSERT INTO bench_figure
SELECT 'expired rate-limit windows, 1,000,000 keys', 'rows and tombstones left after the last round',
       (SELECT count(*) FROM crdt.rate_limits) + (SELECT count(*) FROM crdt.deletions), 'rows';
SELECT variant, median_ms, min_ms, max_ms FROM bench_summary
WHERE bench = 'expired rate-limit windows, 1,000,000 keys';
