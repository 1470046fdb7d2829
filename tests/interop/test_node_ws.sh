#!/usr/bin/env bash
# The published JavaScript client @moq/net 0.3.4 in Node.js against our relay over plain
# WebSocket (qmux): Node has no WebTransport, so this is the transport it takes.
# - every moq-lite version the relay offers, pinned from the client (the qmux `transport`
#   option of connect()): two tracks checked byte for byte (empty, binary, multi-record and
#   larger-than-window frames, lite-05 timestamps), 1 -> 10 fan-out, a late joiner getting
#   the current group, the broadcast disappearing (unannounced, or publisher gone),
#   unsubscribing, FETCH of a cached group (lite-05), and
#   bursts of groups and tracks beyond the client's initial stream limits, and multi-MiB
#   groups beyond the relay's send queue;
# - the QMux framings qmux-00 and qmux-01 as well as the relay's choice (qmux-02);
# - version negotiation: the client's full offer against the relay's defaults and against a
#   relay restricted with --server-version.
# Installs the pinned packages under the build directory (needs the npm registry once).
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client

# A lost publisher's broadcast normally lingers 5 s (upstream's default); keep the test short.
# Node may not read its socket for tens of seconds while it handles 24 MiB on a loaded
# machine (20 s was seen): no ack timeout and a long idle timeout keep that from counting as a
# vanished peer; these clients close their sessions, nothing here waits on detection.
start_relay ws --web-http-listen 127.0.0.1:0 --auth-public "" --cluster-linger 300ms \
    --server-quic-ack-timeout 0 --server-quic-idle-timeout 120s
[ -n "$HTTP_PORT" ] || abort "no HTTP port in the relay log"
URL="http://localhost:$HTTP_PORT/"

scenario "default offer" negotiate "{\"url\":\"$URL\",\"expect\":\"moq-lite-05\"}"
for v in moq-lite-05 moq-lite-04 moq-lite-03; do
    opts="\"url\":\"$URL\",\"version\":\"$v\""
    scenario "$v two tracks" two-tracks "{$opts}"
    scenario "$v fan-out 1 -> 10" fanout "{$opts}"
    scenario "$v late joiner" late-join "{$opts}"
    scenario "$v publisher ends the broadcast" unannounce "{$opts}"
    scenario "$v publisher disconnects" disconnect "{$opts}"
    scenario "$v unsubscribe reaches the publisher" unsubscribe "{$opts}"
    [ "$v" = moq-lite-05 ] && scenario "$v fetch a cached group" fetch "{$opts}"
    scenario "$v 400 groups in a burst (stream credit)" burst "{$opts}"
    scenario "$v 90 tracks (bidi stream credit)" many-tracks "{$opts}"
    scenario "$v 24 MiB in flight (send queue backpressure)" large "{$opts}"
    expect_log "$v: the relay ran it as a WebSocket session" "$v session over WebSocket"
done
for w in qmux-01 qmux-00; do
    scenario "moq-lite-05 over $w: two tracks" two-tracks \
        "{\"url\":\"$URL\",\"version\":\"moq-lite-05\",\"wire\":\"$w\"}"
    expect_log "$w was negotiated" "WebSocket open on / \\(protocol '$w\\.moq-lite-05'\\)"
done
expect_log "the relay chose qmux-02 for the default offer" "WebSocket open on / \\(protocol 'qmux-02\\.moq-lite-05'\\)"
expect_no_log "no session used another transport" "session over (QUIC|WebTransport)"
expect_no_log "no qmux protocol violation" "qmux: .*(violation|flow control error|stream limit)"
finish_relay "default relay"

# The relay shuts down (SIGTERM) while clients are mid-session: it closes them and exits
# cleanly (no leak reports under ASan).
start_relay shutdown --web-http-listen 127.0.0.1:0 --auth-public ""
scenario_start hold "{\"url\":\"http://localhost:$HTTP_PORT/\",\"version\":\"moq-lite-05\"}"
if scenario_wait ready; then
    finish_relay "shutdown with live WebSocket sessions"
    scenario_end "the clients saw the relay close their sessions"
else
    kill "$SCN_PID" 2>/dev/null
    scenario_end "clients for the shutdown check got going"
    stop_relay
fi

# The relay restricted to one version picks it from the client's full offer.
for v in moq-lite-04 moq-lite-03; do
    start_relay "only-$v" --web-http-listen 127.0.0.1:0 --auth-public "" --server-version "$v"
    scenario "relay offering only $v" negotiate "{\"url\":\"http://localhost:$HTTP_PORT/\",\"expect\":\"$v\"}"
    expect_log "$v: WebSocket session" "$v session over WebSocket"
    finish_relay "relay offering only $v"
done

finish
