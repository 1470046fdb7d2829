#!/usr/bin/env bash
# As test_node_ietf.sh, for IETF moq-transport drafts 17 to 20 ("moqt-17" .. "moqt-20"): the
# version is fixed by the ALPN, SETUP rides a uni stream each way and every request has a bidi
# stream of its own; @moq/net pins drafts 18 and 20 to qmux-01 framing, which the relay
# answers. The mixed case pairs them with moq-lite and with the earlier drafts.
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"
source "$(dirname "$0")/node/ietf.sh"

ietf_suite "moqt-17 moqt-18 moqt-19 moqt-20" \
    "moqt-17 moq-lite-05,moq-lite-05 moqt-18,moqt-20 moq-lite-04,moq-lite-03 moqt-19,"\
"moqt-20 moql,moqt-16 moqt-20,moqt-19 moqt-17"

start_relay wires --web-http-listen 127.0.0.1:0 --auth-public ""
url="http://localhost:$HTTP_PORT/"
for v in moqt-18 moqt-19 moqt-20; do
    scenario "$v offered on qmux-02, -01 and -00: two tracks" two-tracks \
        "{\"url\":\"$url\",\"version\":\"$v\",\"wire\":[\"qmux-02\",\"qmux-01\",\"qmux-00\"]}"
    expect_log "$v was answered on qmux-01" "WebSocket open on / \\(protocol 'qmux-01\\.$v'\\)"
done
expect_no_log "no draft 18-20 session on another framing" "protocol 'qmux-0[02]\\.moqt-(18|19|20)'"
scenario "moqt-18 offered on qmux-00 alone is refused" refused \
    "{\"url\":\"$url\",\"version\":\"moqt-18\",\"wire\":\"qmux-00\"}"
expect_log "the refusal names the offer" "WebSocket refused: no supported subprotocol offered \\(qmux-00\\.moqt-18\\)"
finish_relay "relay choosing the framing per draft"

finish
