#!/usr/bin/env bash
# The published JavaScript client @moq/net 0.3.4 in Node.js over WebSocket (qmux) on the
# versions outside the relay's ALPN defaults:
# - moq-lite-02 through the "moql" subprotocol: the client's compat SETUP offers lite-02,
#   lite-01 and moq-transport-14 and the relay picks lite-02, as upstream does; the moq-lite
#   flows, and lite-02 publishers and subscribers mixed with lite-05 ones;
# - moq-lite-06-wip, which a default relay refuses and one configured with it speaks
#   (announce ids: each broadcast started, ended and started again).
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client

# lite_flows VERSION: the moq-lite flows with one protocol pinned from the client
lite_flows() {
    local opts="\"url\":\"$URL\",\"version\":\"$1\""
    scenario "$1 two tracks" two-tracks "{$opts}"
    scenario "$1 fan-out 1 -> 10" fanout "{$opts}"
    scenario "$1 late joiner" late-join "{$opts}"
    scenario "$1 publisher ends the broadcast" unannounce "{$opts}"
    scenario "$1 publisher disconnects" disconnect "{$opts}"
    scenario "$1 unsubscribe reaches the publisher" unsubscribe "{$opts}"
    scenario "$1 90 tracks (bidi stream credit)" many-tracks "{$opts}"
}

start_relay compat --web-http-listen 127.0.0.1:0 --auth-public "" --cluster-linger 300ms \
    --server-quic-ack-timeout 20s
[ -n "$HTTP_PORT" ] || abort "no HTTP port in the relay log"
URL="http://localhost:$HTTP_PORT/"
lite_flows moql
expect_log "moql: the relay ran moq-lite-02 sessions" \
    "moq-lite-02 session over WebSocket at / \\(compat SETUP\\)"
for pair in "moql moq-lite-05" "moq-lite-05 moql"; do
    set -- $pair
    scenario "publisher $1 -> subscribers $2" mixed \
        "{\"url\":\"$URL\",\"pubVersion\":\"$1\",\"subVersion\":\"$2\"}"
done
scenario "moq-lite-06-wip is refused by default" refused \
    "{\"url\":\"$URL\",\"version\":\"moq-lite-06-wip\"}"
expect_no_log "no moq-lite session failed" "moq: .*closing session"
expect_no_log "no lite-06 session" "moq-lite-06-wip session"
finish_relay "default relay"

start_relay wip --web-http-listen 127.0.0.1:0 --auth-public "" --cluster-linger 300ms \
    --server-quic-ack-timeout 20s --server-version moq-lite-06-wip --server-version moq-lite-05
[ -n "$HTTP_PORT" ] || abort "no HTTP port in the relay log"
URL="http://localhost:$HTTP_PORT/"
lite_flows moq-lite-06-wip
scenario "publisher moq-lite-06-wip -> subscribers moq-lite-05" mixed \
    "{\"url\":\"$URL\",\"pubVersion\":\"moq-lite-06-wip\",\"subVersion\":\"moq-lite-05\"}"
expect_log "the relay ran moq-lite-06-wip sessions" "moq-lite-06-wip session over WebSocket"
expect_no_log "no moq-lite session failed" "moq: .*closing session"
finish_relay "relay configured with moq-lite-06-wip"

finish
