#!/usr/bin/env bash
# Malformed input from a raw QUIC peer (helpers/garbage_peer.c) is contained: the relay
# resets or stops the offending stream or closes that one session, and meanwhile keeps
# serving a publisher/subscriber pair on other connections. Cases: unknown bidi and uni
# stream types, an oversized, a truncated and a malformed control message, a GROUP for an
# unknown subscription, a malformed SETUP, thousands of streams holding incomplete control
# messages, and a frame over the size limit from a publisher the relay subscribed to.
source "$(dirname "$0")/lib.sh"
start_relay

PEER="$HELPERS/garbage_peer"

# A pair that lives through all of it: the publisher sends one group now, the rest later.
publish_held() { # GO-FILE
    exec "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" --broadcast steady --track t < <(
        printf 'before\n'
        for _ in $(seq 1200); do
            [[ -e "$1" ]] && break
            sleep 0.05
        done
        printf 'after\nend\n'
    )
}
spawn steady-sub "$MOQ" subscribe "$HTTP_URL" --broadcast steady --track t
steady_sub=$SPAWNED
spawn steady-pub publish_held "$TMP/go"
steady_pub=$SPAWNED
wait_for grep -qx before "$TMP/steady-sub.out" || fail "the steady pair did not start"

run_case() { # NAME VERSION EXPECTED-REGEX
    local name="$1" v="$2" want="$3" rc=0
    "$PEER" --url "$QUIC_URL" --fingerprint "$FP" --version "$v" --case "$name" \
        >"$TMP/case-$name-$v.out" 2>&1 || rc=$?
    local got
    got="$(grep -E '^(not )?contained' "$TMP/case-$name-$v.out" || true)"
    ((rc == 0)) || fail "$name (lite-$v): $(cat "$TMP/case-$name-$v.out")"
    [[ "$got" =~ $want ]] || fail "$name (lite-$v): expected /$want/, got: $got"
    relay_alive || fail "the relay died on $name (lite-$v)"
    echo "$name lite-$v: $got"
}

note "malformed streams"
for v in 05 04 03; do
    run_case bad-bidi-type "$v" 'stream (reset|stopped) \(code 10\)'
    run_case bad-uni-type "$v" 'stream (reset|stopped) \(code 10\)'
    run_case oversized-control "$v" 'stream (reset|stopped) \(code 11\)'
    run_case truncated-control "$v" 'stream (reset|stopped) \(code 5\)'
    run_case malformed-control "$v" 'stream (reset|stopped) \(code 5\)'
    run_case unknown-group "$v" 'stream stopped'
done
run_case bad-setup 05 'session closed \(code 5'
run_case partial-flood 05 'session closed \(code 11'
run_case partial-flood 03 'session closed \(code 11'

note "a frame over the limit from a publisher"
for v in 04 03; do
    spawn "victim-$v" "$MOQ" subscribe "$HTTP_URL" --broadcast "huge-$v" --track t
    victim=$SPAWNED
    "$PEER" --url "$QUIC_URL" --fingerprint "$FP" --version "$v" --case frame-too-large \
        --broadcast "huge-$v" >"$TMP/case-huge-$v.out" 2>&1 || fail "frame-too-large: $(cat "$TMP/case-huge-$v.out")"
    grep -q 'contained: stream stopped (code 27)' "$TMP/case-huge-$v.out" ||
        fail "frame-too-large (lite-$v): $(cat "$TMP/case-huge-$v.out")"
    echo "frame-too-large lite-$v: $(grep contained "$TMP/case-huge-$v.out")"
    kill -TERM "$victim"
    expect_ok "$victim" "the subscriber of the oversized frame"
    [[ ! -s "$TMP/victim-$v.out" ]] || fail "a frame of the aborted group was delivered"
done

note "the relay still serves"
touch "$TMP/go"
expect_ok "$steady_pub" "the steady publisher"
expect_ok "$steady_sub" "the steady subscriber"
[[ "$(tr '\n' ' ' <"$TMP/steady-sub.out")" == "before after end " ]] ||
    fail "the steady subscriber got: $(cat "$TMP/steady-sub.out")"
seq 1 20 >"$TMP/fresh.in"
spawn fresh-sub "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast fresh --track t
fresh_sub=$SPAWNED
IN="$TMP/fresh.in" spawn fresh-pub "$MOQ" publish "$HTTP_URL" --broadcast fresh --track t
expect_ok "$SPAWNED" "a new publisher"
expect_ok "$fresh_sub" "a new subscriber"
cmp -s "$TMP/fresh.in" "$TMP/fresh-sub.out" || fail "a new pair after the garbage lost data"

stop_relay
echo "PASS"
