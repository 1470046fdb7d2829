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

finish
