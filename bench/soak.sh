#!/usr/bin/env bash
# Soak: the sd preset's track from one publisher to SUBS subscribers, plus churn (a
# subscriber joins every second and leaves CHURN_LIFE seconds later), for DURATION seconds.
# Every 10 s the relay's RSS, open descriptors, CPU time and sessions go into a CSV; at the
# end the RSS and descriptor slopes are printed. Fails (exit 1) when the relay dies, when its
# descriptors grow, or when its RSS keeps growing: the highest RSS of the last third of the
# run may exceed the highest before it (after the warm-up) by no more than the track's
# cache (max latency plus the latest group at the preset's highest rate) plus the free
# memory the allocator keeps before a trim (8 MiB). A machine that gets slower mid-run
# makes the relay hold more in flight for a while (its RSS steps up, then stays flat); a
# leak keeps climbing.
# Usage: bench/soak.sh [DURATION_S]   (default 3600; SUBS=200, CHURN_LIFE=3, WARMUP_S=60)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION_S="${1:-3600}"
SUBS="${SUBS:-200}"
CHURN_LIFE="${CHURN_LIFE:-3}"
WARMUP_S="${WARMUP_S:-60}"
SAMPLE_S="${SAMPLE_S:-10}"
OUT="${OUT:-$BUILD/soak}"
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl
CSV="$OUT/soak.csv"
# The sd preset at its largest frames: 30 fps x 12000 B; the relay keeps 5 s (max latency)
# plus the latest 2 s group, and glibc keeps up to 8 MiB freed before a trim.
CACHE_KB=$((30 * 12000 * 7 / 1024))
BOUND_KB=$((CACHE_KB + 8 * 1024))
ulimit -n "$(ulimit -Hn)"
RELAY_LOG="$OUT/relay.log"
: >"$RELAY_LOG"
bench_start_relay
URL="moql://127.0.0.1:$PORT/"
"$MOQ_BIN" bench "$URL" --tls-fingerprint "$FP" --file bench/presets/sd.toml --connections 1 \
    --broadcasts 1 --subscribe 0 --startup 0s --duration "$((DURATION_S + 30))s" --report 10s \
    --quiet --output "$OUT/pub.jsonl" >/dev/null 2>&1 &
BENCH_PIDS+=("$!")
for _ in $(seq 200); do (($(relay_sessions) >= 1)) && break; sleep 0.1; done
"$MOQ_BIN" bench "$URL" --tls-fingerprint "$FP" --file bench/presets/fanout-sub.toml \
    --connections "$SUBS" --startup 10s --duration "${DURATION_S}s" --report 10s --quiet \
    --output "$OUT/sub.jsonl" >/dev/null 2>&1 &
subs=$!
BENCH_PIDS+=("$subs")

churn() { # one subscriber a second, each staying CHURN_LIFE seconds
    local i=0
    while :; do
        "$MOQ_BIN" bench "$URL" --tls-fingerprint "$FP" --connections 1 --broadcasts 0 \
            --subscribe 1 --startup 0s --duration "${CHURN_LIFE}s" --report "${CHURN_LIFE}s" \
            --quiet --output "$OUT/churn-$((i % 8)).jsonl" >/dev/null 2>&1 &
        i=$((i + 1))
        sleep 1
    done
}
churn &
BENCH_PIDS+=("$!")

echo "t_s,rss_kb,fds,cpu_s,sessions,load1" >"$CSV"
start=$(date +%s)
while :; do
    t=$(($(date +%s) - start))
    kill -0 "$RELAY_PID" 2>/dev/null || { echo "FAIL: the relay died at t=${t}s" >&2; exit 1; }
    kill -0 "$subs" 2>/dev/null || break # only samples under the full load count
    echo "$t,$(relay_rss_kb),$(relay_fds),$(relay_cpu_s),$(relay_sessions),$(cut -d' ' -f1 /proc/loadavg)" >>"$CSV"
    sleep "$SAMPLE_S"
done
wait "$subs" || true

# Least-squares slope per hour over the samples after the warm-up, and the growth check.
awk -F, -v w="$WARMUP_S" -v bound="$BOUND_KB" -v sub_lost="$(json_field "$OUT/sub.jsonl" lost_groups)" \
    -v sub_groups="$(json_field "$OUT/sub.jsonl" recv_groups)" -v sub_p99="$(json_field "$OUT/sub.jsonl" latency_p99_ms)" '
NR == 1 { next }
$1 < w { next }
{
    n++; x = $1 / 3600; sx += x; sy += $2; sxx += x * x; sxy += x * $2; sf += $3; sxf += x * $3
    if (n == 1) { rss0 = $2; fd0 = $3 }
    if ($2 > rss_max) rss_max = $2
    if ($3 > fd_max) fd_max = $3
    t[n] = $1; rss[n] = $2
    last_t = $1; cpu = $4; sess += $5
}
END {
    if (n < 2) { print "FAIL: fewer than two samples after the warm-up"; exit 1 }
    d = n * sxx - sx * sx
    printf "%d samples after %ds: RSS %.1f MB at the warm-up, max %.1f MB, slope %+.2f MB/h; descriptors %d..%d, slope %+.1f/h\n",
        n, w, rss0 / 1024, rss_max / 1024, (n * sxy - sx * sy) / d / 1024, fd0, fd_max, (n * sxf - sx * sf) / d
    printf "relay CPU %.1f s in %d s (%.1f %% of one core), %.0f sessions on average; subscribers lost %s of %s groups, p99 %s ms\n",
        cpu, last_t, 100 * cpu / last_t, sess / n, sub_lost, sub_groups, sub_p99
    fail = 0
    cut = t[1] + 2 * (last_t - t[1]) / 3
    for (i = 1; i <= n; i++) {
        if (t[i] < cut) { if (rss[i] > early) early = rss[i] }
        else if (rss[i] > late) late = rss[i]
    }
    printf "RSS max %.1f MB before t=%ds, %.1f MB after\n", early / 1024, cut, late / 1024
    if (late - early > bound) {
        printf "FAIL: RSS still grew %.1f MB in the last third, beyond the %.1f MB bound (cache + trim slack)\n", (late - early) / 1024, bound / 1024
        fail = 1
    }
    if (fd_max > fd0 + 8) { printf "FAIL: descriptors grew from %d to %d\n", fd0, fd_max; fail = 1 }
    exit fail
}' "$CSV"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; samples in $CSV"
