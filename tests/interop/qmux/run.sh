#!/usr/bin/env bash
# Cross-check our qmux session against the published @moq/qmux 0.3.3 client session.
# Builds the peer from libmoqcore.a, installs the pinned package if it can (npm cache or
# registry), and skips with exit code 77 when node or the package is unavailable.
# Env: MOQ_BUILD_DIR (default build), MOQ_SOURCE_DIR (default: the repo of this script).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${MOQ_SOURCE_DIR:-$(cd "$here/../../.." && pwd)}"
build="${MOQ_BUILD_DIR:-$src/build}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP: node/npm not installed"
    exit 77
fi
if [ ! -d "$here/node_modules/@moq/qmux" ]; then
    if ! (cd "$here" && npm ci --no-audit --no-fund --prefer-offline >/dev/null 2>&1); then
        echo "SKIP: @moq/qmux@0.3.3 not installable (offline?)"
        exit 77
    fi
fi
lib="$build/libmoqcore.a"
[ -f "$lib" ] || { echo "libmoqcore.a not found in $build (build first)"; exit 1; }
peer="$build/tests/qmux-crosscheck-peer"
mkdir -p "$(dirname "$peer")"
san=()
if nm "$lib" 2>/dev/null | grep __asan_init >/dev/null; then san=(-fsanitize=address,undefined); fi
cc -std=c17 -O1 -g -D_GNU_SOURCE "${san[@]}" -I "$src/src" "$here/peer.c" "$lib" -lm -o "$peer"
cd "$here"
exec node crosscheck.mjs "$peer"
