#!/usr/bin/env bash
# A token's expiry ends the session it authorized: subscribers connected with a token that
# expires a few seconds ahead (over raw QUIC lite-05, where ?jwt= rides the SETUP path, and
# over WebTransport, where it rides the CONNECT path) receive data until then; at the expiry
# the relay closes both sessions with code 6 (unauthorized) and the clients exit 1 naming
# the reason. A publisher and a subscriber whose token has no expiry stay up past it and
# keep delivering.
source "$(dirname "$0")/lib.sh"
TOKEN_TOOL="$MOQ_BUILD_DIR/moq-token"
"$TOKEN_TOOL" generate --out "$TMP/key.jwk" >/dev/null 2>&1 || fail "moq-token generate failed"
sign() { "$TOKEN_TOOL" sign --key "$TMP/key.jwk" --root room --publish "" --subscribe "" "$@"; }
FOREVER="$(sign)"

RELAY_KEY="$TMP/key.jwk" start_relay
at() { echo "${2:-$HTTP_URL}room?jwt=$1"; }
QUIC05=(--tls-fingerprint "$FP" --moq-version 05)

fifo_publisher pub "$(at "$FOREVER" "$QUIC_URL")" "${QUIC05[@]}" --broadcast cam --track t
spawn sub-forever "$MOQ" subscribe "$(at "$FOREVER")" --broadcast cam --track t
FOREVER_SUB=$SPAWNED

# Signed only now, so the sessions have most of the 3 s to come up and receive data.
EXPIRES=$(($(date +%s) + 3))
EXPIRING="$(sign --expires "$EXPIRES")"
spawn sub-quic "$MOQ" subscribe "$(at "$EXPIRING" "$QUIC_URL")" "${QUIC05[@]}" \
    --broadcast cam --track t
QUIC_SUB=$SPAWNED
spawn sub-wt "$MOQ" subscribe "$(at "$EXPIRING")" --broadcast cam --track t
WT_SUB=$SPAWNED

note "every session receives data before the expiry"
send before
for s in quic wt forever; do
    wait_for has_line "$TMP/sub-$s.out" before || fail "sub-$s received nothing"
done
(($(date +%s) < EXPIRES)) || fail "the sessions took until the expiry to receive data"
grep -q "over QUIC (moq-lite-05)" "$TMP/sub-quic.err" || fail "sub-quic did not use raw QUIC lite-05"
grep -q "over WebTransport" "$TMP/sub-wt.err" || fail "sub-wt did not use WebTransport"

note "the relay closes the expiring sessions with code 6 at the expiry"
for pid in "$QUIC_SUB" "$WT_SUB"; do
    rc=0
    wait_exit "$pid" 10 || rc=$?
    ((rc == 1)) || fail "a subscriber with an expiring token exited $rc, not 1"
done
for s in quic wt; do
    grep -q "ended: token expired, code 6" "$TMP/sub-$s.err" ||
        fail "sub-$s did not report the expiry: $(tail -1 "$TMP/sub-$s.err")"
done
closes="$(grep -F "closing session: token expired (code 6)" "$RELAY_LOG" || true)"
(($(grep -c . <<<"$closes") == 2)) || fail "want 2 expiry closes in the relay log, got: $closes"
while read -r stamp _; do
    at_s=$(date -d "$stamp" +%s)
    ((at_s >= EXPIRES)) || fail "a session was closed at $stamp, before the expiry ($EXPIRES)"
done <<<"$closes"
grep -Eq "moq-lite-05 session over QUIC$" "$RELAY_LOG" || fail "no raw QUIC session in the relay log"
grep -Eq "moq-lite-05 session over WebTransport at /room" "$RELAY_LOG" ||
    fail "no WebTransport session in the relay log"

note "the sessions without an expiry stay up past it"
kill -0 "$PUB_PID" 2>/dev/null || fail "the publisher's session ended"
kill -0 "$FOREVER_SUB" 2>/dev/null || fail "the subscriber without an expiry ended"
send after
wait_for has_line "$TMP/sub-forever.out" after || fail "no data after the expiry"
end_input
expect_ok "$PUB_PID" "the publisher"
expect_ok "$FOREVER_SUB" "the subscriber without an expiry"
[[ "$(cat "$TMP/sub-forever.out")" == $'before\nafter' ]] ||
    fail "the subscriber without an expiry got: $(cat "$TMP/sub-forever.out")"

stop_relay
echo "PASS"
