#!/usr/bin/env bash
# The relay's RSS through a load and after it: N chat-preset connections (`moq bench`, raw
# QUIC) ramp up, run, and leave; RSS and open sessions are sampled every second into a CSV.
# Usage: bench/memory.sh [N] [TRIM]   (TRIM: limits.memory_trim_quiet, default 5s; 0 = off)
# Prints the CSV path, then peak RSS, RSS right after the sessions left, and at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1500}"
TRIM="${2:-5s}"
BUILD="${BUILD:-build}"
RUN_S="${RUN_S:-20}"  # seconds of load after the ramp
TAIL_S="${TAIL_S:-15}" # seconds sampled after the sessions left
port=$((20000 + RANDOM % 40000))
csv="${CSV:-$BUILD/memory-$N-trim-$TRIM.csv}"
"$BUILD/moq-relay" --server-bind "127.0.0.1:$port" --web-http-listen "127.0.0.1:$port" \
    --tls-generate localhost --auth-public "" --web-metrics --log-level warn 2>"${RELAY_LOG:-/dev/null}" \
    --limits-memory-trim-quiet "$TRIM" --limits-half-open-per-address 0 \
    --limits-handshake-rate 0 &
relay=$!
bench=""
trap 'kill $bench "$relay" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
fp=$(curl -sf "http://127.0.0.1:$port/certificate.sha256")
rss() { awk '/VmRSS/ { print $2 }' "/proc/$relay/status"; }
sessions() {
    curl -sf "http://127.0.0.1:$port/metrics" | awk '/^moq_relay_sessions\{transport="quic"\}/ { print $2 }'
}
ulimit -n "$(ulimit -Hn)"
"$BUILD/moq" bench "moql://127.0.0.1:$port/" --tls-fingerprint "$fp" --file bench/presets/chat.toml \
    --connections "$N" --startup 15s --duration "$((15 + RUN_S))s" --report 5s --quiet \
    --output "$BUILD/memory-bench.jsonl" >/dev/null 2>&1 &
bench=$!
echo "t_s,rss_kb,sessions" >"$csv"
t=0 peak=0 left_rss="" left_t=""
while :; do
    r=$(rss) s=$(sessions)
    echo "$t,$r,$s" >>"$csv"
    ((r > peak)) && peak=$r
    if ! kill -0 "$bench" 2>/dev/null && [[ -z "$left_t" && "$s" == 0 ]]; then
        left_t=$t left_rss=$r
    fi
    [[ -n "$left_t" ]] && ((t >= left_t + TAIL_S)) && break
    sleep 1
    t=$((t + 1))
done
curl -sf "http://127.0.0.1:$port/metrics" >"$csv.metrics"
trims=$(awk '/^moq_relay_memory_trims_total/ { print $2 }' "$csv.metrics")
echo "$csv"
printf "%d connections, trim %s: peak RSS %d MB; when the last left (t=%ds) %d MB; %ds later %d MB (%s trims)\n" \
    "$N" "$TRIM" $((peak / 1024)) "$left_t" $((left_rss / 1024)) "$TAIL_S" $(($(rss) / 1024)) "$trims"
