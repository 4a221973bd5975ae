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

parse_major_option "$@"
INSTALL=0
case "${OTHER_ARGS[*]}" in
    "") ;;
    --install) INSTALL=1 ;;
    *) echo "usage: $0 [--major N] [--install]" >&2; exit 2 ;;
esac

ensure_dependencies
for major in "${MAJORS[@]}"; do
    use_pg_major "$major"
    build_package
    if [ "$INSTALL" = 1 ]; then install_package; fi
done
