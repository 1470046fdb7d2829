#!/usr/bin/env bash
# Memory goes back to the system when the load falls: 150 `moq bench` connections (chat
# preset, raw QUIC) come and go; once no session started for limits.memory_trim_quiet the
# relay trims its heap (counted on /metrics), and its RSS falls well below the peak. Under
# sanitizers the allocator is theirs, so only the trim itself is checked there.
source "$(dirname "$0")/lib.sh"
# All 150 connections come from one address: the per-address handshake cap is not under test.
start_relay --limits-memory-trim-quiet 1s --web-metrics --limits-half-open-per-address 1000

metric() { # NAME: its value on /metrics
    curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$RELAY_PID/status"; }
idle_rss=$(rss_kb)

spawn bench "$MOQ" bench "$QUIC_URL" --tls-fingerprint "$FP" --file "$MOQ_SOURCE_DIR/bench/presets/chat.toml" \
    --connections 150 --startup 3s --report 1s --quiet
BENCH=$SPAWNED
all_up() { [[ "$(metric 'moq_relay_sessions{transport="quic"}')" == 150 ]]; }
wait_for all_up || fail "the 150 sessions did not come up ($(metric 'moq_relay_sessions{transport="quic"}'))"
trims_before=$(metric moq_relay_memory_trims_total)
peak=$(rss_kb)
kill -TERM "$BENCH"
expect_ok "$BENCH" "moq bench (SIGTERM)"
note "relay RSS: idle ${idle_rss} kB, peak ${peak} kB"

all_gone() { [[ "$(metric 'moq_relay_sessions{transport="quic"}')" == 0 ]]; }
wait_for all_gone || fail "the sessions did not leave"
trimmed() { (($(metric moq_relay_memory_trims_total) > trims_before)); }
wait_for trimmed || fail "no trim after the load fell"
if [[ "$(nm "$MOQ_RELAY_BIN" 2>/dev/null | grep -c __asan_init)" != 0 ]]; then
    echo "ok - trimmed after the load fell (RSS not checked under sanitizers)"
else
    # The broadcasts linger and the cache expires after the sessions left; later trims
    # return that memory too.
    fell() { (($(rss_kb) < idle_rss + (peak - idle_rss) / 2)); }
    wait_for fell || fail "RSS $(rss_kb) kB after the load fell (idle $idle_rss kB, peak $peak kB)"
    echo "ok - RSS back to $(rss_kb) kB from a peak of $peak kB (idle $idle_rss kB)"
fi
stop_relay
