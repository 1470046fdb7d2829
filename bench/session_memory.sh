#!/usr/bin/env bash
# Where an idle session's memory goes: the relay's resident memory before and after N idle
# sessions from one `moq bench`, split by where it lives (/proc/PID/smaps): the malloc heap
# (GnuTLS, the relay's own state, libngtcp2's small allocations) and the anonymous mappings
# src/quic/mem.c gives libngtcp2's blocks of 4 kB and more (only the pages libngtcp2 wrote
# are resident). With heaptrack installed (HEAPTRACK=1), the heap part is also broken down
# by the function that allocated it, per session.
# Usage: bench/session_memory.sh [N] [TRANSPORT]   N default 200; TRANSPORT quic (default),
# webtransport or websocket.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N="${1:-200}"
TRANSPORT="${2:-quic}"
ulimit -n "$(ulimit -Hn)"
OUT="${OUT:-$BUILD/session_memory}"
mkdir -p "$OUT"
if [[ "${HEAPTRACK:-0}" == 1 ]]; then
    command -v heaptrack >/dev/null || { echo "heaptrack is not installed" >&2; exit 1; }
    rm -f "$OUT"/heaptrack*.zst
    REAL_RELAY="$(realpath "$RELAY_BIN")"
    RELAY_BIN="$OUT/relay-under-heaptrack"
    printf '#!/bin/sh\nexec heaptrack -o "%s/heaptrack" "%s" "$@"\n' "$OUT" "$REAL_RELAY" >"$RELAY_BIN"
    chmod +x "$RELAY_BIN"
fi
bench_start_relay --limits-memory-trim-quiet 0
if [[ "${HEAPTRACK:-0}" == 1 ]]; then # the relay is heaptrack's child
    RELAY_PID="$(pgrep -P "$RELAY_PID" -f moq-relay || echo "$RELAY_PID")"
fi
case "$TRANSPORT" in
quic) URL="moql://127.0.0.1:$PORT/" ;;
webtransport) URL="https://localhost:$PORT/" ;;
websocket) URL="ws://127.0.0.1:$PORT/" ;;
*) echo "unknown transport $TRANSPORT (quic, webtransport, websocket)" >&2; exit 2 ;;
esac

# resident kB: total, [heap], anonymous mappings other than the heap and stack
split_rss() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6; anon = (NF < 6 || name == "") }
         /^Rss:/ { t += $2; if (name == "[heap]") h += $2; else if (anon) m += $2 }
         END { print t, h, m }' "/proc/$RELAY_PID/smaps"
}
read -r t0 h0 m0 < <(split_rss)
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
read -r t1 h1 m1 < <(split_rss)
awk -v n="$live" -v tr="$TRANSPORT" -v t0="$t0" -v t1="$t1" -v h0="$h0" -v h1="$h1" -v m0="$m0" -v m1="$m1" 'BEGIN {
    printf "%s: %d idle sessions; resident kB per session: %.1f in all, %.1f malloc heap, %.1f libngtcp2 blocks (own mappings), %.1f other\n",
        tr, n, (t1 - t0) / n, (h1 - h0) / n, (m1 - m0) / n, ((t1 - t0) - (h1 - h0) - (m1 - m0)) / n }'
if [[ "${HEAPTRACK:-0}" == 1 ]]; then
    kill -TERM "$RELAY_PID"
    wait "${BENCH_PIDS[0]}" 2>/dev/null || true
    BENCH_PIDS=("${BENCH_PIDS[@]:1}")
    # The peak is the N sessions; heaptrack counts malloc only (not the mappings above).
    heaptrack_print -f "$OUT"/heaptrack*.zst --print-peaks 1 --print-allocators 0 --print-temporary 0 \
        --print-leaks 0 -n 12 2>/dev/null | awk -v n="$live" '
        /peak memory consumed over/ { v = $1; u = substr(v, length(v)); x = v + 0
            if (u == "K") x *= 1024; else if (u == "M") x *= 1048576
            getline fn; printf "  %7.2f kB  %s\n", x / n / 1024, fn }'
fi
