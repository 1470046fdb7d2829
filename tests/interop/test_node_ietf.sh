#!/usr/bin/env bash
# The published JavaScript client @moq/net 0.3.4 in Node.js speaking IETF moq-transport to our
# relay over WebSocket (qmux), one protocol pinned at a time (the qmux session offers only that
# ALPN): draft-14 through the "moql" ALPN and its compat SETUP, drafts 15 and 16 through
# "moqt-15" and "moqt-16" (draft-16 subscribes to namespaces on streams of their own). The
# client has no draft-14 under its own "moq-00" ALPN. The same flows as the moq-lite suite -
# publish, discover, subscribe byte for byte, fan-out, late join, unannounce, publisher gone,
# unsubscribe, bursts of groups and tracks, large frames - and the mixed case: an IETF
# publisher watched by moq-lite subscribers and a moq-lite publisher watched by IETF
# subscribers through the same relay, across drafts too.
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client

start_relay ietf --web-http-listen 127.0.0.1:0 --auth-public "" --cluster-linger 300ms
[ -n "$HTTP_PORT" ] || abort "no HTTP port in the relay log"
URL="http://localhost:$HTTP_PORT/"

for v in moql moqt-15 moqt-16; do
    opts="\"url\":\"$URL\",\"version\":\"$v\""
    scenario "$v two tracks" two-tracks "{$opts}"
    scenario "$v fan-out 1 -> 10" fanout "{$opts}"
    scenario "$v late joiner" late-join "{$opts}"
    scenario "$v publisher ends the broadcast" unannounce "{$opts}"
    scenario "$v publisher disconnects" disconnect "{$opts}"
    scenario "$v unsubscribe reaches the publisher" unsubscribe "{$opts}"
    scenario "$v 400 groups in a burst (stream credit)" burst "{$opts}"
    scenario "$v 90 tracks" many-tracks "{$opts}"
    scenario "$v 24 MiB in flight (large frames on interleaved streams)" large "{$opts}"
    expect_log "$v: the relay ran sessions of that protocol" "ietf: .*: $v session over WebSocket"
done
for pair in "moql moq-lite-05" "moq-lite-05 moql" "moql moq-lite-03" "moq-lite-04 moql" \
    "moqt-15 moq-lite-05" "moq-lite-05 moqt-16" "moqt-16 moqt-15"; do
    set -- $pair
    scenario "publisher $1 -> subscribers $2" mixed \
        "{\"url\":\"$URL\",\"pubVersion\":\"$1\",\"subVersion\":\"$2\"}"
done
expect_no_log "no IETF session failed" "ietf: .*closing session"
finish_relay "relay with IETF sessions"

finish
