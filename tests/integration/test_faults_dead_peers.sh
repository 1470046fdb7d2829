#!/usr/bin/env bash
# Peers that vanish without closing, with the impairment proxy (tests/tools/impair.c) as the
# cable. The relay runs with a 60 s idle timeout, 250 ms keep-alives and a 5 s ack timeout:
#  1. a raw QUIC subscriber whose cable is pulled is closed for "ack timeout", before the
#     idle timeout could have closed it; the other subscriber loses nothing; a redial through
#     the same path works once the cable is back;
#  2. a blackout shorter than the ack timeout is survived: the session stays and what was
#     published meanwhile arrives;
#  3. the same over WebSocket: a stalled TCP path (no FIN) is dropped after unanswered pings,
#     a reset one at once, and redials work;
#  4. a publisher killed with SIGKILL in the middle of a group: its subscribers see the
#     broadcast end after the ack timeout and the 5 s linger, not 65 s later.
#  5. the relay warns at startup when idle_timeout is not longer than keep_alive;
#  6. a client whose handshake is blacked out for longer than QUIC's default handshake
#     timeout (10 s) connects within its own --timeout.
# How long the relay took to notice is bounded by the idle timeout only: the reason it gives
# tells the ack timeout from the idle timeout, and a loaded machine may run its timers late.
source "$(dirname "$0")/lib.sh"
ACK_S=5
IDLE_S=60
LINGER_S=5
MOQ_LOG=info,moq=debug start_relay --server-quic-idle-timeout "${IDLE_S}s" \
    --server-quic-keep-alive 250ms --server-quic-ack-timeout "${ACK_S}s"
TLS=(--tls-fingerprint "$FP")

has_frames() { # NAME N: the subscriber NAME has written at least N frames
    (($(lines_of "$TMP/$1.out") >= $2))
}
ack_timeouts() {
    log_count "$RELAY_LOG" 'reason="ack timeout"'
}
more_ack_timeouts() { # N: more than N sessions closed for the ack timeout
    (($(ack_timeouts) > $1))
}

# 1. ------------------------------------------------------------------------------------------
note "a QUIC subscriber whose cable is pulled"
fifo_publisher pub "$QUIC_URL" "${TLS[@]}" --broadcast cam --track t
start_impair cable udp "$PORT"
CABLE=$IMPAIR_PID
CABLE_URL="moql://127.0.0.1:$IMPAIR_PORT/"
spawn far "$MOQ" subscribe "$CABLE_URL" "${TLS[@]}" --broadcast cam --track t
FAR=$SPAWNED
spawn near "$MOQ" subscribe "$QUIC_URL" "${TLS[@]}" --broadcast cam --track t
wait_for relay_subscribed cam/t 2 || fail "the subscribers did not attach"
send a
wait_for has_frames far 1 || fail "the subscriber behind the proxy got nothing"
wait_for has_frames near 1 || fail "the direct subscriber got nothing"
before=$(ack_timeouts)
kill -USR1 "$CABLE"
wait_for log_has "$TMP/cable.err" "blackout on" || fail "the proxy did not pull the cable"
t0=$SECONDS
send b c
wait_for more_ack_timeouts "$before" || fail "the relay did not notice the vanished subscriber"
took=$((SECONDS - t0))
((took < IDLE_S)) || fail "the vanished subscriber was noticed after ${took}s"
wait_for has_frames near 3 || fail "the direct subscriber lost frames"
[[ "$(cat "$TMP/near.out")" == $'a\nb\nc' ]] || fail "the direct subscriber got: $(cat "$TMP/near.out")"
[[ "$(cat "$TMP/far.out")" == a ]] || fail "frames crossed a pulled cable: $(cat "$TMP/far.out")"
kill -USR2 "$CABLE"
kill -KILL "$FAR" 2>/dev/null || true
# (a new subscriber starts at the latest group: c)
spawn redial "$MOQ" subscribe "$CABLE_URL" "${TLS[@]}" --broadcast cam --track t --count 2
REDIAL=$SPAWNED
wait_for relay_subscribed cam/t 3 || fail "the redial did not subscribe"
wait_for has_frames redial 1 || fail "the redial got nothing"
send d
expect_ok "$REDIAL" "the subscriber that redialled"
[[ "$(cat "$TMP/redial.out")" == $'c\nd' ]] || fail "the redial got: $(cat "$TMP/redial.out")"

# 2. ------------------------------------------------------------------------------------------
note "a blackout shorter than the ack timeout is survived"
start_impair flaky udp "$PORT" --blackout 500ms
FLAKY=$IMPAIR_PID
spawn survivor "$MOQ" subscribe "moql://127.0.0.1:$IMPAIR_PORT/" "${TLS[@]}" --broadcast cam \
    --track t
SURVIVOR=$SPAWNED
wait_for relay_subscribed cam/t 4 || fail "the subscriber did not attach"
wait_for has_frames survivor 1 || fail "the subscriber got nothing"
send e
wait_for has_frames survivor 2 || fail "the subscriber got nothing new"
before=$(ack_timeouts)
kill -USR1 "$FLAKY"
wait_for log_has "$TMP/flaky.err" "blackout on" || fail "no blackout"
send f g
wait_for log_has "$TMP/flaky.err" "blackout off" || fail "the blackout did not end"
wait_for has_frames survivor 4 || fail "what was published in the blackout did not arrive"
[[ "$(cat "$TMP/survivor.out")" == $'d\ne\nf\ng' ]] ||
    fail "the subscriber got: $(cat "$TMP/survivor.out")"
kill -0 "$SURVIVOR" 2>/dev/null || fail "the subscriber's session ended"
(($(ack_timeouts) == before)) || fail "a session was closed for a short blackout"

