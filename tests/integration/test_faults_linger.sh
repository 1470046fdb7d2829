#!/usr/bin/env bash
# A publisher that comes back while its broadcast lingers continues it: the relay's
# subscribers keep their subscription and watchers never see the broadcast end.
#  1. a publisher killed with SIGKILL in the middle of a group, started again with the same
#     --origin and numbering its groups on from where the killed one stopped: the subscriber
#     gets the killed publisher's frames, then the new one's, and ends when the new one ends;
#  2. `moq publish --reconnect` whose connection is reset mid-group redials and announces
#     again by itself; the group in flight was cut, the next frames start a new group;
#  3. a new publisher of the same path under another identity (a fresh --origin) is new
#     content: the subscription ends (as upstream's relay replaces it);
#  4. `--reconnect` gives up after --reconnect-timeout when the relay cannot be reached.
# The relay logs the broadcast lingering, continued and replaced.
# (A broadcast whose publisher does not come back ends after the linger:
# test_faults_dead_peers.sh.)
source "$(dirname "$0")/lib.sh"
ACK_S=2
# Long enough that a restarted publisher is always back in time on a loaded machine; the
# broadcasts here end when their publishers end them, so the test never waits for it.
LINGER=30s
MOQ_LOG=info,moq=debug start_relay --server-quic-idle-timeout 60s --server-quic-keep-alive 250ms \
    --server-quic-ack-timeout "${ACK_S}s" --cluster-linger "$LINGER"
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
note "a publisher killed with SIGKILL comes back within the linger"
spawn watch "$MOQ" announced "$QUIC_URL" "${TLS[@]}" --prefix cam --ready-file "$(ready_file watch)"
WATCH=$SPAWNED
wait_ready watch "watching cam"
fifo_publisher victim "$QUIC_URL" "${TLS[@]}" --broadcast cam --track t --group-frames 2 \
    --origin 4242
VICTIM=$PUB_PID
spawn sub "$MOQ" subscribe "$QUIC_URL" "${TLS[@]}" --broadcast cam --track t \
    --ready-file "$(ready_file sub)"
SUB=$SPAWNED
wait_for relay_subscribed cam/t 1 || fail "no subscription to cam"
# group 0 complete, group 1 in flight; a group goes out once the last one arrived (the
# subscription starts at the first group to arrive)
send x1 x2
wait_for has_frames sub 2 || fail "the subscriber did not get the first frames"
send y1
wait_for has_frames sub 3 || fail "the subscriber did not get the first frames"
before=$(ack_timeouts)
kill -KILL "$VICTIM"
end_input
wait_for more_ack_timeouts "$before" || fail "the relay did not notice the killed publisher"
[[ "$(cat "$TMP/watch.out")" == +cam ]] || fail "the broadcast was not kept for the linger"
fifo_publisher phoenix "$QUIC_URL" "${TLS[@]}" --broadcast cam --track t --group-frames 2 \
    --origin 4242 --group-start 2 --ready-file "$(ready_file phoenix)"
PHOENIX=$PUB_PID
wait_ready phoenix "requested cam/t"
send z1 z2
wait_for has_frames sub 5 || fail "the subscriber did not get the new publisher's frames"
send w1
wait_for has_frames sub 6 || fail "the subscriber did not get the new publisher's frames"
[[ "$(cat "$TMP/sub.out")" == $'x1\nx2\ny1\nz1\nz2\nw1' ]] ||
    fail "the subscriber got: $(tr '\n' ' ' <"$TMP/sub.out")"
kill -0 "$SUB" 2>/dev/null || fail "the subscription ended when the publisher came back"
log_has "$RELAY_LOG" "broadcast /cam lost its publisher: kept 30000 ms for it to come back" ||
    fail "the relay did not log the lingering broadcast"
log_has "$RELAY_LOG" "broadcast /cam continued by its returning publisher" ||
    fail "the relay did not log the broadcast's continuation"
end_input
expect_ok "$PHOENIX" "the publisher that came back"
expect_ok "$SUB" "the subscriber"
wait_for at_least_lines "$TMP/watch.out" 2 || fail "the watcher did not see the end"
[[ "$(cat "$TMP/watch.out")" == $'+cam\n-cam' ]] ||
    fail "the watcher saw: $(tr '\n' ' ' <"$TMP/watch.out")"
kill "$WATCH"

