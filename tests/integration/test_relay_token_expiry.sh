#!/usr/bin/env bash
# A token's expiry ends the session it authorized: a subscriber whose token expires soon
# (over raw QUIC lite-05, where ?jwt= rides the SETUP path, and over WebTransport, where it
# rides the CONNECT path) receives data while its token is valid; once it has expired the
# relay closes the session with code 6 (unauthorized), never before, and the client exits 1
# naming the reason. A publisher and a subscriber whose token has no expiry stay up past it
# and keep delivering.
#
# Every step waits on state: the exact timing (closed at exp, not a microsecond earlier) is
# unit-tested on a virtual clock (test_session_timers). A subscriber that had not received
# data by the time its token ran out (a loaded machine) is tried again with a token that
# lives twice as long.
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
send before
wait_for has_line "$TMP/sub-forever.out" before || fail "sub-forever received nothing"

# The relay's "token expired" closes logged since line $1, each checked against exp $2.
closed_at_expiry() {
    local from="$1" expires="$2" closes stamp
    closes="$(tail -n +"$((from + 1))" "$RELAY_LOG" | grep -F "closing session: token expired (code 6)" || true)"
    [[ -n "$closes" ]] || fail "no expiry close in the relay log"
    while read -r stamp _; do
        (($(date -d "$stamp" +%s) >= expires)) ||
            fail "a session was closed at $stamp, before its token's expiry ($expires)"
    done <<<"$closes"
}

# expiring_subscriber NAME URL-BASE [subscribe args...]: a subscriber whose token expires
# LIFE seconds after signing must receive the cached "before" and then be closed for the
# expiry. LIFE starts at 2 s and doubles while the subscriber got nothing in time.
expiring_subscriber() {
    local name="$1" base="$2"
    shift 2
    local life=2 expires token pid rc from
    for _ in 1 2 3 4 5; do
        expires=$(($(date +%s) + life))
        token="$(sign --expires "$expires")"
        from=$(lines_of "$RELAY_LOG")
        spawn "$name" "$MOQ" subscribe "$(at "$token" "$base")" "$@" --broadcast cam --track t
        pid=$SPAWNED
        rc=0
        wait_exit "$pid" $((life + WAIT_SECONDS)) || rc=$?
        ((rc != 124)) || fail "$name is still running long after its token expired"
        if has_line "$TMP/$name.out" before; then
            ((rc == 1)) || fail "$name exited $rc after its token expired, not 1"
            grep -q "ended: token expired, code 6" "$TMP/$name.err" ||
                fail "$name did not report the expiry: $(tail -1 "$TMP/$name.err")"
            closed_at_expiry "$from" "$expires"
            return 0
        fi
        note "$name received nothing before its token ran out; again with a longer one"
        life=$((life * 2))
    done
    fail "$name never received data before its token expired"
}

note "subscribers receive data, then the relay closes them with code 6 once the token expires"
expiring_subscriber sub-quic "$QUIC_URL" "${QUIC05[@]}"
grep -q "over QUIC (moq-lite-05)" "$TMP/sub-quic.err" || fail "sub-quic did not use raw QUIC lite-05"
expiring_subscriber sub-wt "$HTTP_URL"
grep -q "over WebTransport" "$TMP/sub-wt.err" || fail "sub-wt did not use WebTransport"
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
