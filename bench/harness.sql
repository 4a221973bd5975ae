-- Loaded by scripts/bench.sh into every benchmark database before the bench file itself.
-- bench_rounds() runs each variant's query in interleaved rounds after a warm-up and records
-- wall-clock milliseconds; scripts/bench.sh reads bench_summary for BENCHMARKS.md.
CREATE TABLE bench_result (bench text, variant text, round int, ms float8);
CREATE TABLE bench_figure (bench text, figure text, value numeric, unit text);

-- bench_rounds('name', rounds, 'variant 1', 'SELECT ...', 'variant 2', 'SELECT ...', ...)
CREATE FUNCTION bench_rounds(bench text, rounds int, VARIADIC variants text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
BEGIN
    FOR round IN 0..rounds LOOP          -- round 0 is the warm-up, not recorded
        FOR i IN 1..array_length(variants, 1) / 2 LOOP
            started := clock_timestamp();
            EXECUTE variants[2 * i];
            IF round > 0 THEN
                INSERT INTO bench_result VALUES (bench, variants[2 * i - 1], round,
                    extract(epoch FROM clock_timestamp() - started) * 1000);
            END IF;
        END LOOP;
    END LOOP;
END $$;

CREATE VIEW bench_summary AS
SELECT bench, variant,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms,
       round(min(ms)::numeric, 1) AS min_ms, round(max(ms)::numeric, 1) AS max_ms, count(*) AS rounds
FROM bench_result GROUP BY bench, variant;
