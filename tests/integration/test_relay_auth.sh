#!/usr/bin/env bash
# The URL's path and ?jwt= reach the relay on every transport and version that carries
# them: WebTransport (CONNECT :path) and raw QUIC lite-05 (SETUP Path). A token scoped to
# /room lets a publisher and a subscriber meet there; no token, or a path outside the
# token's root, is refused (exit 1, "not authorized"). lite-03/04 on raw QUIC carry no path,
# so they reach only the root, where this relay grants nothing. Inside the root, what the
# grant does not allow is refused, not ignored: `moq publish` outside the publish grant (or
# with a subscribe-only token) exits 1 with "not allowed to publish <path>" while its input
# is still open, `moq subscribe`/`moq announced` outside the subscribe grant exit 1 with "not
# allowed to subscribe", and the relay logs each refusal at info with the path and grant.
source "$(dirname "$0")/lib.sh"
TOKEN_TOOL="$MOQ_BUILD_DIR/moq-token"
"$TOKEN_TOOL" generate --out "$TMP/key.jwk" >/dev/null 2>&1 || fail "moq-token generate failed"
TOKEN="$("$TOKEN_TOOL" sign --key "$TMP/key.jwk" --root room --publish "" --subscribe "")"

# Token access only: no anonymous client gets anything.
RELAY_KEY="$TMP/key.jwk" start_relay

printf 'one\ntwo\n' >"$TMP/in"
pair() { # NAME URL [args...]
    local name="$1" url="$2"
    shift 2
    spawn "sub-$name" "$MOQ" subscribe "$url" --broadcast cam --track t "$@"
    local sub=$SPAWNED
    IN="$TMP/in" spawn "pub-$name" "$MOQ" publish "$url" --broadcast cam --track t "$@"
    expect_ok "$SPAWNED" "$name publisher"
    expect_ok "$sub" "$name subscriber"
    cmp -s "$TMP/in" "$TMP/sub-$name.out" || fail "$name: subscriber got $(cat "$TMP/sub-$name.out")"
}
note "a token in the URL"
pair wt "http://127.0.0.1:$PORT/room?jwt=$TOKEN"
pair quic05 "moql://127.0.0.1:$PORT/room?jwt=$TOKEN" --tls-fingerprint "$FP" --moq-version 05
grep -q "root=/room" "$RELAY_LOG" || fail "the relay did not scope the sessions to /room"

note "refusals"
refused() { # NAME URL [args...]
    local name="$1" rc=0
    shift
    "$MOQ" subscribe "$@" --broadcast cam --track t >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
    ((rc == 1)) || fail "$name: exited $rc, not 1"
    grep -q "not authorized" "$TMP/$name.err" || fail "$name: $(cat "$TMP/$name.err")"
}
refused no-token "http://127.0.0.1:$PORT/room"
refused other-room "http://127.0.0.1:$PORT/elsewhere?jwt=$TOKEN"
refused quic-no-token "moql://127.0.0.1:$PORT/room" --tls-fingerprint "$FP"
refused quic04 "moql://127.0.0.1:$PORT/room?jwt=$TOKEN" --tls-fingerprint "$FP" --moq-version 04

note "what the grant does not allow is refused"
VIEWER="$("$TOKEN_TOOL" sign --key "$TMP/key.jwk" --root room --subscribe "")"
ALICE="$("$TOKEN_TOOL" sign --key "$TMP/key.jwk" --root room --publish alice --subscribe alice)"
idle_input OPEN
not_allowed() { # NAME MESSAGE CMD... (stdin stays open: only the refusal may end it)
    local name="$1" msg="$2" rc=0
    shift 2
    IN="$OPEN" spawn "$name" "$@"
    wait_exit "$SPAWNED" || rc=$?
    ((rc == 1)) || fail "$name: exited $rc, not 1"
    grep -qx "moq [a-z ]*: $msg" "$TMP/$name.err" || fail "$name: $(tail -3 "$TMP/$name.err")"
}
for v in 05 04 03; do
    not_allowed "viewer-publish-$v" "not allowed to publish view" \
        "$MOQ" publish "http://127.0.0.1:$PORT/room?jwt=$VIEWER" --broadcast view --track t --moq-version "$v"
    not_allowed "alice-publish-bob-$v" "not allowed to publish bob/cam" \
        "$MOQ" publish "http://127.0.0.1:$PORT/room?jwt=$ALICE" --broadcast bob/cam --track t --moq-version "$v"
done
not_allowed viewer-publish-quic05 "not allowed to publish view" "$MOQ" publish \
    "moql://127.0.0.1:$PORT/room?jwt=$VIEWER" --tls-fingerprint "$FP" --moq-version 05 --broadcast view --track t
not_allowed viewer-clock "not allowed to publish clock" \
    "$MOQ" clock publish "http://127.0.0.1:$PORT/room?jwt=$VIEWER" --broadcast clock
not_allowed alice-subscribe-bob "not allowed to subscribe to bob/cam" \
    "$MOQ" subscribe "http://127.0.0.1:$PORT/room?jwt=$ALICE" --broadcast bob/cam --track t
not_allowed alice-announced-bob "not allowed to subscribe under /bob" \
    "$MOQ" announced "http://127.0.0.1:$PORT/room?jwt=$ALICE" --prefix bob
grep -q 'refused: the peer may not publish /room/view (root /room, publish=\[\])' "$RELAY_LOG" ||
    fail "the relay did not log the refused publish with its grant"
grep -q 'refused: the peer may not publish /room/bob/cam (root /room, publish=\["alice"\])' "$RELAY_LOG" ||
    fail "the relay did not log the publish outside the grant"
grep -q 'refused: the peer may not see announcements under /room/bob/cam (root /room, subscribe=\["alice"\])' \
    "$RELAY_LOG" || fail "the relay did not log the refused subscription"
grep -q "INFO moq: .*refused" "$RELAY_LOG" || fail "refusals are not logged at info"
! grep -q "announced /room/\(bob\|view\|clock\)" "$RELAY_LOG" || fail "a refused broadcast was announced"

note "inside the grant nothing changes"
spawn sub-alice "$MOQ" subscribe "http://127.0.0.1:$PORT/room?jwt=$ALICE" --broadcast alice/cam --track t
sub=$SPAWNED
IN="$TMP/in" spawn pub-alice "$MOQ" publish "http://127.0.0.1:$PORT/room?jwt=$ALICE" --broadcast alice/cam --track t
expect_ok "$SPAWNED" "the publisher inside its grant"
expect_ok "$sub" "the subscriber inside its grant"
cmp -s "$TMP/in" "$TMP/sub-alice.out" || fail "alice: subscriber got $(cat "$TMP/sub-alice.out")"

stop_relay
echo "PASS"
