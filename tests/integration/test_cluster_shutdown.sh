#!/usr/bin/env bash
# A relay that stops closes the connections it dialled before it exits: a leaf's
# WebTransport link to the root stays open a moment after its session closed (so the close
# reaches the root), and shutdown waits for it instead of leaving it behind. The root sees
# the link closed, not timed out; the leaf exits cleanly (under the sanitizers: nothing
# leaked). With one worker and with two (the cluster link is dialled from worker 0).
source "$(dirname "$0")/cluster_lib.sh"

RPORT[root]="$(free_port)"
relay root

for workers in 1 2; do
    leaf="leaf$workers"
    note "a leaf on $workers worker(s) stops while linked to the root"
    RPORT[$leaf]="$(free_port)"
    # shellcheck disable=SC2046
    relay "$leaf" $(member "$leaf" root) --server-workers "$workers"
    wait_for joined "$leaf" root || fail "$leaf did not join the root"
    closed=$(log_count "$TMP/root.log" "quic: closed")
    stop "$leaf"
    link="quic: closed 127.0.0.1:${RPORT[root]} alpn=h3"
    log_has "$TMP/$leaf.log" "$link" || fail "$leaf stopped without closing its link to the root"
    closed_at=$(grep -nF "$link" "$TMP/$leaf.log" | tail -n 1 | cut -d: -f1)
    stopped_at=$(grep -nF "relay: stopped" "$TMP/$leaf.log" | cut -d: -f1)
    ((closed_at < stopped_at)) || fail "$leaf closed its link only after it stopped"
    # the root hears the close: its end of the link closes, it does not time out
    root_closes() { grep -F "quic: closed" "$TMP/root.log" | tail -n "+$((closed + 1))"; }
    root_saw_close() { [[ -n "$(root_closes)" ]]; }
    wait_for root_saw_close || fail "the root did not see $leaf's link close"
    if root_closes | grep -q "idle timeout"; then
        fail "the root saw $leaf's link time out instead of closing"
    fi
done
stop root
echo "ok"
