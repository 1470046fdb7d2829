#!/bin/sh
# runtime-files.sh [--except LIST] DEST BINARY...
# The runtime file set of the container image: each BINARY in DEST/usr/local/bin and every
# shared library it loads (as ldd resolves them, the dynamic loader included) at its real
# path under DEST, e.g. DEST/usr/lib/x86_64-linux-gnu/libngtcp2.so.9. With --except, the
# libraries whose path is a line of LIST (those the runtime base image already has) are
# left out. Nothing else: the Dockerfile copies DEST over debian:12-slim, and
# tests/integration/test_deploy_runtime.sh runs the relay from DEST alone.
set -eu
except=/dev/null
if [ "$1" = --except ]; then
    except=$2
    shift 2
fi
dest=$1
shift
mkdir -p "$dest/usr/local/bin"
for bin in "$@"; do
    install -m 0755 "$bin" "$dest/usr/local/bin/"
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do
    dir=$(readlink -f "$(dirname "$lib")")
    path="$dir/$(basename "$lib")"
    grep -qxF "$path" "$except" && continue
    mkdir -p "$dest$dir"
    cp -L "$lib" "$dest$path"
done
