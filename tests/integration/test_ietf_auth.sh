#!/usr/bin/env bash
# IETF moq-transport sessions under token auth and in a cluster, with the native `moq` tool
# over raw QUIC (the URL's path and ?jwt= ride the SETUP's PATH option):
#  1. ?jwt= authorizes a publisher (draft 17) and a subscriber (draft 15) at the token's
#     root; the broadcast paths are relative to it, and moq-lite subscribers outside the
#     root see the broadcast under it;
#  2. no token (or a bad one) outside the public prefix: the session is refused;
#  3. path scoping: a publisher may only publish, a subscriber only subscribe, under the
#     token's prefixes (refused with the reason, others unaffected);
#  4. token expiry: a subscriber (draft 20) receives data while its token is valid and the
#     relay closes its session once the token has expired (never before).
# Clustering with IETF clients: test_ietf_cluster.sh.
source "$(dirname "$0")/lib.sh"
TOKEN_TOOL="$MOQ_BUILD_DIR/moq-token"
"$TOKEN_TOOL" generate --out "$TMP/key.jwk" >/dev/null 2>&1 || fail "moq-token generate failed"
sign() { "$TOKEN_TOOL" sign --key "$TMP/key.jwk" --root room "$@"; }

RELAY_KEY="$TMP/key.jwk" start_relay
MOQT="moqt://127.0.0.1:$PORT/"
at() { echo "${MOQT}room?jwt=$1"; }
ietf() { echo --tls-fingerprint "$FP" --moq-version "moq-transport-$1"; }

# 1. ?jwt= at the token's root ------------------------------------------------------------------
note "?jwt= authorizes IETF sessions at the token's root"
ALL="$(sign --publish "" --subscribe "")"
# shellcheck disable=SC2046
fifo_publisher pub "$(at "$ALL")" $(ietf 17) --broadcast cam --track t
CAM_FIFO=$PUB_FIFO CAM_HOLDER=$HOLDER
# shellcheck disable=SC2046
spawn sub15 "$MOQ" subscribe "$(at "$ALL")" $(ietf 15) --broadcast cam --track t
SUB15=$SPAWNED
# a moq-lite subscriber with a token for the whole relay sees the broadcast under the root
"$TOKEN_TOOL" sign --key "$TMP/key.jwk" --root "" --subscribe "" >"$TMP/whole.jwt"
spawn sublite "$MOQ" subscribe "${HTTP_URL}?jwt=$(cat "$TMP/whole.jwt")" --broadcast room/cam --track t
SUBLITE=$SPAWNED
send one
wait_for has_line "$TMP/sub15.out" one || fail "the draft-15 subscriber received nothing"
wait_for has_line "$TMP/sublite.out" one || fail "the moq-lite subscriber received nothing"
log_has "$RELAY_LOG" "session accepted (moq-transport-17) root=/room" ||
    fail "the draft-17 publisher was not rooted at /room"
log_has "$RELAY_LOG" "session accepted (moq-transport-15) root=/room" ||
    fail "the draft-15 subscriber was not rooted at /room"
log_has "$RELAY_LOG" "$ALL" && fail "the relay logged a token"

# 2. no token / a bad token ---------------------------------------------------------------------
note "no token, or a token signed by another key, is refused"
"$TOKEN_TOOL" generate --out "$TMP/other.jwk" >/dev/null 2>&1
FORGED="$("$TOKEN_TOOL" sign --key "$TMP/other.jwk" --root room --publish "" --subscribe "")"
for who in "notoken:${MOQT}room" "forged:$(at "$FORGED")"; do
    name=${who%%:*}
    # shellcheck disable=SC2046
    spawn "$name" "$MOQ" subscribe "${who#*:}" $(ietf 18) --broadcast cam --track t
    rc=0
    wait_exit "$SPAWNED" || rc=$?
    ((rc != 0 && rc != 124)) || fail "$name: the subscriber was not refused (status $rc)"
    has_line "$TMP/$name.out" one && fail "$name: a refused subscriber received data"
