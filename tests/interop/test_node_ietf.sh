#!/usr/bin/env bash
# The published JavaScript client @moq/net 0.3.4 in Node.js speaking IETF moq-transport to our
# relay over WebSocket (qmux), one protocol pinned at a time (the qmux session offers only that
# ALPN): draft-14 through the "moql" ALPN and its compat SETUP (the relay is configured
# without moq-lite-01/02, which the client offers first there), drafts 15 and 16 through
# "moqt-15" and "moqt-16" (draft-16 subscribes to namespaces on streams of their own). The
# client has no draft-14 under its own "moq-00" ALPN. The same flows as the moq-lite suite -
# publish, discover, subscribe byte for byte, fan-out, late join, unannounce, publisher gone,
# unsubscribe, bursts of groups and tracks, large frames - and the mixed case: an IETF
# publisher watched by moq-lite subscribers and a moq-lite publisher watched by IETF
# subscribers through the same relay, across drafts too. Drafts 17-20: test_node_ietf_17.sh.
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"
source "$(dirname "$0")/node/ietf.sh"

export MOQL_VERSION=moq-transport-14
ietf_suite "moql moqt-15 moqt-16" \
    "moql moq-lite-05,moq-lite-05 moql,moql moq-lite-03,moq-lite-04 moql,"\
"moqt-15 moq-lite-05,moq-lite-05 moqt-16,moqt-16 moqt-15,moqt-15 moql" \
    --server-version moq-lite-05 --server-version moq-lite-04 --server-version moq-lite-03 \
    --server-version moq-transport-14 --server-version moq-transport-15 \
    --server-version moq-transport-16

finish
