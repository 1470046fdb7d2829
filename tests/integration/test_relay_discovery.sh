#!/usr/bin/env bash
# Discovery through the real relay: `moq announced` watchers (per version, by prefix and
# unfiltered) see broadcasts appear and go; a publisher that exits (SIGTERM) unannounces
# at once; one that is killed disappears once the relay notices (its WebSocket connection
# closes with the process) and its linger time passed; the HTTP /announced listing agrees.
# No session here depends on a QUIC timer firing in time (a starved client on a loaded
# machine would be closed for idleness): the QUIC timeouts stay at their defaults.
source "$(dirname "$0")/lib.sh"
start_relay --cluster-linger 1s

VERSIONS=(05 04 03)
declare -A ANN
for v in "${VERSIONS[@]}"; do
    spawn "ann-$v" "$MOQ" announced "$HTTP_URL" --prefix disc --moq-version "$v"
    ANN[$v]=$SPAWNED
done
spawn ann-all "$MOQ" announced "$QUIC_URL" --tls-fingerprint "$FP"
ANN[all]=$SPAWNED

# Nothing subscribes and the input never ends: the publishers live until signalled.
idle_input IN
spawn pub-one "$MOQ" publish "$HTTP_URL" --broadcast disc/one --track t --moq-version 05
pub_one=$SPAWNED
seen_all() { # LINE
    local w
    for w in "${!ANN[@]}"; do
        [[ $w == all ]] && continue
        grep -qx -- "$1" "$TMP/ann-$w.out" || return 1
    done
    grep -qx -- "$1" "$TMP/ann-all.out"
}
wait_for seen_all "+disc/one" || fail "the watchers did not see disc/one"

spawn pub-two "$MOQ" publish "ws://127.0.0.1:$PORT/" --broadcast disc/two --track t \
    --moq-version 04
pub_two=$SPAWNED
wait_for seen_all "+disc/two" || fail "the watchers did not see disc/two"

spawn pub-other "$MOQ" publish "$HTTP_URL" --broadcast other/x --track t --moq-version 03
pub_other=$SPAWNED
wait_for grep -qx "+other/x" "$TMP/ann-all.out" || fail "the unfiltered watcher missed other/x"

[[ "$(curl -sf "http://127.0.0.1:$PORT/announced/")" == $'disc/one\ndisc/two\nother/x' ]] ||
    fail "HTTP /announced/ lists: $(curl -s "http://127.0.0.1:$PORT/announced/")"

note "a publisher that exits unannounces"
kill -TERM "$pub_one"
expect_ok "$pub_one" "publisher disc/one (SIGTERM)"
wait_for seen_all "-disc/one" || fail "the watchers did not see disc/one end"
[[ "$(curl -sf "http://127.0.0.1:$PORT/announced/disc")" == "two" ]] ||
    fail "HTTP /announced/disc lists: $(curl -s "http://127.0.0.1:$PORT/announced/disc")"

note "a publisher that is killed goes after the linger time"
kill -KILL "$pub_two"
wait "$pub_two" 2>/dev/null || true
wait_for seen_all "-disc/two" || fail "the watchers did not see disc/two end"

kill -TERM "$pub_other"
expect_ok "$pub_other" "publisher other/x"
wait_for grep -qx -- "-other/x" "$TMP/ann-all.out" || fail "other/x did not end"

for w in "${!ANN[@]}"; do
    kill -TERM "${ANN[$w]}"
    expect_ok "${ANN[$w]}" "watcher $w"
done
expected=$'+disc/one\n+disc/two\n-disc/one\n-disc/two'
for v in "${VERSIONS[@]}"; do
    [[ "$(cat "$TMP/ann-$v.out")" == "$expected" ]] ||
        fail "watcher $v printed: $(tr '\n' ' ' <"$TMP/ann-$v.out")"
done
[[ "$(cat "$TMP/ann-all.out")" == $'+disc/one\n+disc/two\n+other/x\n-disc/one\n-disc/two\n-other/x' ]] ||
    fail "the unfiltered watcher printed: $(tr '\n' ' ' <"$TMP/ann-all.out")"
[[ -z "$(curl -sf "http://127.0.0.1:$PORT/announced/")" ]] || fail "broadcasts left over"

stop_relay
echo "PASS"
