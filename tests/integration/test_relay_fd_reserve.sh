#!/usr/bin/env bash
# File-descriptor exhaustion: idle TCP connections to the public HTTP listener use up every
# descriptor the relay may open (its RLIMIT_NOFILE lowered with prlimit). The [internal]
# listener keeps answering /health and /metrics from descriptors it holds in reserve, the
# public listener sheds the connections it cannot take (503 and close) instead of leaving
# them hanging, and everything recovers once the idle connections are gone.
source "$(dirname "$0")/lib.sh"

INTERNAL_PORT="$(free_port)" || fail "no free port"
start_relay --internal-listen "127.0.0.1:$INTERNAL_PORT"
INTERNAL="http://127.0.0.1:$INTERNAL_PORT"
curl -sf "$INTERNAL/health" >/dev/null || fail "/health on [internal] before the flood"

open_fds() { find "/proc/$RELAY_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
LIMIT=$(($(open_fds) + 16))
prlimit --pid "$RELAY_PID" --nofile="$LIMIT:$LIMIT" || fail "cannot lower the relay's RLIMIT_NOFILE"
note "relay limited to $LIMIT descriptors; opening $((LIMIT + 16)) idle connections"

spawn idle "$HELPERS/idle_conns" "$PORT" $((LIMIT + 16))
IDLE_PID=$SPAWNED
wait_for has_line "$TMP/idle.out" "open $((LIMIT + 16))" || fail "the idle connections did not open"
relay_full() { (($(open_fds) >= LIMIT)); }
wait_for relay_full || fail "the relay never ran out of descriptors ($(open_fds) of $LIMIT)"
note "the relay holds $(open_fds) of $LIMIT descriptors"

note "[internal] still answers"
body="$(curl -s --max-time 5 "$INTERNAL/health")" || fail "/health on [internal] while exhausted"
[[ "$body" == "ok" ]] || fail "/health answered '$body'"
curl -s --max-time 5 "$INTERNAL/metrics" | grep -q '^moq_relay_sessions{transport="quic"} 0$' ||
    fail "/metrics on [internal] while exhausted"
# Several in a row: each reserved descriptor comes back when its connection closes.
for _ in 1 2 3 4 5 6; do
    curl -sf --max-time 5 "$INTERNAL/health" >/dev/null || fail "repeated /health while exhausted"
done
echo "ok - [internal] answered while the relay had no descriptor to spare"

note "the public listener sheds what it cannot take"
wait_for log_has "$RELAY_LOG" "out of file descriptors" || fail "no log line about the exhaustion"
closed_some() { grep -q '^closed ' "$TMP/idle.out"; }
wait_for closed_some || fail "no connection was shed"

note "recovery"
kill "$IDLE_PID"
wait "$IDLE_PID" 2>/dev/null || true
wait_for curl -sf --max-time 2 "http://127.0.0.1:$PORT/health" -o /dev/null ||
    fail "the public listener did not recover"
wait_for log_has "$RELAY_LOG" "accepting connections again" || fail "no recovery log line"
stop_relay
echo "PASS"
