#!/usr/bin/env bash
# Install the Debian packages moq-relay needs to build and test.
# Idempotent: does nothing when every package is already present.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev
    libgnutls28-dev gnutls-bin nettle-dev
    libev-dev libjansson-dev libwslay-dev libhttp-parser-dev
    libcmocka-dev
    clang libclang-rt-14-dev
    curl ngtcp2-client ngtcp2-server iproute2 procps
    man-db groff-base
    nodejs npm
    systemd
)
if [ "${MOQ_DEPS_BROWSER:-0}" = 1 ]; then
    packages+=(chromium)
fi
# make container-test: podman (runc for hosts where crun cannot run) and mmdebstrap for a
# Debian 12 base image where no registry serves one
# bench/callgrind.sh: instruction counts under valgrind
if [ "${MOQ_DEPS_VALGRIND:-0}" = 1 ]; then
    packages+=(valgrind)
fi
if [ "${MOQ_DEPS_CONTAINER:-0}" = 1 ]; then
    packages+=(podman runc iptables mmdebstrap)
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing+=("$p") ;;
    esac
done

# A node/npm that did not come from Debian (e.g. nodesource) satisfies the need too.
if command -v node >/dev/null && command -v npm >/dev/null; then
    filtered=()
    for p in "${missing[@]}"; do
        case "$p" in nodejs | npm) ;; *) filtered+=("$p") ;; esac
    done
    missing=("${filtered[@]+"${filtered[@]}"}")
fi

[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
