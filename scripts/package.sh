#!/usr/bin/env bash
# Release packages: for each PostgreSQL major (or the one given), builds the extension (release)
# and packs what `cargo pgrx package` installs — lib/crdt.so and share/extension/crdt* — into
# target/packages/crdt-<version>-pg<major>-<arch>-linux-gnu.tar.gz. The README's "Installing a
# package" says how to install one into an existing PostgreSQL.
#
#   bash scripts/package.sh                       # every major
#   bash scripts/package.sh --major 17            # one
#   bash scripts/package.sh --major 17 --install  # and install it into that major here
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAJORS=("${PG_MAJORS[@]}")
INSTALL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --major)
            [[ " ${PG_MAJORS[*]} " == *" ${2:-} "* ]] || { echo "--major: one of ${PG_MAJORS[*]}" >&2; exit 2; }
            MAJORS=("$2")
            shift 2
            ;;
        --install) INSTALL=1; shift ;;
        *) echo "usage: $0 [--major N] [--install]" >&2; exit 2 ;;
    esac
done

ensure_dependencies
for major in "${MAJORS[@]}"; do
    use_pg_major "$major"
    build_package
    if [ "$INSTALL" = 1 ]; then install_package; fi
done
