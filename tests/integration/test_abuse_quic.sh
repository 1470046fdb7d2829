#!/usr/bin/env bash
# Abusive QUIC peers (helpers/quic_flood.c) are contained, and the relay keeps serving a
# publisher/subscriber pair after each case:
# - forged Initials write a bounded number of log lines and one summary with their count;
# - a peer announcing more broadcasts than one session may is closed (BoundsExceeded);
# - above limits.handshake_rate, Initials are answered with Retry: forged ones leave no
#   state behind, real clients validate their address and connect;
# - handshakes that never finish are capped per source address (CONNECTION_REFUSED with a
#   reason), while another address still connects;
# - at limits.max_sessions, QUIC, WebTransport and WebSocket clients are refused with a
#   reason (CONNECTION_CLOSE, HTTP 503), and served again once a session leaves.
source "$(dirname "$0")/lib.sh"
# Without Retry or a per-address cap, every forged Initial reaches the handshake.
start_relay --log-repeat-interval 2s --log-repeat-burst 5 --web-metrics --limits-handshake-rate 0 \
    --limits-half-open-per-address 100000
FLOOD="$HELPERS/quic_flood"

metric() { # NAME: its value on /metrics
    curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
metric_at_least() { # NAME VALUE
    local v
    v="$(metric "$1")"
    [[ -n "$v" ]] && ((v >= $2))
}

# A pair that lives through the abuse: it proves the relay still serves at the end.
seq 1 5 >"$TMP/steady.in"
steady_pair() {
    spawn steady-sub "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "steady$1" --track t
    local sub=$SPAWNED
    wait_for log_has "$TMP/steady-sub.err" "client: connected" || fail "the subscriber did not connect"
    IN="$TMP/steady.in" spawn steady-pub "$MOQ" publish "${PUB_URL:-$HTTP_URL}" --tls-fingerprint "$FP" \
        --broadcast "steady$1" --track t
    expect_ok "$SPAWNED" "the steady publisher ($1)"
    expect_ok "$sub" "the steady subscriber ($1)"
    [[ "$(tr '\n' ' ' <"$TMP/steady-sub.out")" == "1 2 3 4 5 " ]] ||
        fail "the steady subscriber ($1) got: $(cat "$TMP/steady-sub.out")"
}

note "forged Initials: a bounded number of log lines"
"$FLOOD" garbage 127.0.0.1 "$PORT" 3000 >"$TMP/garbage.out" || fail "the flood did not run"
summarised() { grep -qE 'refused QUIC connections: [0-9]+ more in the last [0-9]+s' "$RELAY_LOG"; }
wait_for summarised || fail "no summary of the refused Initials"
refused="$(log_count "$RELAY_LOG" "quic: refused 127.0.0.1")"
counted="$(grep -oE 'refused QUIC connections: [0-9]+' "$RELAY_LOG" | awk '{s += $4} END {print s + 0}')"
echo "3000 forged Initials: $refused lines written, $counted counted in summaries"
((refused <= 20)) || fail "$refused refusal lines for one flood (burst 5 per 2 s)"
((refused + counted >= 200)) || fail "only $((refused + counted)) refusals seen of 3000"
relay_alive || fail "the relay died"
steady_pair 1

note "an announcement flood closes only its own session"
for v in 04 03; do
    "$HELPERS/garbage_peer" --url "$QUIC_URL" --fingerprint "$FP" --version "$v" --case announce-flood \
        --broadcast "flood$v" >"$TMP/flood-$v.out" 2>&1 || fail "announce-flood (lite-$v): $(cat "$TMP/flood-$v.out")"
    grep -q 'contained: session closed (code 11' "$TMP/flood-$v.out" ||
        fail "announce-flood (lite-$v): $(cat "$TMP/flood-$v.out")"
    echo "announce-flood lite-$v: $(grep contained "$TMP/flood-$v.out")"
done
steady_pair flood
stop_relay

note "above the handshake rate: Retry"
start_relay --limits-handshake-rate 1 --web-metrics
"$FLOOD" garbage 127.0.0.1 "$PORT" 300 >"$TMP/garbage.out" || fail "the flood did not run"
wait_for metric_at_least moq_relay_quic_retries_total 100 ||
    fail "forged Initials were not answered with Retry ($(metric moq_relay_quic_retries_total))"
(($(metric moq_relay_quic_half_open) <= 1)) || fail "forged Initials left handshakes behind"
(($(log_count "$RELAY_LOG" "quic: refused") <= 1)) || fail "forged Initials were logged"
retries="$(metric moq_relay_quic_retries_total)"
# Forged Initials keep the handshake budget spent while the pair connects. Whether a client's
# Initial finds it spent depends on how the flooder is scheduled (on a loaded machine it may
# not run for over a second, and the budget refills), so the pair connects again until both
# of its clients were asked to validate their address; every attempt must deliver.
(while "$FLOOD" garbage 127.0.0.1 "$PORT" 10 >/dev/null; do sleep 0.1; done) &
FLOODER=$!
PIDS+=("$FLOODER")
validated() { # the steady client WHO was asked to validate its address
    log_has "$TMP/steady-$1.err" "asks us to validate our address"
}
for attempt in 1 2 3 4 5; do
    MOQ_LOG=info,quic=debug steady_pair "2-$attempt"
    validated sub && validated pub && break
done
kill "$FLOODER"
wait "$FLOODER" 2>/dev/null || true
for who in sub pub; do
    validated "$who" || fail "the steady $who was not asked to validate its address ($attempt attempts)"
done
echo "ok - 300 forged Initials: $retries Retries, no state; real clients validated and connected"
stop_relay

note "handshakes in progress, per address"
RELAY_HOST="[::]" start_relay --limits-half-open-per-address 20 --web-metrics
spawn half-open "$FLOOD" half-open 127.0.0.1 "$PORT" 50
HALF_OPEN=$SPAWNED
wait_for has_line "$TMP/half-open.out" "started 50" || fail "the half-open flood did not start"
wait_for metric_at_least moq_relay_quic_refused_half_open_total 30 ||
    fail "handshakes beyond the limit were not refused ($(metric moq_relay_quic_refused_half_open_total))"
(($(metric moq_relay_quic_half_open) == 20)) || fail "$(metric moq_relay_quic_half_open) half-open, limit 20"
rc=0
"$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast x --track t >/dev/null \
    2>"$TMP/refused.err" || rc=$?
((rc != 0)) && grep -q "too many handshakes from this address" "$TMP/refused.err" ||
    fail "a client from the flooding address was not told why: $(cat "$TMP/refused.err")"
QUIC_URL="moql://[::1]:$PORT/" PUB_URL="https://[::1]:$PORT/" steady_pair 3
kill "$HALF_OPEN"
echo "ok - 20 handshakes held from 127.0.0.1, 30 refused with a reason; ::1 served"
stop_relay

note "the session limit"
start_relay --limits-max-sessions 2 --web-metrics
idle_input HOLD
IN="$HOLD" spawn holder1 "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" --broadcast h1 --track t
holder1=$SPAWNED
IN="$HOLD" spawn holder2 "$MOQ" publish "ws://127.0.0.1:$PORT/" --broadcast h2 --track t
holder2=$SPAWNED
wait_for log_has "$RELAY_LOG" "announced /h1" || fail "the first session did not start"
wait_for log_has "$RELAY_LOG" "announced /h2" || fail "the second session did not start"
refused_with() { # URL EXPECTED [ARGS...]
    local url="$1" want="$2" rc=0
    shift 2
    "$MOQ" subscribe "$url" "$@" --broadcast x --track t >/dev/null 2>"$TMP/full.err" || rc=$?
    ((rc != 0)) || fail "$url was served beyond the session limit"
    grep -q -- "$want" "$TMP/full.err" || fail "$url refused without a reason: $(cat "$TMP/full.err")"
    echo "$url: $(grep -m1 -o -- "$want.*" "$TMP/full.err")"
}
refused_with "$QUIC_URL" "server busy" --tls-fingerprint "$FP"
refused_with "$HTTP_URL" "status 503"
refused_with "ws://127.0.0.1:$PORT/" "status 503"
kill -TERM "$holder1" "$holder2"
wait_exit "$holder1" || true
wait_exit "$holder2" || true
no_sessions() {
    [[ "$(metric 'moq_relay_sessions{transport="quic"}')" == 0 &&
        "$(metric 'moq_relay_sessions{transport="websocket"}')" == 0 ]]
}
wait_for no_sessions || fail "the holding sessions did not leave"
steady_pair 4
echo "ok - refused at 2 sessions with a reason; served again once they left"
stop_relay
