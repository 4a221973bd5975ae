#!/usr/bin/env bash
# The apply path's floor (a measurement, not part of the test suite): the benchmark run on a
# build in which the merge trigger hands every replicated UPDATE's row back as it came, and the
# receive functions store their bytes unchecked (bench/apply_floor.patch). Its binary catch-up
# is what a CRDT table would reach if the merge and the types' input cost nothing; the text
# catch-up keeps the real text input. Everything else is PostgreSQL's own per-row work for a
# table with extension-typed columns and row triggers.
#
# Works on a scratch worktree of HEAD (the same BENCH_* knobs and options as scripts/bench.sh:
# `--major 15` for one major), prints the catch-up rows and ratios it measured, and installs
# this tree's own build again at the end.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLOOR_TREE="$(mktemp -d)"
chmod 755 "$FLOOR_TREE"   # the benchmark reads its SQL files as postgres
restore() {
    git -C "$REPO_ROOT" worktree remove --force "$FLOOR_TREE" 2>/dev/null || rm -rf "$FLOOR_TREE"
    log "installing this tree's build again"
    install_extension release
}
trap restore EXIT
git -C "$REPO_ROOT" worktree add --quiet --detach "$FLOOR_TREE" HEAD
patch --quiet -d "$FLOOR_TREE" -p1 < "$REPO_ROOT/bench/apply_floor.patch"
# A target directory of its own: cargo names a path crate's build by name and version, not by
# path, so a build of the patched tree in this tree's target directory would leave its objects
# where this tree's next build takes them as up to date.
CARGO_TARGET_DIR="$REPO_ROOT/target/floor" bash "$FLOOR_TREE/scripts/bench.sh" "$@"
log "the floor (bench/apply_floor.patch applied):"
grep -E 'apply rate|instructions|catch-up CPU|trigger \(`suppress' "$FLOOR_TREE/BENCHMARKS.md"