# 2. ------------------------------------------------------------------------------------------
note "moq publish --reconnect continues after its connection was reset"
start_impair wire tcp "$PORT"
WIRE=$IMPAIR_PID
fifo_publisher roamer "ws://127.0.0.1:$IMPAIR_PORT/" --broadcast road --track t --group-frames 2 \
    --reconnect --ready-file "$(ready_file roamer)"
ROAMER=$PUB_PID
spawn rsub "$MOQ" subscribe "$QUIC_URL" "${TLS[@]}" --broadcast road --track t \
    --ready-file "$(ready_file rsub)"
RSUB=$SPAWNED
wait_for relay_subscribed road/t 1 || fail "no subscription to road"
send a1 a2
wait_for has_frames rsub 2 || fail "the subscriber got nothing"
send b1
wait_for has_frames rsub 3 || fail "the subscriber did not get the group in flight"
kill -HUP "$WIRE"
wait_for log_has "$TMP/wire.err" "cut 1 connections" || fail "the proxy did not cut"
wait_for log_has "$TMP/roamer.err" "reconnecting to ws://" || fail "the publisher did not redial"
wait_ready roamer "requested road/t" 2
send c1 c2
wait_for has_frames rsub 5 || fail "the subscriber did not get the frames after the reconnect"
send d1
wait_for has_frames rsub 6 || fail "the subscriber did not get the frames after the reconnect"
[[ "$(cat "$TMP/rsub.out")" == $'a1\na2\nb1\nc1\nc2\nd1' ]] ||
    fail "the subscriber got: $(tr '\n' ' ' <"$TMP/rsub.out")"
log_has "$TMP/rsub.err" "ended" && fail "the subscriber saw the broadcast end"
end_input
expect_ok "$ROAMER" "the publisher that reconnected"
expect_ok "$RSUB" "the subscriber of the reconnected publisher"

# 3. ------------------------------------------------------------------------------------------
note "another publisher of the path is new content"
fifo_publisher first "$QUIC_URL" "${TLS[@]}" --broadcast swap --track t --origin 5151
FIRST=$PUB_PID
spawn ssub "$MOQ" subscribe "$QUIC_URL" "${TLS[@]}" --broadcast swap --track t \
    --ready-file "$(ready_file ssub)"
SSUB=$SPAWNED
wait_for relay_subscribed swap/t 1 || fail "no subscription to swap"
send one
wait_for has_frames ssub 1 || fail "the subscriber got nothing"
before=$(ack_timeouts)
kill -KILL "$FIRST"
end_input
wait_for more_ack_timeouts "$before" || fail "the relay did not notice the killed publisher"
fifo_publisher other "$QUIC_URL" "${TLS[@]}" --broadcast swap --track t --origin 6161 \
    --group-start now
OTHER=$PUB_PID
expect_ok "$SSUB" "the subscriber of the replaced broadcast"
log_has "$TMP/ssub.err" "broadcast swap ended" || fail "the subscription did not end"
log_has "$RELAY_LOG" "broadcast /swap replaced by another publisher's content" ||
    fail "the relay did not log the replacement"
[[ "$(cat "$TMP/ssub.out")" == one ]] || fail "the subscriber got: $(tr '\n' ' ' <"$TMP/ssub.out")"
# the new content, numbered from the wall clock, reaches a new subscriber
spawn nsub "$MOQ" subscribe "$QUIC_URL" "${TLS[@]}" --broadcast swap --track t --count 1
NSUB=$SPAWNED
wait_for relay_subscribed swap/t 2 || fail "no new subscription to swap"
send two
expect_ok "$NSUB" "the subscriber of the new content"
[[ "$(cat "$TMP/nsub.out")" == two ]] || fail "the new subscriber got: $(cat "$TMP/nsub.out")"
end_input
expect_ok "$OTHER" "the new publisher"

# 4. ------------------------------------------------------------------------------------------
note "--reconnect gives up after --reconnect-timeout"
DEAD_PORT=$(free_port) || fail "no free port"
spawn lost "$MOQ" publish "moql://127.0.0.1:$DEAD_PORT/" "${TLS[@]}" --broadcast gone --track t \
    --reconnect --reconnect-timeout 1s --timeout 300ms
rc=0
wait_exit "$SPAWNED" || rc=$?
((rc == 1)) || fail "the publisher that could not reconnect exited with $rc"
log_has "$TMP/lost.err" "reconnecting to moql://" || fail "the publisher did not retry"
log_has "$TMP/lost.err" "gave up reconnecting to moql://127.0.0.1:$DEAD_PORT/ after 1.0 s" ||
    fail "the publisher did not say it gave up"
stop_relay
