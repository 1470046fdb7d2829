#!/usr/bin/env bash
# Root + two leaves, as the original guide describes: publish on leaf A, subscribe on leaf
# B. B learns from the root that the broadcast comes from A and opens a direct link; ten
# subscribers on B make one pull from A; once the subscription is established the root can
# stop and the content keeps flowing from A to B (the root carries discovery only).
source "$(dirname "$0")/cluster_lib.sh"

RPORT[root]="$(free_port)"
RPORT[a]="$(free_port)"
RPORT[b]="$(free_port)"
relay root
# shellcheck disable=SC2046
relay a $(member a root)
# shellcheck disable=SC2046
relay b $(member b root)
wait_for joined a root || fail "leaf a did not join the root"
wait_for joined b root || fail "leaf b did not join the root"

start_publisher pub a live
spawn sub0 "$MOQ" subscribe "$(url b)" --broadcast live --track t
wait_for log_has "$TMP/b.log" "/live comes from $(peer a): opening a direct link" ||
    fail "leaf b opened no direct link to a"
wait_for log_has "$TMP/b.log" "connected to $(peer a) (on demand)" ||
    fail "the direct link did not come up"
send frame-1 frame-2 frame-3
wait_for has_line "$TMP/sub0.out" frame-3 || fail "leaf b's subscriber got no frames"
[[ "$(cat "$TMP/sub0.out")" == $'frame-1\nframe-2\nframe-3' ]] || fail "wrong bytes on leaf b"

note "ten more subscribers on leaf b"
for i in $(seq 1 10); do spawn "sub$i" "$MOQ" subscribe "$(url b)" --broadcast live --track t; done
attached() { (($(log_count "$TMP/b.log" "subscribed to live/t") >= 11)); }
wait_for attached || fail "the subscribers did not attach to leaf b"
send frame-4
for i in $(seq 0 10); do
    wait_for has_line "$TMP/sub$i.out" frame-4 || fail "sub$i missed frame-4"
done
pulls=$(log_count "$TMP/b.log" "requesting live/t upstream")
((pulls == 2)) || fail "leaf b pulled live/t $pulls times (want 2: via the root, then direct)"
# b's pulls are settled (it logs each before it logs the subscriber that caused it). a served
# b's direct pull, and the root's if it got there before b moved away from the root.
served=$(log_count "$TMP/a.log" "subscribed to live/t")
((served >= 1 && served <= 2)) ||
    fail "leaf a served live/t $served times (want b's direct pull, and the root's at most)"

note "the root stops; the content does not pass through it"
stop root
send frame-5 frame-6
for i in $(seq 0 10); do
    wait_for has_line "$TMP/sub$i.out" frame-6 || fail "sub$i stopped receiving with the root"
done
end_input
expect_ok "$PUB_PID" "the publisher"
stop a
stop b
echo "ok"
