-- Hostile input to every type of the extension (crdt.counter, crdt.doc, crdt.row_clock), as
-- text and as binary (COPY ... FORMAT binary, i.e. the types' receive functions): random,
-- mutated, truncated and oversized values. Each one is refused with a 22xxx or 54xxx SQLSTATE
-- (never XX000, never a crash) or accepted; whatever is accepted is stored, reads back as it
-- came in, and merges with itself and with other values without an error.
-- counter_errors and doc_errors show the messages of common mistakes; this file is about volume
-- and about what gets through. The random inputs come from setseed(), the same on every run.
CREATE SCHEMA hostile_input_test;  -- the test files share one database
SET search_path = hostile_input_test, public, crdt;
SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001';
SELECT setseed(0.25);

-- Valid values of each type (text form) that inputs are derived from, and merged with.
CREATE TABLE seed (type text, name text, value text, PRIMARY KEY (type, name));
INSERT INTO seed (type, name, value) SELECT 'counter', name, value::crdt.counter::text FROM (VALUES
  ('empty', '{"nodes": {}}'),
  ('two nodes', '{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [10, 0], "bbbbbbbb-0000-4000-8000-000000000002": [0, 1]}}'),
  ('extremes', '{"nodes": {"ffffffff-ffff-ffff-ffff-ffffffffffff": [18446744073709551615, 18446744073709551615], "00000000-0000-0000-0000-000000000000": [1, 0]}}')
) AS v (name, value);
INSERT INTO seed (type, name, value) SELECT 'doc', name, value::crdt.doc::text FROM (VALUES
  ('empty', '{"value": {}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}}'),
  ('rich', '{"value": {"n": 3.5, "name": "x \"q\" é\n", "list": [1, "two", null, {"b": false, "a": []}]},
     "replaced": [100, "aaaaaaaa-0000-4000-8000-000000000001"],
     "stamps": {"n": [100, "aaaaaaaa-0000-4000-8000-000000000001"], "name": [200, "bbbbbbbb-0000-4000-8000-000000000002"],
                "list": [150, "aaaaaaaa-0000-4000-8000-000000000001"]},
     "counters": {"n": {"base": 5, "nodes": {"bbbbbbbb-0000-4000-8000-000000000002": [0, 1.5]}}},
     "removed": {"gone": [300, "bbbbbbbb-0000-4000-8000-000000000002"]}}')
) AS v (name, value);
INSERT INTO seed (type, name, value) SELECT 'row_clock', name, value::crdt.row_clock::text FROM (VALUES
  ('empty', '{"value": {}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}}'),
  ('three columns', '{"value": {"id": 11, "name": 4000000000, "qty": 0}, "replaced": null,
     "stamps": {"id": [100, "aaaaaaaa-0000-4000-8000-000000000001"], "name": [200, "bbbbbbbb-0000-4000-8000-000000000002"],
                "qty": [150, "aaaaaaaa-0000-4000-8000-000000000001"]}, "counters": {}, "removed": {}}')
) AS v (name, value);
SELECT type, name, octet_length(value) AS text_bytes FROM seed ORDER BY type, name;

-- Every input tried: its type, form (text or binary), where it came from, and what happened to
-- it: 'accepted' or the SQLSTATE of the error.
CREATE TABLE attempt (
  id serial PRIMARY KEY, type text, form text, origin text, what text,
  input text, payload bytea, outcome text);
-- Where accepted inputs are stored, through a column of their type.
CREATE TABLE stored (id int PRIMARY KEY, counter crdt.counter, doc crdt.doc, clock crdt.row_clock);

-- Pieces that random text is made of: JSON punctuation, the keys and literals of the text
-- forms, numbers at the limits, node ids, escapes, whitespace and multibyte characters.
CREATE FUNCTION token() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT (ARRAY['{', '}', '[', ']', '"', ':', ',', ' ', '0', '1', '7', '-', '.', 'e', '+',
                '"value"', '"nodes"', '"replaced"', '"stamps"', '"counters"', '"removed"', '"base"',
                '"id"', '"name"', 'null', 'true', '"aaaaaaaa-0000-4000-8000-000000000001"',
                '18446744073709551615', '18446744073709551616', '4294967296', '1e999', '\u0000',
                '\ud800', '\"', 'é', E'\n', '[1, 0]', '[5, "bbbbbbbb-0000-4000-8000-000000000002"]'
               ])[1 + floor(random() * 38)::int] $$;
CREATE FUNCTION random_text(tokens int) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT coalesce(string_agg(token(), '' ORDER BY i), '') FROM generate_series(1, tokens) AS i $$;
-- `input` after `edits` random edits: a character replaced, deleted or inserted (a token), a
-- span repeated, or everything after a point cut off.
CREATE FUNCTION mutate(input text, edits int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  s text := input;
  at int;
BEGIN
  FOR i IN 1..edits LOOP
    at := 1 + floor(random() * (length(s) + 1))::int;
    s := CASE floor(random() * 9)::int
      WHEN 0 THEN left(s, at - 1)
      WHEN 1 THEN overlay(s PLACING substr(s, at, 1 + floor(random() * 20)::int) FROM at FOR 0)
      WHEN 2 THEN overlay(s PLACING '' FROM at FOR 1)
      WHEN 3 THEN overlay(s PLACING '' FROM at FOR 1)
      WHEN 4 THEN overlay(s PLACING chr(32 + floor(random() * 95)::int) FROM at FOR 1)
      ELSE overlay(s PLACING token() FROM at FOR 0)
    END;
  END LOOP;
  RETURN s;
END $$;
-- `n` random bytes.
CREATE FUNCTION random_bytes(n int) RETURNS bytea LANGUAGE sql VOLATILE AS $$
  SELECT decode(coalesce(string_agg(lpad(to_hex(floor(random() * 256)::int), 2, '0'), '' ORDER BY i), ''), 'hex')
  FROM generate_series(1, n) AS i $$;
-- `input` after `edits` random edits: a byte set (often to 0x00, 0x01, 0x7f, 0x80 or 0xff),
-- deleted or inserted, a span repeated, or everything after a point cut off.
CREATE FUNCTION mutate_bytes(input bytea, edits int) RETURNS bytea LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  b bytea := input;
  at int;
BEGIN
  FOR i IN 1..edits LOOP
    at := floor(random() * (length(b) + 1))::int;  -- a 0-based offset; = length(b) appends
    b := CASE floor(random() * 8)::int
      WHEN 0 THEN substr(b, 1, at)
      WHEN 1 THEN overlay(b PLACING substr(b, at + 1, 1 + floor(random() * 20)::int) FROM at + 1 FOR 0)
      WHEN 2 THEN overlay(b PLACING '' FROM at + 1 FOR 1)
      WHEN 3 THEN overlay(b PLACING random_bytes(1) FROM at + 1 FOR 0)
      WHEN 4 THEN overlay(b PLACING random_bytes(1) FROM at + 1 FOR 1)
      ELSE overlay(b PLACING (ARRAY['\x00', '\x01', '\x7f', '\x80', '\xff']::bytea[])[1 + floor(random() * 5)::int]
                   FROM at + 1 FOR 1)
    END;
  END LOOP;
  RETURN b;
END $$;
-- The binary form of a seed.
CREATE FUNCTION send(type text, value text) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
  b bytea;
BEGIN
  EXECUTE format('SELECT crdt.%s_send($1::crdt.%s)', type, type) USING value INTO b;
  RETURN b;
END $$;

-- Random token soup, random bytes, mutations of every seed, and every strict prefix of every
-- seed, in both forms.
INSERT INTO attempt (type, form, origin, input)
SELECT t.type, 'text', 'random', random_text(floor(random() * 40)::int)
FROM (VALUES ('counter'), ('doc'), ('row_clock')) AS t (type), generate_series(1, 150);
INSERT INTO attempt (type, form, origin, input)
SELECT s.type, 'text', 'mutated', mutate(s.value, 1 + floor(random() * 3)::int)
FROM seed s, generate_series(1, 150) ORDER BY s.type, s.name;
INSERT INTO attempt (type, form, origin, input)
SELECT s.type, 'text', 'truncated', left(s.value, n)
FROM seed s, generate_series(0, length(s.value) - 1) AS n ORDER BY s.type, s.name, n;
INSERT INTO attempt (type, form, origin, payload)
SELECT t.type, 'binary', 'random',
       CASE WHEN random() < 0.5 THEN '\x01'::bytea ELSE ''::bytea END || random_bytes(floor(random() * 60)::int)
FROM (VALUES ('counter'), ('doc'), ('row_clock')) AS t (type), generate_series(1, 100);
INSERT INTO attempt (type, form, origin, payload)
SELECT s.type, 'binary', 'mutated', mutate_bytes(send(s.type, s.value), 1 + floor(random() * 3)::int)
FROM seed s, generate_series(1, 150) ORDER BY s.type, s.name;
INSERT INTO attempt (type, form, origin, payload)
SELECT s.type, 'binary', 'truncated', substr(send(s.type, s.value), 1, n)
FROM seed s, generate_series(0, length(send(s.type, s.value)) - 1) AS n ORDER BY s.type, s.name, n;

-- Hand-made hostile values: oversized, at the limits, and shaped to get past the first checks.
-- `node` is one node id, `stamp` a stamp of it, for building texts.
\set node '"aaaaaaaa-0000-4000-8000-000000000001"'
\set stamp '[5, "aaaaaaaa-0000-4000-8000-000000000001"]'
CREATE FUNCTION doc_text(value text, stamps text, counters text DEFAULT '', removed text DEFAULT '',
                         replaced text DEFAULT 'null') RETURNS text LANGUAGE sql AS $$
  SELECT format('{"value": {%s}, "replaced": %s, "stamps": {%s}, "counters": {%s}, "removed": {%s}}',
                value, replaced, stamps, counters, removed) $$;
INSERT INTO attempt (type, form, origin, what, input) VALUES
  ('counter', 'text', 'hand-made', 'value with 100000 digits',
   '{"value": ' || repeat('9', 100000) || ', "nodes": {}}'),
  ('counter', 'text', 'hand-made', '10000 nodes',
   '{"nodes": {' || (SELECT string_agg(format('"%s": [%s, 1]', md5(i::text)::uuid, i), ', ')
                     FROM generate_series(1, 10000) AS i) || '}}'),
  ('counter', 'text', 'hand-made', 'one node listed 10000 times',
   '{"nodes": {' || (SELECT string_agg(:'node' || ': [1, 0]', ', ') FROM generate_series(1, 10000)) || '}}'),
  ('counter', 'text', 'hand-made', 'nodes nested 100000 deep',
   '{"nodes": ' || repeat('[', 100000) || repeat(']', 100000) || '}'),
  ('counter', 'text', 'hand-made', '1 MB of whitespace', '{"nodes":' || repeat(E' \n\t\r', 250000) || '{}}'),
  ('counter', 'text', 'hand-made', '1 MB node id', '{"nodes": {"' || repeat('a', 1000000) || '": [1, 0]}}'),
  ('counter', 'text', 'hand-made', 'escaped NUL in a node id', '{"nodes": {"\u0000": [1, 0]}}'),
  ('counter', 'text', 'hand-made', 'sum with 1000 digits', '{"nodes": {' || :'node' || ': [1' || repeat('0', 999) || ', 0]}}'),
  ('counter', 'text', 'hand-made', 'sum 1e3', '{"nodes": {' || :'node' || ': [1e3, 0]}}'),
  ('doc', 'text', 'hand-made', 'value nested 1000 deep',
   doc_text('"a": ' || repeat('[', 1000) || repeat(']', 1000), '"a": ' || :'stamp')),
  ('doc', 'text', 'hand-made', 'value nested 1001 deep',
   doc_text('"a": ' || repeat('[', 1001) || repeat(']', 1001), '"a": ' || :'stamp')),
  ('doc', 'text', 'hand-made', 'value nested 100000 deep',
   doc_text('"a": ' || repeat('{"a": ', 100000) || '1' || repeat('}', 100000), '"a": ' || :'stamp')),
  ('doc', 'text', 'hand-made', 'number beyond numeric (1e131073)', doc_text('"a": 1e131073', '"a": ' || :'stamp')),
  ('doc', 'text', 'hand-made', 'number with 200000 digits', doc_text('"a": ' || repeat('7', 200000), '"a": ' || :'stamp')),
  ('doc', 'text', 'hand-made', '1 MB property name',
   doc_text('"' || repeat('k', 1000000) || '": 1', '"' || repeat('k', 1000000) || '": ' || :'stamp')),
  ('doc', 'text', 'hand-made', '5000 properties',
   doc_text((SELECT string_agg(format('"p%s": %s', i, i), ', ') FROM generate_series(1, 5000) AS i),
            (SELECT string_agg(format('"p%s": %s', i, :'stamp'), ', ') FROM generate_series(1, 5000) AS i))),
  ('doc', 'text', 'hand-made', 'stamps at the largest hlc',
   doc_text('"a": 1', '"a": [18446744073709551615, ' || :'node' || ']',
            replaced => '[18446744073709551615, ' || :'node' || ']')),
  ('doc', 'text', 'hand-made', 'stamp beyond the largest hlc', doc_text('"a": 1', '"a": [18446744073709551616, ' || :'node' || ']')),
  ('doc', 'text', 'hand-made', 'counter base with 1000 digits',
   doc_text('"c": ' || repeat('9', 1000), '"c": ' || :'stamp', '"c": {"base": ' || repeat('9', 1000) || ', "nodes": {}}')),
  ('doc', 'text', 'hand-made', 'counter base with 1001 digits',
   doc_text('"c": 1' || repeat('0', 1000), '"c": ' || :'stamp', '"c": {"base": 1' || repeat('0', 1000) || ', "nodes": {}}')),
  ('doc', 'text', 'hand-made', 'counter sums at the limits on 50 nodes',
   doc_text('"c": ' || (50 * (repeat('9', 1000)::numeric - ('0.' || repeat('0', 999) || '1')::numeric))::text,
            '"c": ' || :'stamp',
            '"c": {"base": 0, "nodes": {' || (SELECT string_agg(format('"%s": [%s, 0.%s1]', md5(i::text)::uuid,
              repeat('9', 1000), repeat('0', 999)), ', ') FROM generate_series(1, 50) AS i) || '}}')),
  ('doc', 'text', 'hand-made', 'counter sum 1e-1001',
   doc_text('"c": 1', '"c": ' || :'stamp', '"c": {"base": 1, "nodes": {' || :'node' || ': [1e-1001, 0]}}')),
  ('doc', 'text', 'hand-made', 'escaped NUL in a value', doc_text('"a": "\u0000"', '"a": ' || :'stamp')),
  ('doc', 'text', 'hand-made', 'lone surrogate in a key', doc_text('"\udc00": 1', '"\udc00": ' || :'stamp')),
  ('doc', 'text', 'hand-made', 'value stamped before the watermark',
   doc_text('"a": 1', '"a": ' || :'stamp', replaced => '[6, ' || :'node' || ']')),
  ('row_clock', 'text', 'hand-made', 'fingerprint 2^32', doc_text('"a": 4294967296', '"a": ' || :'stamp')),
  ('row_clock', 'text', 'hand-made', 'fingerprint -1', doc_text('"a": -1', '"a": ' || :'stamp')),
  ('row_clock', 'text', 'hand-made', 'fingerprint 1.0', doc_text('"a": 1.0', '"a": ' || :'stamp')),
  ('row_clock', 'text', 'hand-made', 'fingerprint as a string', doc_text('"a": "1"', '"a": ' || :'stamp')),
  ('row_clock', 'text', 'hand-made', 'a counter', doc_text('"a": 1', '"a": ' || :'stamp', '"a": {"base": 1, "nodes": {}}')),
  ('row_clock', 'text', 'hand-made', 'a removed column', doc_text('', '', removed => '"a": ' || :'stamp')),
  ('row_clock', 'text', 'hand-made', 'a replace watermark', doc_text('', '', replaced => :'stamp')),
  ('row_clock', 'text', 'hand-made', 'stamps at the largest hlc, unknown columns',
   doc_text('"": 0, "no such column": 4294967295', '"": [18446744073709551615, ' || :'node' || '], "no such column": '
            || '[18446744073709551615, "ffffffff-ffff-ffff-ffff-ffffffffffff"]'));

-- Binary forms by hand: [version][varints and node ids] (see core/src/counter.rs and
-- core/src/doc/binary.rs). `n1` is a node id's 16 bytes.
\set n1 'decode(''aaaaaaaa000040008000000000000001'', ''hex'')'
INSERT INTO attempt (type, form, origin, what, payload) VALUES
  ('counter', 'binary', 'hand-made', 'count 2^63 - 1 in 11 bytes', '\x01ffffffffffffffff7f00'),
  ('counter', 'binary', 'hand-made', 'count beyond 64 bits', '\x01ffffffffffffffffff02'),
  ('counter', 'binary', 'hand-made', 'overlong count', '\x018000'),
  ('counter', 'binary', 'hand-made', 'sums at the u64 limit', '\x0101' || :n1 || '\xffffffffffffffffff01ffffffffffffffffff01'),
  ('counter', 'binary', 'hand-made', 'sum beyond 64 bits', '\x0101' || :n1 || '\xffffffffffffffffff0300'),
  ('counter', 'binary', 'hand-made', 'valid, then 10 MB of zeros', '\x0101' || :n1 || '\x0100' || decode(repeat('00', 10000000), 'hex')),
  ('counter', 'binary', 'hand-made', 'version 2', '\x0200'),
  ('doc', 'binary', 'hand-made', 'node count 2^62 - 1', '\x0105ffffffffffffffff3f' || :n1),
  ('doc', 'binary', 'hand-made', 'property count 2^62 - 1', '\x010501' || :n1 || '\x00ffffffffffffffff3f'),
  ('doc', 'binary', 'hand-made', 'value length 2^32 - 1',
   '\x010501' || :n1 || '\x00010161' || '\x0000ffffffff0f31'),
  ('doc', 'binary', 'hand-made', 'value nested 1000 deep',
   '\x010501' || :n1 || '\x00010161' || '\x0000d00f' || convert_to(repeat('[', 1000) || repeat(']', 1000), 'UTF8')),
  ('doc', 'binary', 'hand-made', 'value nested 1001 deep',
   '\x010501' || :n1 || '\x00010161' || '\x0000d20f' || convert_to(repeat('[', 1001) || repeat(']', 1001), 'UTF8')),
  ('doc', 'binary', 'hand-made', 'value not canonical JSON', '\x010501' || :n1 || '\x00010161' || '\x0000055b312c325d'),
  ('doc', 'binary', 'hand-made', 'property name not UTF-8', '\x010501' || :n1 || '\x000101ff' || '\x00000131'),
  ('doc', 'binary', 'hand-made', 'stamps at the largest hlc',
   '\x01ffffffffffffffffff0101' || :n1 || '\x0100010161' || '\x00000131'),
  ('row_clock', 'binary', 'hand-made', 'a doc value that is not a fingerprint', '\x010501' || :n1 || '\x00010161' || '\x000003227822'),
  ('row_clock', 'binary', 'hand-made', 'a replace watermark', '\x010501' || :n1 || '\x010000'),
  ('row_clock', 'binary', 'hand-made', 'fingerprint 0', '\x010501' || :n1 || '\x00010161' || '\x00000130');

-- Text input: 'accepted' (and stored) or the SQLSTATE.
CREATE FUNCTION try_text(a attempt) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('INSERT INTO stored (id, %I) VALUES ($1, $2::crdt.%s)',
                 CASE a.type WHEN 'row_clock' THEN 'clock' ELSE a.type END, a.type)
    USING a.id, a.input;
  RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
-- Binary input, through COPY: the payload is written as the field of a binary COPY file, which
-- is read into a column of the type, so the type's receive function gets exactly those bytes.
CREATE FUNCTION try_binary(a attempt) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  file text := current_setting('data_directory') || '/hostile_input.bin';
BEGIN
  EXECUTE format('COPY (SELECT id, payload FROM hostile_input_test.attempt WHERE id = %s) TO %L (FORMAT binary)',
                 a.id, file);
  BEGIN
    EXECUTE format('COPY hostile_input_test.stored (id, %I) FROM %L (FORMAT binary)',
                   CASE a.type WHEN 'row_clock' THEN 'clock' ELSE a.type END, file);
    RETURN 'accepted';
  EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
  END;
END $$;
UPDATE attempt a SET outcome = CASE form WHEN 'text' THEN try_text(a) ELSE try_binary(a) END;

-- What happened, by type, form and origin.
SELECT type, form, origin, outcome, count(*) FROM attempt GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
-- The hand-made ones one by one.
SELECT type, form, what, outcome FROM attempt WHERE origin = 'hand-made' ORDER BY id;
-- Never anything but a data exception (22xxx) or a program limit (54xxx): expect no rows.
SELECT id, type, form, origin, outcome, left(coalesce(input, encode(payload, 'hex')), 80) AS input
FROM attempt WHERE outcome !~ '^(accepted|22...|54...)$' ORDER BY id;
-- A strict prefix of a valid value is never accepted: expect no rows.
SELECT id, type, form FROM attempt WHERE origin = 'truncated' AND outcome = 'accepted';

-- Whatever was accepted was stored exactly: the binary form stored is the bytes received, and
-- the text form reads back to the same value. Expect every count to be the total.
SELECT a.type, a.form, count(*) AS accepted,
       count(*) FILTER (WHERE a.form = 'text' OR a.payload = coalesce(crdt.counter_send(s.counter),
                             crdt.doc_send(s.doc), crdt.row_clock_send(s.clock))) AS same_bytes,
       count(*) FILTER (WHERE coalesce(s.counter::text::crdt.counter::text = s.counter::text,
                                       s.doc::text::crdt.doc::text = s.doc::text,
                                       s.clock::text::crdt.row_clock::text = s.clock::text)) AS same_text
FROM attempt a JOIN stored s USING (id) GROUP BY 1, 2 ORDER BY 1, 2;

-- Every stored counter and doc merges: with itself (nothing changes), and with every seed of its
-- type in both orders (same result, and merging again changes nothing). Each check is 'ok',
-- 'wrong' (the merge laws do not hold) or the SQLSTATE of an error: expect only 'ok'.
CREATE FUNCTION merge_checks(v text, s text, type text) RETURNS TABLE (check_name text, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  ok boolean;
BEGIN
  FOR check_name, ok IN EXECUTE format($q$
      SELECT 'with itself', crdt.merge($1::crdt.%1$s, $1::crdt.%1$s)::text = $1
      UNION ALL SELECT 'with a seed, both orders', crdt.merge($1::crdt.%1$s, $2::crdt.%1$s)::text
                                                 = crdt.merge($2::crdt.%1$s, $1::crdt.%1$s)::text
      UNION ALL SELECT 'merged again', crdt.merge(crdt.merge($1::crdt.%1$s, $2::crdt.%1$s), $1::crdt.%1$s)::text
                                      = crdt.merge($1::crdt.%1$s, $2::crdt.%1$s)::text
      UNION ALL SELECT 'merge reads back', crdt.merge($1::crdt.%1$s, $2::crdt.%1$s)::text::crdt.%1$s IS NOT NULL
    $q$, type) USING v, s
  LOOP
    outcome := CASE WHEN ok THEN 'ok' ELSE 'wrong' END;
    RETURN NEXT;
  END LOOP;
EXCEPTION WHEN OTHERS THEN
  check_name := 'any';
  outcome := SQLSTATE;
  RETURN NEXT;
END $$;
SELECT x.type, c.check_name, c.outcome, count(*)
FROM (SELECT 'counter' AS type, counter::text AS v FROM stored WHERE counter IS NOT NULL
      UNION ALL SELECT 'doc', doc::text FROM stored WHERE doc IS NOT NULL) AS x
JOIN seed s USING (type), merge_checks(x.v, s.value, x.type) AS c
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- All of them at once, through the aggregate (parallel plans combine with the same merge).
SELECT crdt.merge_agg(counter) IS NOT NULL AS counters_merge, crdt.merge_agg(doc) IS NOT NULL AS docs_merge
FROM stored;

-- A stored doc can still be read and written: each step 'ok' or its SQLSTATE. Reading as jsonb
-- fails (22003) only for numbers beyond PostgreSQL's numeric; writing fails (22003) only once a
-- stamp is at the largest hlc, after which no later stamp exists.
CREATE FUNCTION doc_use(d crdt.doc) RETURNS TABLE (step text, outcome text) LANGUAGE plpgsql AS $$
DECLARE
  key text := (SELECT s.key FROM crdt.stamps(d) AS s WHERE s.key IS NOT NULL ORDER BY s.key LIMIT 1);
BEGIN
  FOR step IN SELECT unnest(ARRAY['::jsonb', '->', 'patch', 'add', 'remove', 'stamps']) LOOP
    BEGIN
      CASE step
        WHEN '::jsonb' THEN PERFORM d::jsonb;
        WHEN '->' THEN PERFORM d -> coalesce(key, 'x'), d ->> coalesce(key, 'x');
        WHEN 'patch' THEN PERFORM crdt.patch(d, '{"x": 1}');
        WHEN 'add' THEN PERFORM crdt.add(d, 'x', 1);
        WHEN 'remove' THEN PERFORM crdt.remove(d, coalesce(key, 'x'));
        ELSE PERFORM count(*) FROM crdt.stamps(d);
      END CASE;
      outcome := 'ok';
    EXCEPTION WHEN OTHERS THEN
      outcome := SQLSTATE;
    END;
    RETURN NEXT;
  END LOOP;
END $$;
SELECT u.step, u.outcome, count(*) FROM stored, doc_use(doc) AS u WHERE doc IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2;
-- which ones could not be written or read as jsonb
SELECT a.what, a.form, u.step, u.outcome FROM attempt a JOIN stored s USING (id), doc_use(s.doc) AS u
WHERE u.outcome <> 'ok' AND a.origin = 'hand-made' ORDER BY a.id, u.step;

-- Every stored row clock merges into a CRDT table row as a replicated row's would
-- (crdt.merge_row), and the table can still be written locally afterwards. (Far-future stamps
-- warn; the warnings are not shown.)
CREATE TABLE clocked (id int PRIMARY KEY, name text, qty int);
INSERT INTO clocked VALUES (1, 'x', 1);
SELECT crdt.enable('clocked');
CREATE FUNCTION clock_merge(c crdt.row_clock) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM crdt.merge_row('hostile_input_test.clocked',
                         jsonb_build_object('id', 1, 'name', 'y', 'qty', 2, 'crdt_clock', c::text));
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SET client_min_messages = error;
SELECT clock_merge(clock) AS outcome, count(*) FROM stored WHERE clock IS NOT NULL GROUP BY 1 ORDER BY 1;
RESET client_min_messages;
SELECT name, qty, crdt_clock::text::crdt.row_clock IS NOT NULL AS clock_reads_back FROM clocked;
-- A stamp at the largest hlc, even of a column the table does not have, leaves no later stamp
-- for a local write of the row: it is refused (22003), never wrapped.
\set VERBOSITY sqlstate
UPDATE clocked SET name = 'local';
\set VERBOSITY default

-- Binary COPY files damaged as a whole, not only in one field: an array of counters with a
-- byte of its element changed, a row whose field length lies. The file is read back with
-- pg_read_binary_file, damaged with overlay(), and written raw with lo_export.
CREATE TABLE arrays (a crdt.counter[]);
CREATE FUNCTION damaged_copy(query text, target text, at int, bytes bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  file text := current_setting('data_directory') || '/hostile_input.bin';
  lo oid;
BEGIN
  EXECUTE format('COPY (%s) TO %L (FORMAT binary)', query, file);
  lo := lo_from_bytea(0, overlay(pg_read_binary_file(file) PLACING bytes FROM at));
  PERFORM lo_export(lo, file);
  PERFORM lo_unlink(lo);
  BEGIN
    EXECUTE format('COPY %s FROM %L (FORMAT binary)', target, file);
    RETURN 'accepted';
  EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
  END;
END $$;
-- binary COPY header: 19 bytes, then per row a 2-byte field count, per field a 4-byte length.
SELECT damaged_copy('SELECT ARRAY[''{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1, 2]}}''::crdt.counter]',
                    'arrays', 19 + 2 + 4 + 20 + 4 + 2, '\x00') AS array_element_count_zeroed,
       damaged_copy('SELECT ARRAY[''{"nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [1, 2]}}''::crdt.counter]',
                    'arrays', 19 + 2 + 4 + 20 + 4 + 1, '\x0e') AS array_element_shorter,
       damaged_copy('SELECT ''{"nodes": {}}''::crdt.counter', 'stored (counter)', 19 + 2 + 1, '\x7fffffff')
         AS field_length_lies,
       damaged_copy('SELECT ARRAY[''{"nodes": {}}''::crdt.counter]', 'arrays', 1, '\x00') AS header_damaged;
SELECT count(*) AS arrays_stored FROM arrays;

-- NULL: InputFunctionCall hands the (non-strict) input functions a null pointer, and a domain
-- over a type passes its NULL through them too. NULL comes out, never a crash.
CREATE DOMAIN counter_domain AS crdt.counter;
SELECT NULL::crdt.counter IS NULL AS counter, NULL::crdt.doc IS NULL AS doc,
       NULL::crdt.row_clock IS NULL AS row_clock, NULL::counter_domain IS NULL AS domain;
SELECT crdt.counter_in(NULL) IS NULL AS counter_in, crdt.doc_in(NULL) IS NULL AS doc_in,
       crdt.row_clock_in(NULL) IS NULL AS row_clock_in;
