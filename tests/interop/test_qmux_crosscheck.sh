#!/usr/bin/env bash
# Our qmux session (src/qmux) against the published @moq/qmux 0.3.3 client session, the one
# @moq/net 0.3.4 runs over WebSocket, without the moq-lite layer on top: for qmux-02, -01
# and -00, stream echo and 3 MiB each way (flow control), 300 uni streams (MAX_STREAMS both
# ways), RESET_STREAM and STOP_SENDING codes, datagrams, an RTT from QX_PING, and close
# codes and reasons in both directions. The WebSocket is replaced by two pipes
# (qmux/crosscheck.mjs drives qmux_crosscheck_peer, built from qmux/peer.c).
# Installs the pinned packages under the build directory (needs the npm registry once).
source "$(dirname "$0")/node/lib.sh"

install_client
PEER="$BUILD/tests/qmux_crosscheck_peer"
[ -x "$PEER" ] || abort "qmux_crosscheck_peer not found at $PEER (build first)"
cp "$NODE_DIR/../qmux/crosscheck.mjs" "$CACHE/" || abort "cannot copy crosscheck.mjs"
if (cd "$CACHE" && timeout 300 node crosscheck.mjs "$PEER") >"$WORK/crosscheck.out" 2>&1; then
    ok "@moq/qmux client against our qmux session: $(grep -c '^ok ' "$WORK/crosscheck.out") wire formats"
else
    tail -30 "$WORK/crosscheck.out"
    ko "@moq/qmux client against our qmux session"
fi
grep -E 'Sanitizer|runtime error' "$WORK/crosscheck.out" && ko "the peer reported a sanitizer error"
finish
