#!/usr/bin/env bash
# Fetching cached groups through the real relay: lite-05 FETCH with `moq fetch` (over raw
# QUIC and WebTransport; a missing group and an older version fail clearly), and HTTP
# /fetch/<broadcast>/<track> for the latest group and ?group=N, next to /announced.
source "$(dirname "$0")/lib.sh"
start_relay

# Three groups of two frames, then the publisher holds the track open until told to end.
# The track's max latency (the relay's cache window) outlasts the test however slowly it
# runs, so every fetch finds its group.
publish_groups() { # GO-FILE
    exec "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" --broadcast cam --track t \
        --group-frames 2 --max-latency 10m < <(
            printf 'a0\na1\nb0\nb1\nc0\nc1\n'
            for _ in $(seq 600); do
                [[ -e "$1" ]] && break
                sleep 0.05
            done
        )
}
# A subscriber keeps the track live in the relay while the fetches run.
spawn sub "$MOQ" subscribe "$HTTP_URL" --broadcast cam --track t
sub=$SPAWNED
spawn pub publish_groups "$TMP/go"
pub=$SPAWNED
wait_for at_least_lines "$TMP/sub.out" 6 || fail "the subscriber did not get the groups"

note "moq fetch (lite-05 FETCH)"
fetch() { # NAME URL-ARGS... -- FETCH-ARGS...
    local name="$1" rc=0
    shift
    "$MOQ" fetch "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
    echo "$rc"
}
[[ "$(fetch f-quic "$QUIC_URL" --tls-fingerprint "$FP" --broadcast cam --track t --group 1)" == 0 ]] ||
    fail "fetch of group 1 over QUIC failed"
[[ "$(cat "$TMP/f-quic.out")" == $'b0\nb1' ]] || fail "fetch of group 1 over QUIC returned: $(cat "$TMP/f-quic.out")"
[[ "$(fetch f-wt "$HTTP_URL" --broadcast cam --track t --group 0)" == 0 ]] ||
    fail "fetch of group 0 over WebTransport failed"
[[ "$(cat "$TMP/f-wt.out")" == $'a0\na1' ]] || fail "fetch of group 0 returned: $(cat "$TMP/f-wt.out")"
[[ "$(fetch f-len "$HTTP_URL" --broadcast cam --track t --group 2 --framing length)" == 0 ]] ||
    fail "fetch with length framing failed"
cmp -s <(lframe 2 <(printf c0) && lframe 2 <(printf c1)) "$TMP/f-len.out" || fail "length-framed fetch differs"

[[ "$(fetch f-missing "$HTTP_URL" --broadcast cam --track t --group 7)" == 1 ]] ||
    fail "fetching a group that does not exist did not fail with status 1"
log_has "$TMP/f-missing.err" "group 7 of cam/t is not available" ||
    fail "no clear message for a missing group: $(cat "$TMP/f-missing.err")"
[[ "$(fetch f-old "$HTTP_URL" --broadcast cam --track t --group 0 --moq-version 04)" == 1 ]] ||
    fail "fetch over moq-lite-04 did not fail"
log_has "$TMP/f-old.err" "fetch needs moq-lite-05" || fail "no clear message for fetch on lite-04"
[[ "$(fetch f-usage "$HTTP_URL" --broadcast cam --track t)" == 2 ]] ||
    fail "fetch without --group is not a usage error"

note "HTTP /fetch and /announced"
base="http://127.0.0.1:$PORT"
[[ "$(curl -sf "$base/fetch/cam/t")" == "c0c1" ]] || fail "HTTP latest: $(curl -s "$base/fetch/cam/t")"
[[ "$(curl -sf "$base/fetch/cam/t?group=0")" == "a0a1" ]] || fail "HTTP group 0: $(curl -s "$base/fetch/cam/t?group=0")"
[[ "$(curl -sf "$base/fetch/cam/t?group=latest")" == "c0c1" ]] || fail "HTTP group=latest"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/fetch/cam/t?group=9")" == 404 ]] ||
    fail "HTTP fetch of a missing group is not a 404"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/fetch/nobody/t")" == 404 ]] ||
    fail "HTTP fetch of an unknown broadcast is not a 404"
[[ "$(curl -sf "$base/announced/")" == "cam" ]] || fail "HTTP /announced/: $(curl -s "$base/announced/")"

touch "$TMP/go"
expect_ok "$pub" "publisher"
expect_ok "$sub" "subscriber"
[[ "$(tr '\n' ' ' <"$TMP/sub.out")" == "a0 a1 b0 b1 c0 c1 " ]] || fail "subscriber got: $(cat "$TMP/sub.out")"

stop_relay
echo "PASS"
