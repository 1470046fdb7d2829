#!/usr/bin/env bash
# IETF moq-transport and moq-lite through one relay, in one run, with the native `moq` tool
# on every transport (raw QUIC, WebTransport, WebSocket):
#  1. an IETF publisher (draft 17, raw QUIC) watched by moq-lite subscribers over QUIC, WS
#     and WebTransport and by IETF subscribers (draft 14 over WS, draft 20 over
#     WebTransport): every one gets every frame, and the relay subscribes upstream once;
#  2. a moq-lite publisher (lite-05, raw QUIC) watched by IETF subscribers (drafts 15 over
#     QUIC, 16 over WS, 18 over WebTransport, 19 over QUIC) and a lite-03 subscriber: the
#     same, one upstream subscription.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,ietf=debug,moq=debug start_relay

MOQT_URL="moqt://127.0.0.1:$PORT/"
WS_URL="ws://127.0.0.1:$PORT/"

# run_case BROADCAST PUBLISHER-VERSION SUBSCRIBER-SPECS...: publish through a FIFO once every
# subscriber is attached, then compare what each got.
run_case() {
    local b="$1" pv="$2" spec name
    shift 2
    declare -gA SUBS=()
    for spec in "$@"; do
        IFS=: read -r name v tr <<<"$spec"
        versioned_subscriber "$b-$name" "$b" "$v" "$tr"
    done
    fifo_publisher "pub-$b" "$MOQT_URL" --tls-fingerprint "$FP" --broadcast "$b" --track t \
        --moq-version "$pv" --group-frames 2 --ready-file "$(ready_file "pub-$b")"
    # attached at the relay: moq-lite ones by its log (lite-05 confirms nothing before a
    # group exists), IETF ones by their SUBSCRIBE_OK
    local lite=0
    for spec in "$@"; do
        IFS=: read -r name v tr <<<"$spec"
        if [[ $v == moq-transport-* ]]; then
            wait_ready "$b-$name" "subscribed $b/t"
        else
            lite=$((lite + 1))
        fi
    done
    wait_for eval '(($(log_count "$RELAY_LOG" "subscribed to $b/t (") >= lite))' ||
        fail "the relay did not attach the $lite moq-lite subscribers of $b"
    wait_ready "pub-$b" "requested $b/t"
    seq 1 9 >"$TMP/$b.expected"
    send $(seq 1 9)
    end_input
    expect_ok "$PUB_PID" "publisher of $b"
    for name in "${!SUBS[@]}"; do
        expect_ok "${SUBS[$name]}" "subscriber $name"
        cmp -s "$TMP/$b.expected" "$TMP/$name.out" ||
            fail "$name got: $(tr '\n' ' ' <"$TMP/$name.out")"
    done
}

note "an IETF publisher, moq-lite and IETF subscribers on every transport"
run_case mix-a moq-transport-17 lite5quic:05:quic lite5ws:05:ws lite4wt:04:wt \
    ietf14ws:moq-transport-14:ws ietf20wt:moq-transport-20:wt
(($(grep -cE "ietf: .*SUBSCRIBE [0-9]+ /mix-a track t upstream" "$RELAY_LOG") == 1)) ||
    fail "the relay did not subscribe to the IETF publisher exactly once"
log_has "$RELAY_LOG" "session accepted (moq-transport-14)" || fail "no draft-14 session"
log_has "$RELAY_LOG" "session accepted (moq-transport-20)" || fail "no draft-20 session"

note "a moq-lite publisher, IETF subscribers on every transport"
run_case mix-b 05 ietf15quic:moq-transport-15:quic ietf16ws:moq-transport-16:ws \
    ietf18wt:moq-transport-18:wt ietf19quic:moq-transport-19:quic lite3quic:03:quic
(($(log_count "$RELAY_LOG" "requesting mix-b/t upstream") == 1)) ||
    fail "the relay did not subscribe to the moq-lite publisher exactly once"

log_has "$RELAY_LOG" "ERROR" && fail "the relay logged an error"
stop_relay
echo "PASS"
