#!/usr/bin/env bash
# Delivery through impaired paths: the impairment proxy (tests/tools/impair.c) sits between
# each client and the relay and applies loss (1 %, 5 %, bursts), delay with jitter,
# reordering, duplication and a bandwidth cap, over raw QUIC, WebTransport and WebSocket.
#  1. groups published one at a time all arrive, every frame intact and in order;
#  2. groups published back to back: the subscriber writes whole groups in ascending order,
#     every frame intact, up to the last group (it may skip a group a newer one overtook,
#     as a live subscriber should, never a frame of a group it writes).
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,moq=debug,quic=debug start_relay

NGROUPS=20
FRAMES=3

# frames FILE FIRST_GROUP: NGROUPS groups of FRAMES lines "gG-fF-<body>", each about 1.3 kB
# (frames span packets) with a body that differs from frame to frame.
frames() {
    awk -v first="$2" -v groups="$NGROUPS" -v frames="$FRAMES" 'BEGIN {
        for (g = first; g < first + groups; g++)
            for (f = 0; f < frames; f++) {
                body = ""; x = g * 131 + f * 7 + 1
                for (i = 0; i < 160; i++) { x = (x * 1103515245 + 12345) % 2147483648; body = body sprintf("%08x", x) }
                printf "g%d-f%d-%s\n", g, f, body
            }
    }' >"$1"
}

# whole_groups OUT WANT: every line of OUT is a line of WANT; groups are whole (frames 0..F-1
# in order) and ascending; the last group of WANT is there.
whole_groups() {
    awk -v frames="$FRAMES" '
        NR == FNR { want[$0] = 1; split($0, k, "-"); last = k[1]; next }
        {
            if (!($0 in want)) { print "a frame that was never sent: " substr($0, 1, 20); exit 1 }
            split($0, k, "-"); g = substr(k[1], 2) + 0; f = substr(k[2], 2) + 0
            if (f != expect_f || (f == 0 && seen && g <= prev)) {
                print "out of order at " k[1] "-" k[2]; exit 1
            }
            if (f == 0) { prev = g; seen = 1 }
            expect_f = (f + 1) % frames; got_last = (k[1] == last)
        }
        END { if (expect_f != 0) { print "a group was cut short"; exit 1 }
              if (!got_last) { print "the last group never arrived"; exit 1 } }
    ' "$2" "$1"
}

frames_out() { # NAME N: the subscriber NAME has written at least N frames
    (($(lines_of "$TMP/$1.out") >= $2))
}

# scenario NAME MODE SUB_URL_SCHEME [impair args...]: the publisher and the subscribers each
# reach the relay through their own proxy with these impairments (different seeds).
scenario() {
    local name="$1" mode="$2" scheme="$3"
    shift 3
    note "$name: $*"
    # A handshake whose packets a loss burst hits backs off for seconds, more on a loaded
    # machine: connecting through the proxy gets as long as any other wait of the test.
    local tls=(--tls-fingerprint "$FP" --timeout "${WAIT_SECONDS}s")
    [[ "$scheme" != ws ]] || tls=(--timeout "${WAIT_SECONDS}s")
    start_impair "imp-pub-$name" "$mode" "$PORT" --seed 11 "$@"
    local pub_url="$scheme://127.0.0.1:$IMPAIR_PORT/" pub_proxy=$IMPAIR_PID
    start_impair "imp-sub-$name" "$mode" "$PORT" --seed 12 "$@"
    local sub_url="$scheme://127.0.0.1:$IMPAIR_PORT/" sub_proxy=$IMPAIR_PID
    local subs_before
    subs_before=$(subscribed_count "$name/t")

    # 1. one group at a time
    frames "$TMP/$name.want1" 0
    fifo_publisher "pub-$name" "$pub_url" "${tls[@]}" --broadcast "$name" --track t \
        --group-frames "$FRAMES"
    spawn "paced-$name" "$MOQ" subscribe "$sub_url" "${tls[@]}" --broadcast "$name" --track t \
        --count $((NGROUPS * FRAMES))
    local paced=$SPAWNED
    wait_for relay_subscribed "$name/t" $((subs_before + 1)) || fail "$name: no subscription"
    local g
    for ((g = 0; g < NGROUPS; g++)); do
        sed -n "$((g * FRAMES + 1)),$(((g + 1) * FRAMES))p" "$TMP/$name.want1" >"$PUB_FIFO"
        wait_for frames_out "paced-$name" $(((g + 1) * FRAMES)) ||
            fail "$name: group $g did not arrive"
    done
    expect_ok "$paced" "$name: the paced subscriber"
    cmp -s "$TMP/paced-$name.out" "$TMP/$name.want1" ||
        fail "$name: the frames differ from those published"

    # 2. back to back, then the end of the track
    frames "$TMP/$name.want2" "$NGROUPS"
    spawn "burst-$name" "$MOQ" subscribe "$sub_url" "${tls[@]}" --broadcast "$name" --track t
    local burst=$SPAWNED
    wait_for relay_subscribed "$name/t" $((subs_before + 2)) || fail "$name: no second subscription"
    cat "$TMP/$name.want2" >"$PUB_FIFO"
    end_input
    expect_ok "$PUB_PID" "$name: the publisher"
    expect_ok "$burst" "$name: the subscriber of groups back to back"
    local why
    # it subscribed from the latest group, the last one of the first part
    cat "$TMP/$name.want1" "$TMP/$name.want2" >"$TMP/$name.want"
    why=$(whole_groups "$TMP/burst-$name.out" "$TMP/$name.want") || fail "$name: $why"

    kill -TERM "$sub_proxy" "$pub_proxy"
    wait_exit "$pub_proxy" || true
    wait_exit "$sub_proxy" || true
    # The proxy did impair: it reports what it dropped, held back or duplicated, either way
    # (1 % loss over a couple of hundred packets may spare the data and hit the acks).
    grep -qE "lost [1-9]|tail-dropped [1-9]|reordered [1-9]" \
        "$TMP/imp-sub-$name.err" || [[ "$mode" == tcp ]] ||
        fail "$name: the proxy impaired nothing: $(cat "$TMP/imp-sub-$name.err")"
}

scenario quic-loss5 udp moql --loss 5% --delay 10ms --jitter 5ms --reorder 5% --duplicate 2%
scenario quic-burst udp moql --loss 1% --burst 4 --delay 5ms --rate 8mbit --queue 200000
scenario wt-loss5 udp https --loss 5% --delay 10ms --jitter 5ms --reorder 3%
scenario ws-slow tcp ws --delay 20ms --jitter 10ms --rate 4mbit

relay_alive || fail "the relay died"
stop_relay
