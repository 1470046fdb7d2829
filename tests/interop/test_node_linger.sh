#!/usr/bin/env bash
# A publisher killed with SIGKILL in the middle of a group and started again while the relay
# keeps its broadcast (the linger): the published JavaScript client @moq/net 0.3.4 (Node.js,
# WebSocket) and our `moq subscribe` (WebSocket) keep their subscription and go on with the
# new publisher's frames, and neither sees the broadcast end. The publishers are our native
# `moq publish` over raw QUIC with one --origin (the identity the relay continues a
# broadcast for); the second numbers its groups on after the first one's (--group-start).
# For moq-lite-05 and -04 (on -03 hops carry no publisher identity, so nothing splices).
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client
[ -x "$MOQ_BIN" ] || abort "moq binary not found at $MOQ_BIN (build first)"

# The ack timeout notices the killed publisher in seconds; the linger is long enough that the
# new publisher is always back in time on a loaded machine (nothing here waits for it).
start_relay linger --web-http-listen 127.0.0.1:0 --auth-public "" --server-quic-keep-alive 250ms \
    --server-quic-ack-timeout 2s --cluster-linger 30s
[ -n "$HTTP_PORT" ] && [ -n "$QUIC_PORT" ] || abort "no HTTP or QUIC port in the relay log"
FP=$(curl -sf "http://127.0.0.1:$HTTP_PORT/certificate.sha256") || abort "no /certificate.sha256"
WS_URL="http://localhost:$HTTP_PORT/"
QUIC_URL="moql://127.0.0.1:$QUIC_PORT/"
lines_at_least() { [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
ack_timeouts() { grep -c 'reason="ack timeout"' "$RELAY_LOG" || true; }
more_ack_timeouts() { [ "$(ack_timeouts)" -gt "$1" ]; }
has_ready() { grep -qx -- "$2" "$1" 2>/dev/null; }

# publish NAME VERSION REL [ARGS...]: `moq publish` of linger/REL, track t, two frames per
# group, fed through the FIFO $WORK/NAME.fifo that a holder keeps open (PUB_PID, HOLDER_PID).
publish() {
    local name=$1 v=$2 rel=$3
    shift 3
    mkfifo "$WORK/$name.fifo"
    "$MOQ_BIN" publish "$QUIC_URL" --tls-fingerprint "$FP" --moq-version "$v" \
        --broadcast "linger/$rel" --track t --group-frames 2 --origin 4242 \
        --ready-file "$WORK/$name.ready" "$@" <"$WORK/$name.fifo" >/dev/null 2>"$WORK/$name.err" &
    PUB_PID=$!
    BG_PIDS+=("$PUB_PID")
    sleep 100000 >"$WORK/$name.fifo" &
    HOLDER_PID=$!
    BG_PIDS+=("$HOLDER_PID")
}

# send_frames LABEL PUBLISHER VERSION N FRAME...: write the frames (one group) and wait until
# both subscribers have them (the native one N frames in all).
send_frames() {
    local label=$1 pub=$2 v=$3 n=$4
    shift 4
    printf '%s\n' "$@" >"$WORK/$pub.fifo"
    local last=${*: -1}
    scenario_wait "frame $last" || ko "$label: @moq/net did not get $last"
    wait_until "$WAIT" lines_at_least "$WORK/s$v.out" "$n" || ko "$label: moq subscribe did not get $last"
}

# comeback VERSION (05 or 04)
comeback() {
    local v=$1 label="lite-$1: a publisher killed mid-group comes back within the linger"
    local rel="c$1-$RANDOM" a=$WORK/a$1 b=$WORK/b$1
    publish "a$v" "$v" "$rel"
    local first=$PUB_PID first_holder=$HOLDER_PID
    scenario_start follow "{\"url\":\"$WS_URL\",\"version\":\"moq-lite-$v\",\"prefix\":\"linger\",\
\"rel\":\"$rel\",\"track\":\"t\",\"expect\":[\"x1\",\"x2\",\"y1\",\"z1\",\"z2\",\"w1\"]}"
    "$MOQ_BIN" subscribe "ws://127.0.0.1:$HTTP_PORT/" --moq-version "$v" \
        --broadcast "linger/$rel" --track t >"$WORK/s$v.out" 2>"$WORK/s$v.err" &
    local native=$!
    BG_PIDS+=("$native")
    wait_until "$WAIT" has_ready "$a.ready" "requested linger/$rel/t" ||
        ko "$label: the relay did not subscribe to the first publisher"
    # both subscribers attached before the first frame goes out
    wait_until "$WAIT" eval "[ \$(grep -c 'subscribed to linger/$rel/t' \"$RELAY_LOG\") -ge 2 ]" ||
        ko "$label: the subscribers did not attach"
    # group 0 complete, group 1 in flight; each group once the last one arrived (the
    # subscriptions start at the first group to arrive)
    send_frames "$label" "a$v" "$v" 2 x1 x2
    send_frames "$label" "a$v" "$v" 3 y1
    local before
    before=$(ack_timeouts)
    kill -KILL "$first"
    kill "$first_holder"
    wait_until "$WAIT" more_ack_timeouts "$before" || ko "$label: the relay did not notice the kill"
    publish "b$v" "$v" "$rel" --group-start 2
    local second=$PUB_PID second_holder=$HOLDER_PID
    wait_until "$WAIT" has_ready "$b.ready" "requested linger/$rel/t" ||
        ko "$label: the relay did not subscribe to the new publisher"
    send_frames "$label" "b$v" "$v" 5 z1 z2
    printf 'w1\n' >"$WORK/b$v.fifo"
    scenario_end "$label: @moq/net"
    if wait_until "$WAIT" lines_at_least "$WORK/s$v.out" 6 &&
        [ "$(tr '\n' ' ' <"$WORK/s$v.out")" = "x1 x2 y1 z1 z2 w1 " ] && kill -0 "$native" 2>/dev/null; then
        ok "$label: moq subscribe kept its subscription and got x1 x2 y1 z1 z2 w1"
    else
        ko "$label: moq subscribe got: $(tr '\n' ' ' <"$WORK/s$v.out")"
        tail -5 "$WORK/s$v.err" | sed 's/^/     /'
    fi
    kill "$second_holder" # the end of the input: the publisher finishes and unannounces
    local rc=0
    wait "$second" || rc=$?
    [ $rc -eq 0 ] && ok "$label: the new publisher ended cleanly" ||
        ko "$label: the new publisher exited with $rc"
    rc=0
    wait "$native" || rc=$?
    [ $rc -eq 0 ] && ok "$label: moq subscribe ended when the new publisher ended" ||
        ko "$label: moq subscribe exited with $rc"
}

comeback 05
comeback 04
finish_relay "linger relay"
finish
