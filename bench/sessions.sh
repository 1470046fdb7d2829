#!/usr/bin/env bash
# Memory of idle sessions: the relay's RSS before and after N sessions from one `moq bench`
# connect and stay idle (no broadcast, no subscription).
# Usage: bench/sessions.sh [N] [TRANSPORT]   N default 200; TRANSPORT quic (raw QUIC,
# default), webtransport or websocket.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N="${1:-200}"
TRANSPORT="${2:-quic}"
ulimit -n "$(ulimit -Hn)"
bench_start_relay --limits-memory-trim-quiet 0
case "$TRANSPORT" in
quic) URL="moql://127.0.0.1:$PORT/" ;;
webtransport) URL="https://localhost:$PORT/" ;;
websocket) URL="ws://127.0.0.1:$PORT/" ;;
*) echo "unknown transport $TRANSPORT (quic, webtransport, websocket)" >&2; exit 2 ;;
esac
before=$(relay_rss_kb)
"$MOQ_BIN" bench "$URL" --tls-fingerprint "$FP" --connections "$N" --broadcasts 0 --subscribe 0 \
    --fps 0 --startup "$(((N + 99) / 100))s" --report 1s --quiet --output /dev/null >/dev/null 2>&1 &
BENCH_PIDS+=("$!")
live=0
for _ in $(seq 600); do
    live=$(relay_sessions "$TRANSPORT")
    ((live >= N)) && break
    sleep 0.2
done
sleep 2 # the last handshakes' packets settle (acknowledgements, session setup)
after=$(relay_rss_kb)
printf "%s: idle relay RSS %d kB; with %d idle sessions %d kB; %.1f kB per session\n" \
    "$TRANSPORT" "$before" "$live" "$after" "$(awk -v a="$after" -v b="$before" -v n="$live" 'BEGIN { print (a - b) / n }')"
