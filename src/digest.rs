//! Divergence checked from SQL: `crdt.digest` hashes a table per bucket of its primary key
//! space, over every column (values, counter and doc states, the row clock), and
//! `crdt.digest_rows` lists one bucket's rows with a hash each. Two nodes' tables are equal
//! exactly when their digests are (up to MD5 collisions), whatever order their columns were
//! added in: a row is hashed as `to_jsonb` writes it, by column name. Plain SQL, so any client
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

CREATE FUNCTION digest(tab regclass, buckets int DEFAULT 256)
    RETURNS TABLE (bucket int, rows bigint, digest text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF buckets < 1 THEN
        RAISE EXCEPTION 'buckets must be at least 1, not %', buckets USING ERRCODE = '22023';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT b, pg_catalog.count(*), pg_catalog.md5(pg_catalog.string_agg(d, '''' ORDER BY d))
         FROM (SELECT (((pg_catalog.jsonb_hash_extended(%s, 0) %% $1) + $1) %% $1)::pg_catalog.int4 AS b,
                      pg_catalog.md5(pg_catalog.to_jsonb(t)::pg_catalog.text) AS d
               FROM %s t) r
         GROUP BY b ORDER BY b',
        crdt.key_json_expression(tab), tab) USING buckets::bigint;
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
    RETURN QUERY EXECUTE format(
        'SELECT k, pg_catalog.md5(r::pg_catalog.text), r
         FROM (SELECT %s AS k, pg_catalog.to_jsonb(t) AS r FROM %s t) s
         WHERE ((pg_catalog.jsonb_hash_extended(k, 0) %% $2) + $2) %% $2 = $1
         ORDER BY k',
        crdt.key_json_expression(tab), tab) USING bucket::bigint, buckets::bigint;
END
$$;
COMMENT ON FUNCTION digest_rows(regclass, int, int) IS
    'The rows of one bucket of crdt.digest: key, hash and the row as crdt.merge_row takes it.';"#,
    name = "digest"
);
