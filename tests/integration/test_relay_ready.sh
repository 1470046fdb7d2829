#!/usr/bin/env bash
# The `moq` tool's ready events (--ready-file, docs/client.md), per moq-lite version: every
# line appears once the relay did what it says, and not before.
#  - `moq announced`: "watching P" - lite-05 with ANNOUNCE_OK, even while nothing is
#    announced; lite-03/04 acknowledge nothing, so with the first announcement;
#  - `moq publish`: "announced B" once the relay asked for announcements, "requested B/T"
#    only once a subscriber made the relay subscribe to the track;
#  - `moq subscribe`: "subscribed B/T" - lite-03/04 with SUBSCRIBE_OK, when the relay has
#    attached the subscription (before any frame exists); lite-05 says nothing before the
#    first group, so with the first group.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,moq=debug start_relay

for v in 05 04 03; do
    note "moq-lite-$v"
    b="ready$v/b"
    spawn "ann-$v" "$MOQ" announced "$HTTP_URL" --prefix "ready$v" --moq-version "$v" \
        --ready-file "$(ready_file "ann-$v")"
    ANN=$SPAWNED
    if [[ $v == 05 ]]; then
        wait_ready "ann-$v" "watching ready$v"
    fi
    fifo_publisher "pub-$v" "$HTTP_URL" --broadcast "$b" --track t --moq-version "$v" \
        --ready-file "$(ready_file "pub-$v")"
    wait_ready "pub-$v" "announced $b"
    wait_for has_line "$TMP/ann-$v.out" "+$b" || fail "the watcher did not see $b"
    wait_ready "ann-$v" "watching ready$v"
    (($(ready_count "ann-$v" "watching ready$v") == 1)) ||
        fail "watching reported $(ready_count "ann-$v" "watching ready$v") times"
    (($(ready_count "pub-$v" "requested $b/t") == 0)) ||
        fail "the publisher reported a request before anybody subscribed"

    spawn "sub-$v" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "$b" \
        --track t --moq-version "$v" --count 2 --ready-file "$(ready_file "sub-$v")"
    SUB=$SPAWNED
    wait_ready "pub-$v" "requested $b/t"
    if [[ $v == 05 ]]; then
        (($(ready_count "sub-$v" "subscribed $b/t") == 0)) ||
            fail "lite-05: subscribed reported before any group existed"
    else
        wait_ready "sub-$v" "subscribed $b/t"
        relay_subscribed "$b/t" 1 || fail "subscribed reported before the relay attached it"
    fi
    send one two
    expect_ok "$SUB" "the subscriber"
    [[ "$(cat "$TMP/sub-$v.out")" == $'one\ntwo' ]] || fail "the subscriber got: $(cat "$TMP/sub-$v.out")"
    [[ "$(cat "$(ready_file "sub-$v")")" == "subscribed $b/t" ]] ||
        fail "the subscriber's ready file: $(tr '\n' '|' <"$(ready_file "sub-$v")")"
    end_input
    expect_ok "$PUB_PID" "the publisher"
    [[ "$(cat "$(ready_file "pub-$v")")" == "announced $b"$'\n'"requested $b/t" ]] ||
        fail "the publisher's ready file: $(tr '\n' '|' <"$(ready_file "pub-$v")")"
    kill -TERM "$ANN"
    expect_ok "$ANN" "the watcher"
done

note "usage"
rc=0
"$MOQ" fetch "$HTTP_URL" --broadcast x --track t --group 0 --ready-file "$TMP/f" \
    2>"$TMP/usage.err" || rc=$?
((rc == 2)) || fail "fetch --ready-file exited $rc, not 2"
rc=0
"$MOQ" subscribe "$HTTP_URL" --broadcast x --track t --ready-file "$TMP/no/such/dir/r" \
    2>"$TMP/unwritable.err" || rc=$?
((rc == 1)) && log_has "$TMP/unwritable.err" "cannot write --ready-file" ||
    fail "an unwritable ready file: status $rc, $(cat "$TMP/unwritable.err")"

stop_relay
echo "PASS"
