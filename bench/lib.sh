# Shared by the bench/ scripts: a relay on loopback and what is sampled from it. Source it
# after `cd` to the repository root; BUILD selects the build directory (default build/).
BUILD="${BUILD:-build}"
RELAY_BIN="$BUILD/moq-relay"
MOQ_BIN="$BUILD/moq"
[[ -x "$RELAY_BIN" && -x "$MOQ_BIN" ]] || { echo "build first: make build" >&2; exit 1; }
HZ=$(getconf CLK_TCK)
BENCH_PIDS=()
bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap bench_cleanup EXIT

bench_free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z "$(ss -Hlnu "sport = :$p")" && -z "$(ss -Hlnt "sport = :$p")" ]]; then
            echo "$p"
            return
        fi
    done
    return 1
}

# bench_start_relay [EXTRA FLAGS...]: sets PORT, RELAY_PID, FP (certificate fingerprint).
# Handshake-rate and per-address limits are off: every client comes from 127.0.0.1.
bench_start_relay() {
    PORT="$(bench_free_port)"
    "$RELAY_BIN" --server-bind "127.0.0.1:$PORT" --web-http-listen "127.0.0.1:$PORT" \
        --tls-generate localhost --auth-public "" --web-metrics --log-level "${RELAY_LOG_LEVEL:-warn}" \
        --limits-handshake-rate 0 --limits-half-open-per-address 0 "$@" 2>>"${RELAY_LOG:-/dev/null}" &
    RELAY_PID=$!
    BENCH_PIDS+=("$RELAY_PID")
    for _ in $(seq 200); do
        curl -sf --max-time 5 "http://127.0.0.1:$PORT/health" >/dev/null && break
        kill -0 "$RELAY_PID" 2>/dev/null || { echo "the relay did not start" >&2; exit 1; }
        sleep 0.05
    done
    FP="$(curl -sf --max-time 5 "http://127.0.0.1:$PORT/certificate.sha256")"
}

relay_rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$RELAY_PID/status"; }
relay_fds() { find "/proc/$RELAY_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
relay_cpu_s() { awk -v hz="$HZ" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$RELAY_PID/stat"; }
# relay_sessions [TRANSPORT]: open sessions (all transports when none is given).
relay_sessions() {
    curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" |
        awk -v t="${1:-}" '/^moq_relay_sessions\{transport=/ && (t == "" || index($0, "\"" t "\"")) { n += $2 } END { print n + 0 }'
}
# json_field FILE FIELD: FIELD of the last JSON line in FILE (a number or null).
json_field() {
    tail -n 1 "$1" | grep -o "\"$2\":[^,}]*" | cut -d: -f2
}
