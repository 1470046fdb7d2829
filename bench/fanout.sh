#!/usr/bin/env bash
# One publisher of the sd preset's track (30 fps, 4-12 kB frames, 2 s groups) to N
# subscribers through the relay, all in two `moq bench` processes on loopback. Prints the
# subscribers' lost groups and latency, the relay's CPU per delivered gigabyte and peak RSS,
# and the machine's load average. Usage: [WORKERS="1 2"] bench/fanout.sh [N] [SECONDS] [URL-SCHEME]
#   N subscribers (default 1000), SECONDS of measurement after the ramp (default 60),
#   scheme moql (raw QUIC, default), http (WebTransport) or ws (WebSocket).
#   WORKERS: run the whole fan-out once per server.workers value, one after the other, and
#   end with a table of the relay's CPU-s/GB, cores used (CPU time over wall time) and peak
#   RSS per value, and each value's CPU-s/GB over the first one's (default: one run with the
#   relay's default, one worker per CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N="${1:-1000}"
RUN_S="${2:-60}"
SCHEME="${3:-moql}"
RAMP_S="${RAMP_S:-$(((N + 49) / 50))}" # 50 new sessions per second
WORKERS="${WORKERS:-}"
OUT_BASE="${OUT:-$BUILD/fanout-$N}"
ulimit -n "$(ulimit -Hn)"
SUMMARY="$(mktemp)"
trap 'bench_cleanup; rm -f "$SUMMARY"' EXIT

fanout_run() { # [WORKERS]
    local w="${1:-}"
    OUT="$OUT_BASE${w:+-w$w}"
    mkdir -p "$OUT"
    [[ -n "$w" ]] && echo "# server.workers = $w"
    bench_start_relay ${w:+--server-workers "$w"}
    URL="$SCHEME://127.0.0.1:$PORT/"
    [[ "$SCHEME" == ws ]] && URL="ws://127.0.0.1:$PORT/"
    total_s=$((RAMP_S + RUN_S + 5))
    "$MOQ_BIN" bench "$URL" --tls-fingerprint "$FP" --file bench/presets/sd.toml --connections 1 \
        --broadcasts 1 --subscribe 0 --startup 0s --duration "$((total_s + 5))s" --report 5s --quiet \
        --output "$OUT/pub.jsonl" >/dev/null 2>&1 &
    BENCH_PIDS+=("$!")
    for _ in $(seq 200); do (($(relay_sessions) >= 1)) && break; sleep 0.1; done
    cpu0=$(relay_cpu_s)
    t0=$(date +%s.%N)
    "$MOQ_BIN" bench "$URL" --tls-fingerprint "$FP" --file bench/presets/fanout-sub.toml \
        --connections "$N" --startup "${RAMP_S}s" --duration "${total_s}s" --report 5s --quiet \
        --output "$OUT/sub.jsonl" >/dev/null 2>&1 &
    sub=$!
    BENCH_PIDS+=("$sub")
    peak=0
    echo "t_s,rss_kb,sessions,cpu_s,load1" >"$OUT/relay.csv"
    t=0
    while kill -0 "$sub" 2>/dev/null; do
        r=$(relay_rss_kb)
        ((r > peak)) && peak=$r
        echo "$t,$r,$(relay_sessions),$(relay_cpu_s),$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/relay.csv"
        sleep 5
        t=$((t + 5))
    done
    wait "$sub" || true
    wall=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')
    cpu=$(awk -v a="$(relay_cpu_s)" -v b="$cpu0" 'BEGIN { print a - b }')
    f() { json_field "$OUT/sub.jsonl" "$1"; }
    bytes=$(f recv_bytes)
    printf 'subscribers %s/%d (connect failures %s), lost groups %s of %s, latency p50 %s ms p99 %s ms max %s ms\n' \
        "$(f connections)" "$N" "$(f connect_failures)" "$(f lost_groups)" "$(f recv_groups)" \
        "$(f latency_p50_ms)" "$(f latency_p99_ms)" "$(f latency_max_ms)"
    # Frames per second received in the report windows after the ramp, against what N
    # subscribers of a 30 fps track should get.
    awk -v n="$N" -v ramp="$RAMP_S" '{ if (match($0, /"recv_fps":[0-9.]+/)) { v = substr($0, RSTART + 11, RLENGTH - 11); i++; if (i * 5 > ramp + 5) { s += v; k++ } } }
        END { if (k) printf "frames/s received after the ramp: %.0f of %d (%.0f %%)\n", s / k, 30 * n, 100 * s / k / (30 * n) }' "$OUT/sub.jsonl"
    awk -v c="$cpu" -v b="$bytes" -v p="$peak" 'BEGIN {
        gb = b / 1073741824
        printf "delivered %.2f GB, relay CPU %.1f s = %.2f CPU-s/GB, peak RSS %.1f MB\n", gb, c, (gb > 0 ? c / gb : 0), p / 1024 }'
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; samples in $OUT/"
    awk -v w="${w:-default}" -v c="$cpu" -v b="$bytes" -v p="$peak" -v wall="$wall" 'BEGIN {
        gb = b / 1073741824
        printf "%s %.3f %.2f %.1f\n", w, (gb > 0 ? c / gb : 0), c / wall, p / 1024 }' >>"$SUMMARY"
    bench_cleanup
    BENCH_PIDS=()
}

if [[ -z "$WORKERS" ]]; then
    fanout_run
else
    for w in $WORKERS; do fanout_run "$w"; done
    echo "workers relay-CPU-s/GB relay-cores peak-RSS-MB CPU-s/GB-vs-first"
    awk 'NR == 1 { first = $2 } { printf "%7s %15.2f %11.2f %11.1f %17.2f\n", $1, $2, $3, $4, (first > 0 ? $2 / first : 0) }' "$SUMMARY"
fi
