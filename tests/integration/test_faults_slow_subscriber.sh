#!/usr/bin/env bash
# Subscribers behind bad paths must not hurt anyone else. One publisher (a group per frame)
# and three subscribers: one direct, one behind a 2 Mbit/s bottleneck (tests/tools/impair.c)
# and one whose path is blacked out (the relay keeps its session: no ack timeout, a long idle
# timeout). The two behind bad paths subscribe with a 500 ms max latency; the direct one, like
# the track, with ten minutes: how late a starved process on a loaded machine reads what the
# relay sent is no reason for it to lose a frame. The relay caches at most 1 MB.
# While the publisher writes 13 MB (50 s through the bottleneck):
#  - the direct subscriber gets every frame as it is published: nobody stalls the publisher;
#  - the slow one loses only its own stale groups: it writes whole frames, in order, and the
#    last group reaches it long before the whole stream could have crossed its bottleneck;
#  - the relay's buffered bytes (and its RSS, outside sanitizer builds) stay bounded while the
#    blacked-out subscriber takes nothing; that subscriber's client gives up on its own (ack
#    timeout), and its redial starts at the latest group.
source "$(dirname "$0")/lib.sh"
OPS_PORT=$(free_port)
MOQ_LOG=info,moq=debug start_relay --internal-listen "127.0.0.1:$OPS_PORT" \
    --server-quic-ack-timeout 0 --server-quic-idle-timeout 120s --cache-capacity 1MB
TLS=(--tls-fingerprint "$FP")
FRAMES=800
BATCH=20
FRAME_BYTES=16000
PATIENT=(--max-latency 600s) # the direct path
STALE=(--max-latency 500ms)  # the bad paths

metric() { # NAME: its value on /metrics
    curl -sf "http://127.0.0.1:$OPS_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
metric_below() { # NAME LIMIT
    local v
    v=$(metric "$1")
    [[ -n "$v" ]] && ((v < $2))
}
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$RELAY_PID/status"
}
has_frames() { # NAME N
    (($(lines_of "$TMP/$1.out") >= $2))
}

awk -v n="$FRAMES" -v size="$FRAME_BYTES" 'BEGIN {
    for (i = 0; i < n; i++) {
        head = sprintf("f%04d-", i); body = ""
        while (length(body) < size) body = body head
        print head body
    }
}' >"$TMP/want"

fifo_publisher pub "$QUIC_URL" "${TLS[@]}" --broadcast live --track t "${PATIENT[@]}"
spawn fast "$MOQ" subscribe "$QUIC_URL" "${TLS[@]}" --broadcast live --track t --count "$FRAMES" \
    "${PATIENT[@]}"
FAST=$SPAWNED
start_impair narrow udp "$PORT" --rate 2mbit --queue 30000 --delay 20ms
spawn slow "$MOQ" subscribe "moql://127.0.0.1:$IMPAIR_PORT/" "${TLS[@]}" --broadcast live \
    --track t "${STALE[@]}"
start_impair dark udp "$PORT"
DARK=$IMPAIR_PID
spawn stuck "$MOQ" subscribe "moql://127.0.0.1:$IMPAIR_PORT/" "${TLS[@]}" --broadcast live \
    --track t "${STALE[@]}"
STUCK=$SPAWNED
wait_for relay_subscribed live/t 3 || fail "the subscribers did not attach"

note "publishing while one path is narrow and one is dark"
head -n 1 "$TMP/want" >"$PUB_FIFO"
wait_for has_frames stuck 1 || fail "the subscriber behind the dark path got nothing"
wait_for has_frames slow 1 || fail "the subscriber behind the narrow path got nothing"
kill -USR1 "$DARK"
wait_for log_has "$TMP/dark.err" "blackout on" || fail "no blackout"
rss_before=$(rss_kb)
for ((i = 1; i < FRAMES; i += BATCH)); do
    sed -n "$((i + 1)),$((i + BATCH))p" "$TMP/want" >"$PUB_FIFO"
    last=$((i + BATCH < FRAMES ? i + BATCH : FRAMES))
    wait_for has_frames fast "$last" || fail "the direct subscriber fell behind at frame $last"
done
expect_ok "$FAST" "the direct subscriber"
cmp -s "$TMP/fast.out" "$TMP/want" || fail "the direct subscriber's frames differ"

note "the slow subscriber skipped stale groups and caught up"
last_line=$(tail -n 1 "$TMP/want")
got_last() { grep -qxF -- "$last_line" "$TMP/$1.out" 2>/dev/null; }
wait_for got_last slow || fail "the slow subscriber never got the latest group"
slow_frames=$(lines_of "$TMP/slow.out")
((slow_frames < FRAMES)) || fail "the slow subscriber got every frame: nothing was stale?"
# whole frames of the stream, in order
awk 'NR == FNR { want[$0] = FNR; next }
     !($0 in want) { print "a frame that was never published"; exit 1 }
     want[$0] <= prev { print "frames out of order"; exit 1 }
     { prev = want[$0] }' "$TMP/want" "$TMP/slow.out" >"$TMP/slow.check" ||
    fail "the slow subscriber: $(cat "$TMP/slow.check")"

note "memory stays bounded while a subscriber is stuck"
# What the relay buffers drains to the cache capacity and the stale-group bound; the dark
# subscriber holds at most its congestion window's worth.
wait_for metric_below moq_relay_chunk_bytes $((6 * 1024 * 1024)) ||
    fail "the relay still buffers $(metric moq_relay_chunk_bytes) bytes: $(curl -sf "http://127.0.0.1:$OPS_PORT/metrics" | grep -v "^#" | tr "\n" " ")"
if ! grep -q "MOQ_SANITIZE:BOOL=ON" "$MOQ_BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
    grown=$(($(rss_kb) - rss_before))
    ((grown < 24 * 1024)) || fail "the relay's RSS grew by ${grown} kB for $FRAMES frames"
fi
# The stuck client gives up by itself: its keep-alives (5 s) go unanswered for its ack
# timeout (10 s).
rc=0
wait_exit "$STUCK" 30 || rc=$?
((rc != 124)) || fail "the stuck subscriber never noticed its dead path"
log_has "$TMP/stuck.err" "ack timeout" || fail "the stuck subscriber ended for another reason"
kill -USR2 "$DARK"
spawn redial "$MOQ" subscribe "moql://127.0.0.1:$IMPAIR_PORT/" "${TLS[@]}" --broadcast live \
    --track t --count 1 "${STALE[@]}"
expect_ok "$SPAWNED" "the subscriber that redialled the dark path"
got_last redial || fail "the redial did not start at the latest group"

end_input
expect_ok "$PUB_PID" "the publisher"
stop_relay
