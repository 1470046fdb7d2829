#!/usr/bin/env bash
# Publishers coming and going, with the real binaries:
#  1. a subscriber arriving after the last one left gets the latest group at once;
#  2. a publisher killed (its session left quiet: the relay waits for the idle timeout) and
#     started again carries the broadcast at once, every time: `moq announced` sees the
#     broadcast end and come back, a subscriber of the old one ends cleanly, and a new
#     subscriber gets the new publisher's groups, numbered from 0 again;
#  3. subscribers whose subscriptions cross the end of a broadcast (announced, then at once
#     unannounced: its publisher had nothing to send) all exit cleanly.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,moq=debug start_relay --server-quic-idle-timeout 60s

# 1. ------------------------------------------------------------------------------------------
note "a late joiner after the last subscriber left"
fifo_publisher pub "$HTTP_URL" --broadcast late --track t
spawn first "$MOQ" subscribe "$HTTP_URL" --broadcast late --track t --count 1
FIRST=$SPAWNED
wait_for relay_subscribed late/t 1 || fail "the first subscriber did not attach"
send one
expect_ok "$FIRST" "the first subscriber"
[[ "$(cat "$TMP/first.out")" == one ]] || fail "the first subscriber got: $(cat "$TMP/first.out")"
wait_for log_has "$RELAY_LOG" "releasing late/t upstream" ||
    fail "the relay kept its upstream subscription after the last subscriber left"
spawn second "$MOQ" subscribe "$HTTP_URL" --broadcast late --track t --count 1
expect_ok "$SPAWNED" "the subscriber arriving after the first left"
[[ "$(cat "$TMP/second.out")" == one ]] || fail "the late joiner got: $(cat "$TMP/second.out")"
end_input
expect_ok "$PUB_PID" "the publisher"

# 2. ------------------------------------------------------------------------------------------
note "a publisher killed and started again takes over at once"
spawn ann "$MOQ" announced "$HTTP_URL" --prefix cam
ANN=$SPAWNED
announced_times() { (($(count_lines "$TMP/ann.out" +cam) >= $1)); }
ROUNDS=4
for round in $(seq 1 "$ROUNDS"); do
    fifo_publisher "pub$round" "$HTTP_URL" --broadcast cam --track t
    wait_for announced_times "$round" || fail "round $round: the publisher is not announced"
    if ((round > 1)); then
        # the subscriber of the previous publisher's broadcast has seen it end
        expect_ok "$KEEP" "round $round: the subscriber of the killed publisher"
        [[ "$(cat "$TMP/keep$((round - 1)).out")" == "r$((round - 1))-0"$'\n'"r$((round - 1))-1" ]] ||
            fail "round $round: the old subscriber got: $(cat "$TMP/keep$((round - 1)).out")"
    fi
    spawn "keep$round" "$MOQ" subscribe "$HTTP_URL" --broadcast cam --track t
    KEEP=$SPAWNED
    spawn "sub$round" "$MOQ" subscribe "$HTTP_URL" --broadcast cam --track t --count 2
    SUB=$SPAWNED
    wait_for relay_subscribed cam/t $((2 * round)) || fail "round $round: no subscription"
    send "r$round-0" "r$round-1"
    expect_ok "$SUB" "round $round: the new subscriber"
    [[ "$(cat "$TMP/sub$round.out")" == "r$round-0"$'\n'"r$round-1" ]] ||
        fail "round $round: the new subscriber got: $(cat "$TMP/sub$round.out")"
    if ((round < ROUNDS)); then
        kill -KILL "$PUB_PID"
        wait "$PUB_PID" 2>/dev/null || true
        end_input
    fi
done
want="+cam"$(for _ in $(seq 2 "$ROUNDS"); do printf '\n-cam\n+cam'; done)
[[ "$(cat "$TMP/ann.out")" == "$want" ]] || fail "announcements: $(tr '\n' ' ' <"$TMP/ann.out")"
kill "$ANN"
end_input
expect_ok "$PUB_PID" "the last publisher"
expect_ok "$KEEP" "the last subscriber"

# 3. ------------------------------------------------------------------------------------------
note "subscriptions crossing the end of a broadcast"
SUBS=()
for i in $(seq 1 6); do
    v=$((3 + i % 3))
    spawn "cross$i" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast brief \
        --track t --moq-version "0$v"
    SUBS+=("$SPAWNED")
done
wait_for eval '(($(log_count "$RELAY_LOG" "announcing /brief to the peer") >= 6))' ||
    fail "the subscribers did not ask for announcements"
IN=/dev/null spawn brief "$MOQ" publish "$HTTP_URL" --broadcast brief --track t
expect_ok "$SPAWNED" "the publisher without input"
for i in $(seq 1 6); do expect_ok "${SUBS[$((i - 1))]}" "subscriber $i of the brief broadcast"; done
stop_relay
echo "ok"
