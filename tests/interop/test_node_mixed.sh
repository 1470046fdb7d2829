#!/usr/bin/env bash
# Our native `moq` tool and the published JavaScript client @moq/net 0.3.4 (Node.js) on one
# relay, each over its own transport:
# - `moq publish` over raw QUIC (moql://, certificate pinned by fingerprint) with binary
#   length-framed input (four frames per group: empty, tiny, odd, multi-record and larger
#   than a qmux window), @moq/net subscribing over WebSocket checks every byte of every frame
#   and, on lite-05, that the track ends when the publisher's input does;
# - @moq/net publishing over WebSocket, `moq subscribe` over raw QUIC prints the frames
#   length-framed and the test compares them byte for byte with what was published;
# for moq-lite-05, -04 and -03 on both sides, and across versions (the relay translates).
# The relay's log must show exactly the QUIC and WebSocket sessions these clients opened.
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client
[ -x "$MOQ_BIN" ] || abort "moq binary not found at $MOQ_BIN (build first)"

start_relay mixed --web-http-listen 127.0.0.1:0 --auth-public ""
[ -n "$HTTP_PORT" ] && [ -n "$QUIC_PORT" ] || abort "no HTTP or QUIC port in the relay log"
FP=$(curl -sf "http://127.0.0.1:$HTTP_PORT/certificate.sha256") || abort "no /certificate.sha256"
WS_URL="http://localhost:$HTTP_PORT/"
QUIC_URL="moql://127.0.0.1:$QUIC_PORT/"
NGROUPS=6
NATIVE_TIMEOUT=60
runs=0

# native_exit LABEL PID ERRFILE: the native client exited 0 by itself.
native_exit() {
    local rc=0
    wait "$2" || rc=$?
    if [ "$rc" -eq 0 ]; then
        ok "$1"
    else
        [ "$rc" -eq 124 ] && rc="124, killed after $NATIVE_TIMEOUT s"
        ko "$1 (exit $rc)"
        tail -6 "$3" | sed 's/^/     /'
    fi
}

# native_to_js NATIVE_VERSION JS_VERSION (05, 04 or 03). The publisher reads its input
# through a FIFO that stays open until the subscriber has everything: @moq/net stops reading
# the groups still in flight when the track ends, so the end must not overtake them.
native_to_js() {
    local label="moq publish lite-$1 over QUIC -> @moq/net lite-$2 over WebSocket"
    local rel="n$1$2-$RANDOM"
    local input="$WORK/$rel.in" fifo="$WORK/$rel.fifo"
    runs=$((runs + 1))
    if ! node "$CACHE/scenarios.mjs" native-input \
        "{\"file\":\"$input\",\"track\":\"t\",\"groups\":$NGROUPS}" >/dev/null; then
        ko "$label: could not write the input"
        return
    fi
    mkfifo "$fifo"
    timeout "$NATIVE_TIMEOUT" "$MOQ_BIN" publish "$QUIC_URL" --tls-fingerprint "$FP" \
        --moq-version "$1" --broadcast "mixed/$rel" --track t --framing length --group-frames 4 \
        <"$fifo" >/dev/null 2>"$WORK/$rel.err" &
    local pid=$!
    BG_PIDS+=("$pid")
    sleep 100000 >"$fifo" &
    local holder=$!
    BG_PIDS+=("$holder")
    timeout "$NATIVE_TIMEOUT" cat "$input" >"$fifo" || ko "$label: the publisher did not read its input"
    scenario_start from-native "{\"url\":\"$WS_URL\",\"version\":\"moq-lite-$2\",\"prefix\":\"mixed\",\
\"rel\":\"$rel\",\"track\":\"t\",\"groups\":$NGROUPS}"
    scenario_wait received
    kill "$holder" # the end of the input: the publisher finishes the track
    scenario_end "$label"
    native_exit "$label: the publisher ended after delivering its input" "$pid" "$WORK/$rel.err"
}

# js_to_native JS_VERSION NATIVE_VERSION
js_to_native() {
    local label="@moq/net lite-$1 over WebSocket -> moq subscribe lite-$2 over QUIC"
    local rel="j$1$2-$RANDOM"
    runs=$((runs + 1))
    timeout "$NATIVE_TIMEOUT" "$MOQ_BIN" subscribe "$QUIC_URL" --tls-fingerprint "$FP" \
        --moq-version "$2" --broadcast "mixed/$rel" --track t --framing length \
        --count $((NGROUPS * 4)) >"$WORK/$rel.out" 2>"$WORK/$rel.err" &
    local pid=$!
    BG_PIDS+=("$pid")
    scenario "$label" to-native "{\"url\":\"$WS_URL\",\"version\":\"moq-lite-$1\",\"path\":\"mixed/$rel\",\
\"track\":\"t\",\"groups\":$NGROUPS,\"expect\":\"$WORK/$rel.expect\"}"
    native_exit "$label: the subscriber ended after $((NGROUPS * 4)) frames" "$pid" "$WORK/$rel.err"
    if [ -s "$WORK/$rel.expect" ] && cmp -s "$WORK/$rel.expect" "$WORK/$rel.out"; then
        ok "$label: exact bytes ($(stat -c %s "$WORK/$rel.out") bytes length-framed)"
    else
        ko "$label: the subscriber's output differs from what was published"
        cmp "$WORK/$rel.expect" "$WORK/$rel.out" 2>&1 | sed 's/^/     /'
    fi
}

for v in 05 04 03; do
    native_to_js $v $v
    js_to_native $v $v
    expect_log "lite-$v: the native side used raw QUIC" "moq-lite-$v session over QUIC\$"
    expect_log "lite-$v: the JS side used WebSocket" "moq-lite-$v session over WebSocket"
done
native_to_js 03 05
js_to_native 05 04

# Every native client opened one raw QUIC session, every JS client one WebSocket session.
quic=$(grep -c "session over QUIC\$" "$RELAY_LOG")
ws=$(grep -c "session over WebSocket" "$RELAY_LOG")
if [ "$quic" -eq "$runs" ] && [ "$ws" -eq "$runs" ]; then
    ok "the relay saw $runs raw QUIC and $runs WebSocket sessions"
else
    ko "the relay saw $quic raw QUIC and $ws WebSocket sessions, want $runs of each"
fi
expect_no_log "no session over WebTransport" "session over WebTransport"
finish_relay "mixed relay"
finish
