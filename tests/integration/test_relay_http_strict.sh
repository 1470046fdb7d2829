#!/usr/bin/env bash
# The relay's HTTP side as an outside client meets it: /metrics only on [internal] unless
# [web] metrics opts in; 400 for HTTP/1.1 without Host and for bad percent-escapes, in the
# path and in the query (?jwt= included), on plain requests and on WebSocket upgrades; a
# WebSocket upgrade without a subprotocol we speak is refused with a body naming it.
source "$(dirname "$0")/lib.sh"

# code URL [curl args...]: the status of a GET; the body lands in $TMP/body.
code() {
    local url="$1"
    shift
    curl -s -o "$TMP/body" -w '%{http_code}' "$@" "$url"
}

# raw PORT REQUEST-BYTES: send bytes on a fresh connection, print the reply until close.
raw() {
    local out
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf '%b' "$2" >&3
    out=$(timeout 5 cat <&3 | tr -d '\r' || true)
    exec 3<&- 3>&-
    printf '%s' "$out"
}

expect_status() { # WHAT WANT GOT
    [[ "$3" == "$2" ]] || fail "$1: expected $2, got $3 ($(head -c 300 "$TMP/body" 2>/dev/null))"
    echo "ok - $1 ($3)"
}

INTERNAL_PORT="$(free_port)" || fail "no free port"
start_relay --internal-listen "127.0.0.1:$INTERNAL_PORT"
BASE="http://127.0.0.1:$PORT"
INTERNAL="http://127.0.0.1:$INTERNAL_PORT"

note "/metrics lives on [internal], not on the public listener"
expect_status "public /metrics" 404 "$(code "$BASE/metrics")"
grep -q moq_relay_sessions "$TMP/body" && fail "the public listener served the metrics"
expect_status "internal /metrics" 200 "$(code "$INTERNAL/metrics")"
grep -q '^moq_relay_sessions{transport="quic"} 0$' "$TMP/body" ||
    fail "internal /metrics lacks the session gauge: $(head -c 300 "$TMP/body")"
expect_status "internal /health" 200 "$(code "$INTERNAL/health")"
expect_status "public /health" 200 "$(code "$BASE/health")"

note "HTTP/1.1 needs exactly one Host"
out="$(raw "$PORT" 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')"
[[ "$out" == "HTTP/1.1 400"* ]] || fail "no Host: $(head -n1 <<<"$out")"
out="$(raw "$PORT" 'GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n')"
[[ "$out" == "HTTP/1.1 400"* ]] || fail "two Hosts: $(head -n1 <<<"$out")"
out="$(raw "$PORT" 'GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')"
[[ "$out" == "HTTP/1.1 200"* ]] || fail "one Host: $(head -n1 <<<"$out")"
out="$(raw "$PORT" 'GET /health HTTP/1.0\r\n\r\n')"
[[ "$out" == "HTTP/1.1 200"* ]] || fail "HTTP/1.0 without Host: $(head -n1 <<<"$out")"
echo "ok - Host rules"

note "bad percent-escapes are 400 wherever they are"
expect_status "escape in the path" 400 "$(code "$BASE/announced/a%zz")"
expect_status "escape in ?jwt=" 400 "$(code "$BASE/announced/?jwt=%zz")"
expect_status "escape in another parameter" 400 "$(code "$BASE/announced/?x=%4&jwt=")"
expect_status "encoded NUL" 400 "$(code "$BASE/fetch/a/b?group=1%00")"
expect_status "good escapes" 200 "$(code "$BASE/announced/a%20b?x=%41+")"
# A WebSocket upgrade with a bad escape in its token never reaches the authorizer.
expect_status "escape in a WebSocket ?jwt=" 400 "$(code "$BASE/room?jwt=%zz" \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    -H 'Sec-WebSocket-Protocol: qmux-01.moq-lite-05')"

note "a WebSocket upgrade without a subprotocol we speak gets a 400 that says what to offer"
ws_headers=(-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')
expect_status "upgrade without Sec-WebSocket-Protocol" 400 "$(code "$BASE/room" "${ws_headers[@]}")"
grep -q '^no Sec-WebSocket-Protocol offered: .*qmux-02.moq-lite-05' "$TMP/body" ||
    fail "the refusal does not name the header and the values: $(cat "$TMP/body")"
expect_status "upgrade offering only the legacy framing" 400 "$(code "$BASE/room" \
    "${ws_headers[@]}" -H 'Sec-WebSocket-Protocol: webtransport, qmux-01')"
grep -q '^no offered Sec-WebSocket-Protocol is supported: .*qmux-01.moq-lite-03' "$TMP/body" ||
    fail "the refusal does not list what is supported: $(cat "$TMP/body")"
expect_status "upgrade offering qmux-01.moq-lite-05" 101 "$(code "$BASE/room" "${ws_headers[@]}" \
    -H 'Sec-WebSocket-Protocol: qmux-01.moq-lite-05' --max-time 1)"

stop_relay

note "[web] metrics = true puts /metrics on the public listener too"
start_relay --web-metrics
expect_status "public /metrics with --web-metrics" 200 "$(code "http://127.0.0.1:$PORT/metrics")"
grep -q '^moq_relay_sessions{transport="quic"} 0$' "$TMP/body" || fail "no session gauge"
stop_relay
echo "PASS"
