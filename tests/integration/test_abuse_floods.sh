#!/usr/bin/env bash
# Floods from one raw QUIC session (helpers/flood_peer.c), each kept up while a steady
# publisher/subscriber pair on other sessions goes on being served:
# - streams: as many streams as the relay's stream credit allows, credit returned as they
#   finish (far more streams in total than may be open at once);
# - datagrams: one-frame groups as fast as congestion control sends them, into a track a
#   subscriber follows, a quarter of them for an unknown subscription;
# - announcements: rounds of 1000 new broadcasts, each round ending the previous one.
# The relay's memory stays bounded (the cache bound for datagrams, the 1000 live broadcasts
# for announcements; for streams, what libngtcp2 0.12 keeps per stream, see docs/limits.md),
# and everything the flood held goes once its session ends. RSS is checked outside
# sanitizer builds only (their allocator keeps freed memory in quarantine).
source "$(dirname "$0")/lib.sh"
MAX_STREAMS=100
MOQ_LOG=info,moq=debug start_relay --web-metrics --server-quic-max-streams "$MAX_STREAMS" --cache-capacity 4MB \
    --limits-memory-trim-quiet 1s --log-repeat-interval 2s
FLOOD="$HELPERS/flood_peer"
SANITIZED=0
[[ "$(nm "$MOQ_RELAY_BIN" 2>/dev/null | grep -c __asan_init)" == 0 ]] || SANITIZED=1

metric() { # NAME: its value on /metrics
    curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$RELAY_PID/status"; }
flood_count() { # NAME: the last count the flood NAME printed
    awk '$1 ~ /^(streams|datagrams|announces)$/ { n = $2 } END { print n + 0 }' "$TMP/$1.out"
}
flood_reached() { # NAME N
    (($(flood_count "$1") >= $2))
}

# The steady pair: every frame published during a flood must reach the subscriber.
fifo_publisher steady-pub "$QUIC_URL" --tls-fingerprint "$FP" --broadcast steady --track t
spawn steady-sub "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast steady --track t
wait_for relay_subscribed steady/t 1 || fail "the steady subscriber did not attach"
STEADY=0
steady_served() { # WHAT
    STEADY=$((STEADY + 1))
    send "frame$STEADY"
    wait_for has_line "$TMP/steady-sub.out" "frame$STEADY" ||
        fail "the steady subscriber missed a frame during $1"
}
steady_served "the start"
idle_rss=$(rss_kb)

# flood NAME CASE THRESHOLD [ARGS...]: start the flood, wait until it passed THRESHOLD, check
# that the steady pair is served, then that the flood went on meanwhile (twice THRESHOLD).
# Leaves the flood running (FLOOD_PID).
flood() {
    local name="$1" case="$2" threshold="$3"
    shift 3
    spawn "$name" "$FLOOD" --url "$QUIC_URL" --fingerprint "$FP" --case "$case" "$@"
    FLOOD_PID=$SPAWNED
    wait_for flood_reached "$name" "$threshold" ||
        fail "$case flood did not get going: $(tail -n 3 "$TMP/$name.out")"
    steady_served "the $case flood"
    wait_for flood_reached "$name" $((threshold * 2)) ||
        fail "$case flood stalled: $(tail -n 3 "$TMP/$name.out")"
    relay_alive || fail "the relay died under the $case flood"
}
# end_flood NAME: SIGTERM the flood; it must still have had its session.
end_flood() {
    kill -TERM "$FLOOD_PID"
    expect_ok "$FLOOD_PID" "the $1 flood (its session was closed: $(tail -n 1 "$TMP/$1.out"))"
    echo "$1: $(grep summary "$TMP/$1.out")"
}
quic_sessions() { metric 'moq_relay_sessions{transport="quic"}'; }
# The steady pair's two sessions remain once a flood's session is gone.
steady_only() { [[ "$(quic_sessions)" == 2 ]]; }

note "a stream flood: credit returned as streams finish, never more than $MAX_STREAMS open"
flood streams streams 20000
peak=$(rss_kb)
end_flood streams
opened=$(flood_count streams)
wait_for steady_only || fail "the stream flood's session did not end"
steady_served "the end of the stream flood"
echo "ok - $opened streams opened with $MAX_STREAMS at once; RSS ${idle_rss} kB idle, ${peak} kB in the flood"
if ((!SANITIZED)); then
    # libngtcp2 0.12 keeps each finished unidirectional stream of a connection until the
    # connection ends (~250 bytes): bounded by the session, given back when it ends.
    ((peak - idle_rss <= opened / 2 + 16384)) ||
        fail "RSS grew $((peak - idle_rss)) kB for $opened streams"
    back() { (($(rss_kb) <= idle_rss + 8192)); }
    wait_for back || fail "RSS $(rss_kb) kB after the stream flood ended (idle $idle_rss kB)"
fi

note "a datagram flood into a followed track, a quarter for an unknown subscription"
spawn dg-sub "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast dgflood --track t
flood datagrams datagrams 20000 --broadcast dgflood
wait_for at_least_lines "$TMP/dg-sub.out" 100 || fail "the flood's subscriber received nothing"
chunks=$(metric moq_relay_chunk_bytes)
peak=$(rss_kb)
end_flood datagrams
((chunks <= 8 * 1024 * 1024)) || fail "$chunks bytes of frames held under the datagram flood (cache 4 MB)"
echo "ok - $(flood_count datagrams) datagrams; $chunks bytes of frames held, RSS ${peak} kB"
((SANITIZED || peak - idle_rss <= 65536)) || fail "RSS grew $((peak - idle_rss)) kB under the datagram flood"
wait_for steady_only || fail "the datagram flood's session did not end"
steady_served "the end of the datagram flood"

note "an announcement flood: 1000 new broadcasts a round, the previous round ended"
flood announces announces 20000 --broadcast annflood
broadcasts=$(metric moq_relay_broadcasts)
peak=$(rss_kb)
((broadcasts <= 1002)) || fail "$broadcasts broadcasts live under the announcement flood (at most 1000 + steady)"
end_flood announces
echo "ok - $(flood_count announces) announcements, at most $broadcasts broadcasts live; RSS ${peak} kB"
((SANITIZED || peak - idle_rss <= 32768)) || fail "RSS grew $((peak - idle_rss)) kB under the announcement flood"
wait_for log_has "$RELAY_LOG" "announced broadcasts:" || fail "the announcements were not summarised in the log"
only_steady_broadcast() { [[ "$(metric moq_relay_broadcasts)" == 1 ]]; }
wait_for only_steady_broadcast || fail "$(metric moq_relay_broadcasts) broadcasts left after the flood"
steady_served "the end of the announcement flood"

end_input
expect_ok "$PUB_PID" "the steady publisher"
stop_relay
