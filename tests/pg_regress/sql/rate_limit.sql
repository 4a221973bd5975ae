-- Rate limiting on CRDT counters (docs/rate_limit.md): crdt.rate_limit counts against a key in
-- windows kept in crdt.rate_limits, a CRDT table of the extension.
\set VERBOSITY sqlstate
SELECT crdt.rate_limit('k', 10, '1 minute', 1, 'both');
SELECT crdt.rate_limit('k', -1, '1 minute');
SELECT crdt.rate_limit('k', 10, '1 minute', -1);
SELECT crdt.rate_limit('k', 10, '1 month');
SELECT crdt.rate_limit('k', 10, '0 seconds');
SELECT crdt.rate_limit('k', 10, '-1 hour');
\set VERBOSITY default
SELECT crdt.rate_limit('k', 10, '1 month');

-- shared (the default): three calls a day admitted, the fourth refused and not counted
SELECT crdt.rate_limit('api:alice', 3, '1 day') FROM generate_series(1, 4);
SELECT crdt.rate_limit_peek('api:alice', 3, '1 day') AS would_admit;
SELECT crdt.rate_limit_peek('api:alice', 4, '1 day') AS would_admit_with_4;
SELECT sum(count::bigint) AS counted FROM crdt.rate_limits WHERE key = 'api:alice';
-- a cost: two units of five left in another key's day
SELECT crdt.rate_limit('api:bob', 5, '1 day', 3), crdt.rate_limit('api:bob', 5, '1 day', 3),
       crdt.rate_limit('api:bob', 5, '1 day', 2);
-- the same key per hour is another limit
SELECT crdt.rate_limit('api:alice', 3, '1 hour');
-- what another node admitted counts too: a row of node B in this window
INSERT INTO crdt.rate_limits (key, per, window_start, node, slot, count)
SELECT 'api:carol', '1 day', date_trunc('day', now(), 'UTC'), 'bbbbbbbb-0000-4000-8000-000000000002', 0,
       '{"nodes": {"bbbbbbbb-0000-4000-8000-000000000002": [9, 0]}}';
SELECT crdt.rate_limit('api:carol', 10, '1 day') AS tenth, crdt.rate_limit('api:carol', 10, '1 day') AS eleventh;
-- and so does the previous window, weighted by how much of it the sliding window still covers
-- (here any part of a huge count is over the limit)
INSERT INTO crdt.rate_limits (key, per, window_start, node, slot, count)
SELECT 'api:dave', '1 day', date_trunc('day', now(), 'UTC') - '1 day'::interval,
       'bbbbbbbb-0000-4000-8000-000000000002', 0, 1000000000000::bigint;
SELECT crdt.rate_limit('api:dave', 10, '1 day') AS admitted;

-- split: with 2 nodes, this node admits 5 of 10, whichever of its slots the calls land in;
-- what other nodes admitted does not count against its share
SET crdt.rate_limit_nodes = 2;
SELECT count(*) FILTER (WHERE admitted) AS admitted
FROM (SELECT crdt.rate_limit('api:erin', 10, '1 day', 1, 'split') AS admitted FROM generate_series(1, 8)) calls;
INSERT INTO crdt.rate_limits (key, per, window_start, node, slot, count)
SELECT 'api:frank', '1 day', date_trunc('day', now(), 'UTC'), 'bbbbbbbb-0000-4000-8000-000000000002', 0, 100;
SELECT crdt.rate_limit('api:frank', 10, '1 day', 5, 'split') AS admitted;
SELECT crdt.rate_limit('api:frank', 10, '1 day', 1, 'split') AS over_share;
RESET crdt.rate_limit_nodes;

-- reset forgets a key on every node: a delete, with tombstones
SELECT crdt.rate_limit_reset('api:alice');
SELECT crdt.rate_limit('api:alice', 3, '1 day') AS admitted_again;
SELECT count(*) > 0 AS tombstones FROM crdt.deletions WHERE table_name = 'crdt.rate_limits';

-- windows that no longer count go, without tombstones
INSERT INTO crdt.rate_limits (key, per, window_start, node, slot, count)
VALUES ('api:old', '1 hour', date_trunc('hour', now()) - '2 hours'::interval, crdt.node_id(), 0, 1),
       ('api:old', '1 hour', date_trunc('hour', now()) - '1 hour'::interval, crdt.node_id(), 0, 1);
SELECT count(*) AS tombstones_before FROM crdt.deletions \gset
SELECT crdt.rate_limit_vacuum() AS removed;
SELECT count(*) AS left FROM crdt.rate_limits WHERE key = 'api:old';
SELECT count(*) = :tombstones_before AS no_new_tombstones FROM crdt.deletions;

-- any role may limit; the counts and reset are not for everyone
CREATE ROLE limited_app;
SET ROLE limited_app;
SELECT crdt.rate_limit('api:app', 2, '1 minute') AS admitted;
\set VERBOSITY sqlstate
SELECT count(*) FROM crdt.rate_limits;
SELECT crdt.rate_limit_reset('api:app');
\set VERBOSITY default
RESET ROLE;
DROP ROLE limited_app;

-- leave nothing behind for the files after this one (they share the database)
SELECT EXISTS (SELECT FROM crdt.stats WHERE table_name = 'crdt.rate_limits'::regclass) AS listed_in_crdt_stats;
SELECT crdt.rate_limit_reset(key) FROM (SELECT DISTINCT key FROM crdt.rate_limits) k;
DELETE FROM crdt.deletions;
SELECT crdt.stats_reset();
