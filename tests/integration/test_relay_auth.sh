#!/usr/bin/env bash
# The URL's path and ?jwt= reach the relay on every transport and version that carries
# them: WebTransport (CONNECT :path) and raw QUIC lite-05 (SETUP Path). A token scoped to
# /room lets a publisher and a subscriber meet there; no token, or a path outside the
# token's root, is refused (exit 1, "not authorized"). lite-03/04 on raw QUIC carry no path,
# so they reach only the root, where this relay grants nothing.
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

stop_relay
echo "PASS"
