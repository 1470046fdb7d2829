#!/usr/bin/env bash
# Static topologies with `cluster.connect` and no node URLs (content hops relay to relay):
# a chain of three relays, and a triangle (a loop) in which every broadcast is still
# delivered exactly once and announcements settle instead of circulating.
source "$(dirname "$0")/cluster_lib.sh"

note "chain r1 <- r2 <- r3"
RPORT[r1]="$(free_port)"
RPORT[r2]="$(free_port)"
RPORT[r3]="$(free_port)"
relay r1
relay r2 --cluster-connect "$(peer r1)" --cluster-token "$TMP/cluster.jwt"
relay r3 --cluster-connect "$(peer r2)" --cluster-token "$TMP/cluster.jwt"
wait_for joined r2 r1 || fail "r2 did not join r1"
wait_for joined r3 r2 || fail "r3 did not join r2"
start_publisher pub r1 chained
spawn sub "$MOQ" subscribe "$(url r3)" --broadcast chained --track t --count 3
SUB=$SPAWNED
wait_for log_has "$TMP/r1.log" "subscribed to chained/t" || fail "the pull never reached r1"
send one '' two
expect_ok "$SUB" "the subscriber at the end of the chain"
[[ "$(cat "$TMP/sub.out")" == $'one\n\ntwo' ]] || fail "wrong bytes through the chain"
end_input
expect_ok "$PUB_PID" "the publisher"
for r in r3 r2 r1; do stop "$r"; done

note "triangle t1 -> t2 -> t3 -> t1"
RPORT[t1]="$(free_port)"
RPORT[t2]="$(free_port)"
RPORT[t3]="$(free_port)"
relay t1 --cluster-connect "$(peer t2)" --cluster-token "$TMP/cluster.jwt"
relay t2 --cluster-connect "$(peer t3)" --cluster-token "$TMP/cluster.jwt"
relay t3 --cluster-connect "$(peer t1)" --cluster-token "$TMP/cluster.jwt"
wait_for joined t1 t2 || fail "t1 did not join t2"
wait_for joined t2 t3 || fail "t2 did not join t3"
wait_for joined t3 t1 || fail "t3 did not join t1"
# The five frames are one group: a subscriber whose pull completes late (a route that
# settles while the triangle's announcements converge) still gets the group from its
# start out of the cache, so the check is about loops (a frame twice), not about timing.
start_publisher pub2 t1 looped --group-frames 5
spawn w2 "$MOQ" subscribe "$(url t2)" --broadcast looped --track t
spawn w3 "$MOQ" subscribe "$(url t3)" --broadcast looped --track t
# Both subscribers' pulls reach t1 before anything is sent, t3's directly or through t2.
pulls() { log_count "$TMP/$1.log" "subscribed to looped/t"; }
both_pulls() { (($(pulls t1) >= 2 || ($(pulls t1) >= 1 && $(pulls t2) >= 2))); }
wait_for both_pulls || fail "the pulls did not reach t1"
send f1 f2 f3 f4 f5
for w in w2 w3; do
    wait_for has_line "$TMP/$w.out" f5 || fail "$w missed frames in the triangle"
    [[ "$(cat "$TMP/$w.out")" == $'f1\nf2\nf3\nf4\nf5' ]] ||
        fail "$w did not get every frame exactly once: $(tr '\n' ' ' <"$TMP/$w.out")"
done
# Each relay learned the broadcast a bounded number of times, and nothing more arrives: a
# second broadcast published at t1 afterwards travels every path /looped took, behind any
# announcement of /looped still on its way; once it arrived as often as /looped did, the
# count of /looped must not have moved.
announced_count() { log_count "$TMP/$1.log" "announced /$2"; }
declare -A LOOPED
for r in t1 t2 t3; do
    LOOPED[$r]=$(announced_count "$r" looped)
    ((LOOPED[$r] >= 1 && LOOPED[$r] <= 3)) || fail "$r saw /looped announced ${LOOPED[$r]} times"
done
note "/looped announced at t1, t2, t3: ${LOOPED[t1]}, ${LOOPED[t2]}, ${LOOPED[t3]} times"
idle_input MARKER_IN
IN="$MARKER_IN" spawn marker "$MOQ" publish "$(url t1)" --broadcast marker --track t
MARKER=$SPAWNED
marker_arrived() {
    local r
    for r in t1 t2 t3; do (($(announced_count "$r" marker) >= LOOPED[$r])) || return 1; done
}
wait_for marker_arrived || fail "the marker broadcast did not arrive as often as /looped"
for r in t1 t2 t3; do
    (($(announced_count "$r" looped) == LOOPED[$r])) ||
        fail "announcements of /looped keep circulating at $r"
    (($(announced_count "$r" marker) == LOOPED[$r])) ||
        fail "$r saw /marker $(announced_count "$r" marker) times, /looped ${LOOPED[$r]} times"
done
kill -TERM "$MARKER"
expect_ok "$MARKER" "the marker publisher"
end_input
expect_ok "$PUB_PID" "the publisher"
for r in t1 t2 t3; do stop "$r"; done
echo "ok"