# 3. ------------------------------------------------------------------------------------------
note "WebSocket: a stalled path is dropped, a reset one noticed, redials work"
start_impair wire tcp "$PORT"
WIRE=$IMPAIR_PID
WS_URL="ws://127.0.0.1:$IMPAIR_PORT/"
spawn ws1 "$MOQ" subscribe "$WS_URL" --broadcast cam --track t
WS1=$SPAWNED
wait_for relay_subscribed cam/t 5 || fail "the WebSocket subscriber did not attach"
wait_for has_frames ws1 1 || fail "the WebSocket subscriber got nothing"
send h
wait_for has_frames ws1 2 || fail "the WebSocket subscriber got nothing new"
ws_gone() {
    (($(log_count "$RELAY_LOG" "WebSocket ping unanswered") + $(ack_timeouts) > $1))
}
before=$(($(log_count "$RELAY_LOG" "WebSocket ping unanswered") + $(ack_timeouts)))
kill -USR1 "$WIRE"
wait_for log_has "$TMP/wire.err" "blackout on" || fail "the proxy did not stall"
t0=$SECONDS
send i
wait_for ws_gone "$before" || fail "the relay did not drop the stalled WebSocket session"
took=$((SECONDS - t0))
((took < IDLE_S)) || fail "the stalled WebSocket session was dropped after ${took}s"
wait_for has_frames survivor 6 || fail "the QUIC subscriber lost frames"
kill -USR2 "$WIRE"
kill -KILL "$WS1" 2>/dev/null || true # (its client may have given up already)
spawn ws2 "$MOQ" subscribe "$WS_URL" --broadcast cam --track t
WS2=$SPAWNED
wait_for relay_subscribed cam/t 6 || fail "the WebSocket redial did not subscribe"
wait_for has_frames ws2 1 || fail "the WebSocket redial got nothing"
send j
wait_for has_frames ws2 2 || fail "the WebSocket redial got nothing new"
[[ "$(cat "$TMP/ws2.out")" == $'i\nj' ]] || fail "the WebSocket redial got: $(cat "$TMP/ws2.out")"
kill -HUP "$WIRE"
wait_for log_has "$TMP/wire.err" "cut 1 connections" || fail "the proxy did not cut"
rc=0
wait_exit "$WS2" || rc=$?
((rc != 0 && rc != 124)) || fail "the WebSocket subscriber did not see its connection reset ($rc)"
send k
wait_for has_frames survivor 8 || fail "the QUIC subscriber lost frames after the reset"
[[ "$(cat "$TMP/survivor.out")" == $'d\ne\nf\ng\nh\ni\nj\nk' ]] ||
    fail "the QUIC subscriber got: $(tr '\n' ' ' <"$TMP/survivor.out")"
end_input
expect_ok "$PUB_PID" "the publisher"
expect_ok "$SURVIVOR" "the subscriber that survived the blackout"

# 4. ------------------------------------------------------------------------------------------
note "a publisher killed with SIGKILL in the middle of a group"
fifo_publisher victim "$QUIC_URL" "${TLS[@]}" --broadcast doomed --track t --group-frames 2
VICTIM=$PUB_PID
spawn watcher "$MOQ" subscribe "$QUIC_URL" "${TLS[@]}" --broadcast doomed --track t
WATCHER=$SPAWNED
wait_for relay_subscribed doomed/t 1 || fail "no subscription to the doomed broadcast"
send x1 x2 y1
wait_for has_frames watcher 3 || fail "the subscriber did not get the first frames"
before=$(ack_timeouts)
kill -KILL "$VICTIM"
t0=$SECONDS
wait_exit "$WATCHER" || fail "the subscriber of the killed publisher did not end cleanly"
took=$((SECONDS - t0))
((took >= LINGER_S)) || fail "the broadcast ended after ${took}s, before the linger"
((took < IDLE_S)) || fail "the broadcast ended ${took}s after the kill"
(($(ack_timeouts) > before)) || fail "the killed publisher's session did not end for the ack timeout"
log_has "$RELAY_LOG" "broadcast /doomed ended: its publisher did not come back within 5000 ms" ||
    fail "the relay did not log the end of the linger"
[[ "$(cat "$TMP/watcher.out")" == $'x1\nx2\ny1' ]] ||
    fail "the subscriber got: $(tr '\n' ' ' <"$TMP/watcher.out")"
end_input
stop_relay

# 5. ------------------------------------------------------------------------------------------
note "a warning for an idle timeout shorter than the keep-alive"
start_relay --server-quic-idle-timeout 3s --server-quic-keep-alive 5s
log_has "$RELAY_LOG" "server.quic.idle_timeout (3000 ms) is not longer than server.quic.keep_alive" ||
    fail "no warning at startup"
stop_relay

# 6. ------------------------------------------------------------------------------------------
note "a handshake blacked out for 12 s connects within --timeout 60s"
MOQ_LOG=info,moq=debug start_relay
TLS=(--tls-fingerprint "$FP")
idle_input IN
spawn late-pub "$MOQ" publish "$QUIC_URL" "${TLS[@]}" --broadcast late --track t
IN=/dev/null
start_impair slowstart udp "$PORT" --blackout 12s
kill -USR1 "$IMPAIR_PID"
wait_for log_has "$TMP/slowstart.err" "blackout on" || fail "no blackout"
spawn late-sub "$MOQ" subscribe "moql://127.0.0.1:$IMPAIR_PORT/" "${TLS[@]}" --timeout 60s \
    --broadcast late --track t
wait_for log_has "$TMP/slowstart.err" "blackout off" || fail "the blackout did not end"
wait_for relay_subscribed late/t 1 ||
    fail "the subscriber did not connect after the blackout: $(tail -1 "$TMP/late-sub.err")"
stop_relay
