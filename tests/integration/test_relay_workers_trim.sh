#!/usr/bin/env bash
# limits.memory_trim_quiet on a relay with two workers waits for the whole relay to be quiet:
# after a load fell, sessions that keep starting on either worker hold the trim back, and it
# comes once no session started anywhere for the quiet time. Every trim the relay logs comes
# at least that long after the last session start it logged, on whichever worker.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,relay=debug start_relay --server-workers 2 --limits-memory-trim-quiet 1s \
    --web-metrics --limits-half-open-per-address 1000
log_has "$RELAY_LOG" "2 workers" || fail "the relay did not start two workers"

metric() { # NAME: its value on /metrics
    curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
sessions_now() { metric 'moq_relay_sessions{transport="quic"}'; }
on_worker() { log_count "$RELAY_LOG" "session on worker $1"; }

note "a load on both workers comes and goes"
spawn bench "$MOQ" bench "$QUIC_URL" --tls-fingerprint "$FP" \
    --file "$MOQ_SOURCE_DIR/bench/presets/chat.toml" --connections 24 --startup 1s --report 1s --quiet
BENCH=$SPAWNED
all_up() { [[ "$(sessions_now)" == 24 ]]; }
wait_for all_up || fail "the 24 sessions did not come up ($(sessions_now))"
(($(on_worker 0) > 0 && $(on_worker 1) > 0)) || fail "the load did not reach both workers"
trims() { log_count "$RELAY_LOG" "freed memory returned"; }
trims_before=$(trims)
kill -TERM "$BENCH"
expect_ok "$BENCH" "moq bench (SIGTERM)"
all_gone() { [[ "$(sessions_now)" == 0 ]]; }
wait_for all_gone || fail "the sessions did not leave"
wait_for eval '(($(trims) > trims_before))' || fail "no trim after the load fell"

note "short sessions keep starting for a while, on either worker"
end=$((SECONDS + 5))
n=0
while ((SECONDS < end)); do
    n=$((n + 1))
    before=$(log_count "$RELAY_LOG" "session on worker")
    spawn "short-$n" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast none \
        --track t --log-level warn
    wait_for eval '(($(log_count "$RELAY_LOG" "session on worker") > before))' ||
        fail "short session $n did not start"
    kill -TERM "$SPAWNED"
    wait "$SPAWNED" 2>/dev/null || true
done
note "$n short sessions: $(on_worker 0) sessions on worker 0, $(on_worker 1) on worker 1 in all"

trims_after_churn=$(trims)
wait_for eval '(($(trims) > trims_after_churn))' || fail "no trim once the relay was quiet"

# Seconds of the day of a log line's timestamp (2026-12-06T20:35:04.337572Z).
early=$(awk '
    function t(ts) { split(substr(ts, 12, 15), p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
    /session on worker/ { last = t($1) }
    /freed memory returned/ && last != "" && t($1) - last < 0.95 {
        printf "%s trimmed %.3f s after a session started\n", $1, t($1) - last }
' "$RELAY_LOG")
[[ -z $early ]] || fail "a trim came while sessions were still starting: $early"
stop_relay
echo "ok"
