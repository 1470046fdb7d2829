#!/usr/bin/env bash
# moq-lite-01/02 through the "moql" compat SETUP, and moq-lite-06-wip only when configured,
# with the native `moq` tool:
#  1. a lite-02 publisher (raw QUIC) watched by lite-01, lite-03 and lite-05 subscribers over
#     raw QUIC and lite-01/02/05 ones over WebSocket (qmux "moql"): every one gets every frame;
#  2. a lite-01 publisher (WebSocket) watched by lite-02 (WebTransport) and lite-04 (QUIC);
#  3. a default relay refuses moq-lite-06-wip like an unknown ALPN; one configured with it
#     (and lite-05) carries lite-06 publisher -> lite-06 and lite-05 subscribers.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,moq=debug start_relay

MOQT_URL="moql://127.0.0.1:$PORT/"
WS_URL="ws://127.0.0.1:$PORT/"

# run_case BROADCAST PUBLISHER-VERSION PUBLISHER-TRANSPORT SUBSCRIBER-SPECS...: publish
# through a FIFO once every subscriber is attached, a group at a time, then compare what
# each got.
run_case() {
    local b="$1" pv="$2" pt="$3" spec name url
    shift 3
    declare -gA SUBS=()
    for spec in "$@"; do
        IFS=: read -r name v tr <<<"$spec"
        versioned_subscriber "$b-$name" "$b" "$v" "$tr"
    done
    case "$pt" in
    quic) url=("$MOQT_URL" --tls-fingerprint "$FP") ;;
    ws) url=("$WS_URL") ;;
    esac
    fifo_publisher "pub-$b" "${url[@]}" --broadcast "$b" --track t --moq-version "$pv" \
        --group-frames 2 --ready-file "$(ready_file "pub-$b")"
    wait_for eval '(($(log_count "$RELAY_LOG" "subscribed to $b/t (") >= $#))' ||
        fail "the relay did not attach the $# subscribers of $b"
    wait_ready "pub-$b" "requested $b/t"
    seq 1 9 >"$TMP/$b.expected"
    # lite-01/02 subscriptions are unordered (no such field): a group that arrives after a
    # newer one is skipped, so each group goes out once the previous one reached everyone
    local group
    for group in "1 2" "3 4" "5 6" "7 8" "9"; do
        # shellcheck disable=SC2086
        send $group
        for name in "${!SUBS[@]}"; do
            wait_for has_line "$TMP/$name.out" "${group##* }" ||
                fail "$name did not get frame ${group##* }"
        done
    done
    end_input
    expect_ok "$PUB_PID" "publisher of $b"
    for name in "${!SUBS[@]}"; do
        expect_ok "${SUBS[$name]}" "subscriber $name"
        cmp -s "$TMP/$b.expected" "$TMP/$name.out" ||
            fail "$name got: $(tr '\n' ' ' <"$TMP/$name.out")"
    done
}

note "a lite-02 publisher, lite-01 .. 05 subscribers over QUIC and WebSocket"
run_case compat-a 02 quic l1quic:01:quic l3quic:03:quic l5quic:05:quic l1ws:01:ws l2ws:02:ws \
    l5ws:05:ws
log_has "$RELAY_LOG" "moq-lite-02 session over QUIC (compat SETUP)" || fail "no lite-02 session"
log_has "$RELAY_LOG" "moq-lite-01 session over WebSocket at / (compat SETUP)" ||
    fail "no lite-01 session over WebSocket"
(($(log_count "$RELAY_LOG" "requesting compat-a/t upstream") == 1)) ||
    fail "the relay did not subscribe to the lite-02 publisher exactly once"

note "a lite-01 publisher over WebSocket, lite-02 (WebTransport) and lite-04 subscribers"
run_case compat-b 01 ws l2wt:02:wt l4quic:04:quic

log_has "$RELAY_LOG" "ERROR" && fail "the relay logged an error"
grep "closing session" "$RELAY_LOG" && fail "a session failed"

note "a default relay refuses moq-lite-06-wip"
spawn wip-refused "$MOQ" subscribe "$MOQT_URL" --tls-fingerprint "$FP" --broadcast x --track t \
    --moq-version 06-wip
rc=0
wait_exit "$SPAWNED" || rc=$?
((rc != 0)) || fail "a lite-06-wip client connected to a default relay"
log_has "$RELAY_LOG" "moq-lite-06-wip session" && fail "a default relay spoke lite-06-wip"
stop_relay

note "a relay configured with moq-lite-06-wip carries it"
MOQ_LOG=info,moq=debug start_relay --server-version moq-lite-06-wip --server-version moq-lite-05
MOQT_URL="moql://127.0.0.1:$PORT/"
WS_URL="ws://127.0.0.1:$PORT/"
run_case wip 06-wip quic w6quic:06-wip:quic w6ws:06-wip:ws w5quic:05:quic
log_has "$RELAY_LOG" "moq-lite-06-wip session over QUIC" || fail "no lite-06-wip session"
log_has "$RELAY_LOG" "ERROR" && fail "the relay logged an error"
grep "closing session" "$RELAY_LOG" && fail "a session failed"
stop_relay
echo "PASS"
