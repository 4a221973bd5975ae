#!/usr/bin/env bash
# Fuzzes every decoder and parser of the core (fuzz/, cargo-fuzz + libFuzzer) for a bounded
# time: FUZZ_SECONDS per target (default 60), every target or the ones named as arguments.
#
#   bash scripts/fuzz.sh                         # all targets, 60 s each
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh doc_text doc_binary
#
# Installs what is missing (the nightly toolchain, cargo-fuzz) and does nothing more when it is
# there. The invariants checked are crdt_core::fuzz_checks; corpora grow in fuzz/corpus/<target>
# (seeded with valid values each run). Exits non-zero if any target finds an input that breaks
# an invariant, and prints where it is: fixed, copy it to core/tests/fuzz_regressions/<target>/crash-<what> so
# `cargo test -p crdt-core` replays it from then on.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_DIR="$REPO_ROOT/fuzz"
REGRESSIONS="$REPO_ROOT/core/tests/fuzz_regressions"

if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly Rust toolchain (cargo-fuzz needs it for the sanitizer flags)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (once)"
    cargo install cargo-fuzz --locked
fi

cd "$REPO_ROOT"
# Safe code only in the core, so no sanitizer (twice the executions per second); debug
# assertions on, so arithmetic overflow is a crash too.
FUZZ_FLAGS=(--fuzz-dir "$FUZZ_DIR" --sanitizer none --debug-assertions --release)
mapfile -t ALL < <(cargo +nightly fuzz list --fuzz-dir "$FUZZ_DIR")
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

log "writing seed corpora"
cargo run -q -p crdt-core --features fuzz-checks --example fuzz_seeds -- "$FUZZ_DIR/corpus"
log "building the fuzz targets"
cargo +nightly fuzz build "${FUZZ_FLAGS[@]}"

LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
failed=()
summary=()
for target in "${TARGETS[@]}"; do
    log "fuzzing $target for $FUZZ_SECONDS s"
    # The saved crashers are read as extra seeds; new inputs go to the first directory only.
    corpora=("$FUZZ_DIR/corpus/$target")
    [ -d "$REGRESSIONS/$target" ] && corpora+=("$REGRESSIONS/$target")
    status=0
    started=$SECONDS
    cargo +nightly fuzz run "${FUZZ_FLAGS[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 >"$LOGS/$target.log" 2>&1 || status=$?
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOGS/$target.log" | grep -o '[0-9]*$' || echo '?')"
    cov="$(grep -oE '(DONE|pulse|NEW|REDUCE|INITED) +cov: [0-9]+ ft: [0-9]+' "$LOGS/$target.log" | tail -1 \
        | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+)/\1 \2/' || true)"
    corpus="$(find "$FUZZ_DIR/corpus/$target" -type f | wc -l)"
    summary+=("$(printf '%-18s %6s s %12s execs   cov %-6s ft %-6s corpus %s' \
        "$target" "$((SECONDS - started))" "$execs" "${cov%% *}" "${cov##* }" "$corpus")")
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        tail -n 60 "$LOGS/$target.log"
        # libFuzzer names the input it saved ("Test unit written to fuzz/artifacts/...").
        artifact="$(grep -oE "Test unit written to [^ ]+" "$LOGS/$target.log" | tail -1 || true)"
        if [ -n "$artifact" ]; then
            echo "!! $target broke an invariant (exit $status). $artifact"
            echo "!! replay: cargo +nightly fuzz run ${FUZZ_FLAGS[*]} $target <file>"
        else
            echo "!! $target did not finish (exit $status) and saved no input: see the log above"
        fi
    fi
done

printf '\n%s\n' "fuzz summary (FUZZ_SECONDS=${FUZZ_SECONDS} per target; seconds as run):"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} — crashers are in fuzz/artifacts/<target>/; once fixed, keep each" \
        "one as core/tests/fuzz_regressions/<target>/crash-<what it broke>"
    exit 1
fi
echo "no invariant broken"
