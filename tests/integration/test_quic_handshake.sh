#!/usr/bin/env bash
# QUIC handshake against a client we did not write: Debian's ngtcp2 example client
# (gtlsclient, package ngtcp2-client, ALPN h3) talks to src/quic through the
# quic_test_server helper.
#  1. dual-stack listener [::]:0, reached over 127.0.0.1 and ::1: a connection with ALPN h3
#     is accepted, then closed by the server with H3_NO_ERROR (0x100) so the client exits;
#  2. a server whose ALPN list lacks h3 refuses the client during the handshake and logs
#     the offered list.
set -euo pipefail

: "${MOQ_BUILD_DIR:?}" "${MOQ_SOURCE_DIR:?}"
SERVER="$MOQ_BUILD_DIR/tests/quic_test_server"
FIX="$MOQ_SOURCE_DIR/tests/fixtures/quic"
CLIENT="$(command -v gtlsclient || true)"
if [[ -z "$CLIENT" ]]; then
    echo "FAIL: gtlsclient is not installed (apt package ngtcp2-client; scripts/deps.sh installs it)" >&2
    exit 1
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.out "$tmp"/*.log; do
        [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
    done
    exit 1
}

# start_server NAME EXIT_AFTER ARGS... : runs the helper in the background, waits for its port.
start_server() {
    local name="$1" exit_after="$2"
    shift 2
    rm -f "$tmp/port"
    "$SERVER" --cert "$FIX/cert.pem" --key "$FIX/key.pem" --port-file "$tmp/port" \
        --exit-after "$exit_after" "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
    server_pid=$!
    for _ in $(seq 400); do
        [[ -s "$tmp/port" ]] && break
        kill -0 "$server_pid" 2>/dev/null || fail "$name did not start"
        sleep 0.05
    done
    [[ -s "$tmp/port" ]] || fail "$name wrote no port"
    port="$(cat "$tmp/port")"
}

# wait_server: the helper exits by itself after --exit-after closed connections.
wait_server() {
    for _ in $(seq 400); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$server_pid" 2>/dev/null && fail "server did not finish"
    wait "$server_pid" || fail "server exited with an error"
    server_pid=""
}

run_client() {
    local host="$1" log="$2"
    # The idle timeout only bounds a hung run; the server closes the connection itself.
    timeout 30 "$CLIENT" -q --timeout=5s --exit-on-all-streams-close "$host" "$port" \
        https://localhost/ >"$log" 2>&1 || true
}

# 1. h3 accepted over both address families on one dual-stack socket (over IPv4 alone where
#    the machine has no IPv6 loopback; the test then reports itself skipped at the end).
ipv6=1
grep -qE '^0{31}1 ' /proc/net/if_inet6 2>/dev/null || ipv6=0
start_server accept $((1 + ipv6)) --listen "[::]:0" \
    --alpn moq-lite-05,moq-lite-04,moq-lite-03,h3 --close-on-accept 0x100
run_client 127.0.0.1 "$tmp/client4.log"
((ipv6)) && run_client ::1 "$tmp/client6.log"
wait_server
grep -q '^accepted alpn=h3 kind=4 peer=127.0.0.1:' "$tmp/accept.out" || fail "no IPv4 h3 accept"
if ((ipv6)); then
    grep -q '^accepted alpn=h3 kind=4 peer=\[::1\]:' "$tmp/accept.out" || fail "no IPv6 h3 accept"
fi
[[ "$(grep -c '^closed code=256 ' "$tmp/accept.out")" == $((1 + ipv6)) ]] ||
    fail "connections not closed"
grep -q 'INFO quic: accepted .* alpn=h3' "$tmp/accept.log" || fail "no accept log line"

# 2. Without h3 in the server's list the client is refused during the handshake.
start_server refuse 0 --listen 127.0.0.1:0 --alpn moq-lite-05,moq-lite-04
run_client 127.0.0.1 "$tmp/client-refused.log"
for _ in $(seq 400); do
    grep -q 'refused' "$tmp/refuse.log" && break
    sleep 0.05
done
kill "$server_pid"
wait "$server_pid" || fail "server did not exit cleanly on SIGTERM"
server_pid=""
grep -q 'refused 127.0.0.1:[0-9]*: no common ALPN (client offered: h3)' \
    "$tmp/refuse.log" || fail "no refusal log line"
grep -q '^accepted' "$tmp/refuse.out" && fail "refused client was accepted"

if ((!ipv6)); then
    echo "SKIP: no IPv6 loopback (::1) on this machine: the IPv6 accept was not tried (all else passed)"
    exit 77
fi
echo "quic handshake with gtlsclient: ok"