done
log_has "$RELAY_LOG" "$FORGED" && fail "the relay logged the forged token"
(($(log_count "$RELAY_LOG" "session accepted (moq-transport-18)") == 0)) ||
    fail "a session without a valid token was accepted"

# 3. path scoping -------------------------------------------------------------------------------
note "a token's publish and subscribe prefixes scope IETF sessions"
SCOPED="$(sign --publish cams --subscribe cams)"
idle_input IDLE
for d in 14 16 18; do
    # shellcheck disable=SC2046
    IN="$IDLE" spawn "rogue$d" "$MOQ" publish "$(at "$SCOPED")" $(ietf $d) --broadcast mics/m --track t
    rc=0
    wait_exit "$SPAWNED" || rc=$?
    ((rc == 1)) || fail "draft $d: publishing outside the token's prefix was not refused (status $rc)"
    log_has "$TMP/rogue$d.err" "not allowed to publish mics/m" ||
        fail "draft $d: the refused publisher was not told why: $(tail -n 2 "$TMP/rogue$d.err")"
done
# shellcheck disable=SC2046
fifo_publisher scoped "$(at "$SCOPED")" $(ietf 16) --broadcast cams/a --track t
# shellcheck disable=SC2046
spawn scoped-sub "$MOQ" subscribe "$(at "$SCOPED")" $(ietf 19) --broadcast cams/a --track t
SCOPED_SUB=$SPAWNED
# shellcheck disable=SC2046
spawn outside "$MOQ" subscribe "$(at "$SCOPED")" $(ietf 19) --broadcast cam --track t
rc=0
wait_exit "$SPAWNED" || rc=$?
((rc != 0 && rc != 124)) || fail "subscribing outside the token's prefix was not refused (status $rc)"
has_line "$TMP/outside.out" one && fail "a subscriber outside its prefix received data"
send scoped-one
wait_for has_line "$TMP/scoped-sub.out" scoped-one || fail "the scoped subscriber received nothing"
PUB_FIFO=$CAM_FIFO HOLDER=$CAM_HOLDER
for pid in $SUB15 $SUBLITE $SCOPED_SUB; do
    kill -0 "$pid" 2>/dev/null || fail "a session with a valid token ended after a refusal"
done

# 4. token expiry ---------------------------------------------------------------------------------
note "a token's expiry closes the IETF session it authorized"
life=2
for attempt in 1 2 3 4 5; do
    expires=$(($(date +%s) + life))
    token="$(sign --publish "" --subscribe "" --expires "$expires")"
    from=$(lines_of "$RELAY_LOG")
    # shellcheck disable=SC2046
    spawn "expiring$attempt" "$MOQ" subscribe "$(at "$token")" $(ietf 20) --broadcast cam --track t
    pid=$SPAWNED
    got() { has_line "$TMP/expiring$attempt.out" "$1"; }
    send "still-$attempt"
    rc=0
    wait_exit "$pid" $((life + WAIT_SECONDS)) || rc=$?
    ((rc != 124)) || fail "the draft-20 subscriber is still running long after its token expired"
    if got "still-$attempt"; then
        ((rc == 1)) || fail "the expired subscriber exited $rc, not 1"
        closes="$(tail -n +"$((from + 1))" "$RELAY_LOG" | grep -F "closing session: token expired" || true)"
        [[ -n "$closes" ]] || fail "no 'token expired' close in the relay log"
        while read -r stamp _; do
            (($(date -d "$stamp" +%s) >= expires)) ||
                fail "the session was closed at $stamp, before its token's expiry ($expires)"
        done <<<"$closes"
        grep -q "token expired" "$TMP/expiring$attempt.err" ||
            fail "the subscriber did not report the expiry: $(tail -1 "$TMP/expiring$attempt.err")"
        break
    fi
    ((attempt < 5)) || fail "the expiring subscriber never received data before its token expired"
    note "it received nothing before its token ran out; again with a longer one"
    life=$((life * 2))
done
send after
wait_for has_line "$TMP/sub15.out" after || fail "the subscriber without an expiry stopped receiving"
end_input
expect_ok "$SUB15" "draft-15 subscriber"
stop_relay
echo "PASS"
