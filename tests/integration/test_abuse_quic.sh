#!/usr/bin/env bash
# Abusive QUIC peers (helpers/quic_flood.c) are contained and cannot fill the disk, while
# the relay keeps serving a publisher/subscriber pair: forged Initials write a bounded number
# of log lines and one summary with their count.
source "$(dirname "$0")/lib.sh"
start_relay --log-repeat-interval 2s --log-repeat-burst 5
FLOOD="$HELPERS/quic_flood"

# A pair that lives through the abuse: it proves the relay still serves at the end.
seq 1 5 >"$TMP/steady.in"
steady_pair() {
    spawn steady-sub "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "steady$1" --track t
    local sub=$SPAWNED
    wait_for log_has "$RELAY_LOG" "session over" || fail "the subscriber did not connect"
    IN="$TMP/steady.in" spawn steady-pub "$MOQ" publish "$HTTP_URL" --broadcast "steady$1" --track t
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
((refused <= 15)) || fail "$refused refusal lines for one flood (burst 5 per 2 s)"
((refused + counted >= 1000)) || fail "only $((refused + counted)) refusals seen of 3000"
relay_alive || fail "the relay died"
steady_pair 1

stop_relay
