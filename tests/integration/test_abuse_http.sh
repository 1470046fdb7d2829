#!/usr/bin/env bash
# Abusive HTTP and WebSocket clients (helpers/http_abuse.py) are bounded with a clear error,
# and the relay keeps serving: slowloris request heads get 408 at the header timeout, a huge
# request head 431, a huge WebSocket message closes that WebSocket with 1009, and WebSocket
# upgrades that never speak are closed after the SETUP timeout (those beyond the session
# limit get 503 at once), and connections beyond limits.http_max_connections get 503 - the
# limit counts the whole relay, however many workers accept connections.
source "$(dirname "$0")/lib.sh"
start_relay --limits-http-header-timeout 1s --limits-ws-max-message 64KiB \
    --limits-setup-timeout 1s --limits-max-sessions 200
ABUSE=(python3 "$MOQ_SOURCE_DIR/tests/integration/helpers/http_abuse.py")

seq 1 5 >"$TMP/steady.in"
steady_pair() { # NAME: a subscriber over WebSocket gets every frame of a publisher over QUIC
    spawn steady-sub "$MOQ" subscribe "ws://127.0.0.1:$PORT/" --broadcast "$1" --track t
    local sub=$SPAWNED
    wait_for log_has "$TMP/steady-sub.err" "client: connected" || fail "the subscriber did not connect"
    IN="$TMP/steady.in" spawn steady-pub "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" \
        --broadcast "$1" --track t
    expect_ok "$SPAWNED" "the steady publisher ($1)"
    expect_ok "$sub" "the steady subscriber ($1)"
    [[ "$(tr '\n' ' ' <"$TMP/steady-sub.out")" == "1 2 3 4 5 " ]] ||
        fail "the steady subscriber ($1) got: $(cat "$TMP/steady-sub.out")"
}

note "slowloris"
"${ABUSE[@]}" slowloris "$PORT" 100 || fail "slowloris not bounded"
note "huge request head"
"${ABUSE[@]}" huge-headers "$PORT" || fail "huge headers not refused"
note "huge WebSocket message"
"${ABUSE[@]}" ws-huge-message "$PORT" 100000 || fail "huge WebSocket message not refused"
relay_alive || fail "the relay died"
steady_pair after-http

note "idle WebSocket upgrades"
"${ABUSE[@]}" idle-upgrades "$PORT" 50 >"$TMP/idle.out" || fail "$(cat "$TMP/idle.out")"
cat "$TMP/idle.out"
grep -q "^upgraded 50 refused 0$" "$TMP/idle.out" || fail "not 50 upgraded"
relay_alive || fail "the relay died"
steady_pair after-idle
stop_relay

# The session limit, with a SETUP timeout no loaded machine reaches while the upgrades are
# made: with 1 s, the first upgrades were closed (freeing their sessions) before the last
# ones came, and all 250 were upgraded.
note "WebSocket upgrades beyond the session limit"
IPORT="$(free_port)"
start_relay --limits-max-sessions 200 --limits-setup-timeout 120s \
    --internal-listen "127.0.0.1:$IPORT"
"${ABUSE[@]}" held-upgrades "$PORT" 250 >"$TMP/held-up.out" || fail "$(cat "$TMP/held-up.out")"
cat "$TMP/held-up.out"
grep -q "^upgraded 200 refused 50$" "$TMP/held-up.out" || fail "not 200 upgraded and 50 refused"
ws_sessions_gone() {
    curl -sf "http://127.0.0.1:$IPORT/metrics" | grep -qx 'moq_relay_sessions{transport="websocket"} 0'
}
wait_for ws_sessions_gone || fail "the relay still counts the closed upgrades as sessions"
relay_alive || fail "the relay died"
steady_pair after-limit-ws
stop_relay

note "the connection limit"
start_relay --limits-http-max-connections 4
"${ABUSE[@]}" held-connections "$PORT" 10 >"$TMP/held.out" || fail "$(cat "$TMP/held.out")"
cat "$TMP/held.out"
grep -q "^served 4 refused 6$" "$TMP/held.out" || fail "not 4 served and 6 refused"
relay_alive || fail "the relay died"
steady_pair after-limit
stop_relay
