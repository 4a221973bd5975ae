//! Divergence checked from SQL: `crdt.digest` hashes a table per bucket of its primary key
//! space, over every column (values, counter and doc states, the row clock), and
//! `crdt.digest_rows` lists one bucket's rows with a hash each. Two nodes' tables are equal
//! exactly when their digests are (up to hash collisions: two 64-bit hashes per row, combined
//! per bucket by XOR and by a sum), whatever order their columns were
//! added in: a row is hashed as the text of its columns in the order of their names. Plain SQL, so any client
//! (`dblink`, an application) can compare two nodes bucket by bucket.

use pgrx::prelude::*;

extension_sql!(
    r#"-- The primary key of a table as the jsonb object crdt.deletions names keys with, as an SQL
-- expression over the row alias t: jsonb_build_object('id', t.id, ...). 42P10 without a key.
CREATE FUNCTION key_json_expression(tab regclass) RETURNS text
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expression text;
BEGIN
    SELECT 'pg_catalog.jsonb_build_object(' ||
           string_agg(quote_literal(a.attname) || '::pg_catalog.text, t.' || quote_ident(a.attname), ', '
                      ORDER BY k.position) || ')'
    INTO expression
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = tab AND i.indisprimary;
    IF expression IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', tab USING ERRCODE = '42P10';
    END IF;
    RETURN expression;
END
$$;
COMMENT ON FUNCTION key_json_expression(regclass) IS
    'The primary key of a row t as a jsonb object, as an SQL expression (crdt.digest).';

-- A row of a table as text, its columns in the order of their names (not of their numbers,
-- which differ between nodes that added them in another order), as an SQL expression over the
-- row alias t.
CREATE FUNCTION row_text_expression(tab regclass) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
RETURN (SELECT 'ROW(' || string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY a.attname COLLATE "C")
               || ')::pg_catalog.text'
        FROM pg_attribute a
        WHERE a.attrelid = tab AND a.attnum > 0 AND NOT a.attisdropped);
COMMENT ON FUNCTION row_text_expression(regclass) IS
    'A row t as text, its columns in the order of their names, as an SQL expression (crdt.digest).';

CREATE FUNCTION digest(tab regclass, buckets int DEFAULT 256)
    RETURNS TABLE (bucket int, rows bigint, digest text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF buckets < 1 THEN
        RAISE EXCEPTION 'buckets must be at least 1, not %', buckets USING ERRCODE = '22023';
    END IF;
    -- Two 64-bit hashes of each row's text (crdt.row_text_expression), combined in an order that
    -- does not matter (XOR and a sum): no sort, so a million rows take seconds.
    RETURN QUERY EXECUTE format(
        'SELECT b, pg_catalog.count(*),
                pg_catalog.md5(pg_catalog.count(*)::pg_catalog.text || '':'' || pg_catalog.bit_xor(h1)::pg_catalog.text
                               || '':'' || pg_catalog.sum(h2::pg_catalog.numeric)::pg_catalog.text)
         FROM (SELECT (((pg_catalog.jsonb_hash_extended(k, 0) %% $1) + $1) %% $1)::pg_catalog.int4 AS b,
                      pg_catalog.hashtextextended(r, 0) AS h1, pg_catalog.hashtextextended(r, 1) AS h2
               FROM (SELECT %s AS k, %s AS r FROM %s t) s) d
         GROUP BY b ORDER BY b',
        crdt.key_json_expression(tab), crdt.row_text_expression(tab), tab) USING buckets::bigint;
END
$$;
COMMENT ON FUNCTION digest(regclass, int) IS
    'A hash per bucket of the primary key space over every column: equal on two nodes exactly when their rows are.';

CREATE FUNCTION digest_rows(tab regclass, bucket int, buckets int DEFAULT 256)
    RETURNS TABLE (key jsonb, digest text, "row" jsonb)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF buckets < 1 OR bucket < 0 OR bucket >= buckets THEN
        RAISE EXCEPTION 'bucket % is not one of 0 to % - 1', bucket, buckets USING ERRCODE = '22023';
    END IF;
    -- The same two hashes of each row as crdt.digest, as hex.
    RETURN QUERY EXECUTE format(
        'SELECT k, pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.hashtextextended(r, 0)), 16, ''0'')
                   || pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.hashtextextended(r, 1)), 16, ''0''),
                j
         FROM (SELECT %s AS k, %s AS r, pg_catalog.to_jsonb(t) AS j FROM %s t) s
         WHERE ((pg_catalog.jsonb_hash_extended(k, 0) %% $2) + $2) %% $2 = $1
         ORDER BY k',
        crdt.key_json_expression(tab), crdt.row_text_expression(tab), tab) USING bucket::bigint, buckets::bigint;
END
$$;
COMMENT ON FUNCTION digest_rows(regclass, int, int) IS
    'The rows of one bucket of crdt.digest: key, hash and the row as crdt.merge_row takes it.';"#,
    name = "digest"
);
