#!/usr/bin/env bash
# Memory of idle sessions: the relay's RSS before and after N raw-QUIC subscribers connect
# and wait (for a broadcast that never comes). Usage: bench/sessions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
BUILD="${BUILD:-build}"
port=$((20000 + RANDOM % 40000))
"$BUILD/moq-relay" --server-bind "127.0.0.1:$port" --web-http-listen "127.0.0.1:$port" \
    --tls-generate localhost --auth-public "" --web-metrics --log-level warn &
relay=$!
trap 'pkill -f "moql://127.0.0.1:$port/" 2>/dev/null || true; kill "$relay" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
fp=$(curl -sf "http://127.0.0.1:$port/certificate.sha256")
before=$(awk '/VmRSS/ { print $2 }' "/proc/$relay/status")
for _ in $(seq "$N"); do
    "$BUILD/moq" subscribe "moql://127.0.0.1:$port/" --tls-fingerprint "$fp" --broadcast none \
        --track t --log-level error >/dev/null 2>&1 &
done
for _ in $(seq 200); do
    live=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^moq_relay_sessions\{transport="quic"\}/ { print $2 }')
    [[ "$live" == "$N" ]] && break
    sleep 0.1
done
after=$(awk '/VmRSS/ { print $2 }' "/proc/$relay/status")
printf "idle relay RSS %d kB; with %d idle QUIC sessions %d kB; %.0f kB per session\n" \
    "$before" "$live" "$after" "$(awk -v a="$after" -v b="$before" -v n="$N" 'BEGIN { print (a - b) / n }')"
