#!/usr/bin/env bash
# Mixed clusters: the node advertisement is written as upstream moq-relay writes it, the node
# URL joined under .internal/origins as a broadcast path (so "https://127.0.0.1:P/" becomes
# ".internal/origins/https:/127.0.0.1:P"), and read in that form, in upstream's bare
# host:port form and in the older one-segment form of this relay. A plain client publishes
# the advertisements a relay of another implementation would send (with a token: a client
# without one may not publish under .internal); leaf b must read each as the URL it dials.
# Then b pulls from leaf a through a's advertisement as usual.
source "$(dirname "$0")/cluster_lib.sh"

RPORT[root]="$(free_port)"
RPORT[a]="$(free_port)"
RPORT[b]="$(free_port)"
relay root
# shellcheck disable=SC2046
relay a $(member a root)
# shellcheck disable=SC2046
RELAY_MOQ_LOG="info,moq=debug,cluster=debug" relay b $(member b root)
wait_for joined a root || fail "leaf a did not join the root"
wait_for joined b root || fail "leaf b did not join the root"

note "leaf a advertises itself in the upstream form"
spawn nodes "$MOQ" announced "$(url root)" --prefix .internal/origins
advertised() { has_line "$TMP/nodes.out" "+.internal/origins/https:/127.0.0.1:${RPORT[a]}"; }
wait_for advertised || fail "no upstream-form advertisement of leaf a at the root: $(cat "$TMP/nodes.out")"
! grep -q '%2F' "$TMP/nodes.out" || fail "a relay still advertises the one-segment form"
log_has "$TMP/a.log" "advertising this relay as $(peer a) (/.internal/origins/https:/127.0.0.1:${RPORT[a]})" ||
    fail "leaf a does not log its advertisement"

note "a client without a token may not advertise a node"
idle_input IDLE
IN="$IDLE" spawn rogue "$MOQ" publish "$(url root)" --broadcast ".internal/origins/https:/127.0.0.1:7009" \
    --track t
rc=0
wait_exit "$SPAWNED" || rc=$?
((rc == 1)) || fail "an anonymous advertisement was not refused (status $rc)"
log_has "$TMP/rogue.err" "not allowed to publish .internal/origins/https:/127.0.0.1:7009" ||
    fail "the refused advertiser was not told why: $(cat "$TMP/rogue.err")"
log_has "$TMP/root.log" "a token is needed under /.internal" || fail "the root did not log the refusal"

note "advertisements of other relays, as they arrive from the network"
ADV_URL="$(url root)?jwt=$(cat "$TMP/cluster.jwt")"
declare -A FORMS=(
    ["https:/127.0.0.1:7001"]="https://127.0.0.1:7001/"
    ["moql:/127.0.0.1:7002/?cost=3"]="moql://127.0.0.1:7002/?cost=3"
    ["127.0.0.1:7003"]="https://127.0.0.1:7003/"
    ["https:%2F%2F127.0.0.1:7004%2F"]="https://127.0.0.1:7004/"
)
for form in "${!FORMS[@]}"; do
    IN="$IDLE" spawn "adv-${FORMS[$form]//[^0-9]/}" "$MOQ" publish "$ADV_URL" \
        --broadcast ".internal/origins/$form" --track t
done
learned() { log_has "$TMP/b.log" "cluster: node $1 has origin id"; }
for form in "${!FORMS[@]}"; do
    wait_for learned "${FORMS[$form]}" ||
        fail "leaf b did not read .internal/origins/$form as ${FORMS[$form]}"
done

! log_has "$TMP/b.log" "127.0.0.1:7009" || fail "leaf b read the refused advertisement"

note "leaf b pulls from leaf a over the link a's advertisement names"
start_publisher pub a live
spawn sub "$MOQ" subscribe "$(url b)" --broadcast live --track t
wait_for log_has "$TMP/b.log" "/live comes from $(peer a): opening a direct link" ||
    fail "leaf b opened no direct link to a"
wait_for log_has "$TMP/b.log" "connected to $(peer a) (on demand)" ||
    fail "the direct link did not come up"
pulls() { (($(log_count "$TMP/b.log" "requesting live/t upstream") >= 2)); }
wait_for pulls || fail "leaf b did not move its subscription to the direct link"
send frame-1
wait_for has_line "$TMP/sub.out" frame-1 || fail "leaf b's subscriber got no frames"
end_input
expect_ok "$PUB_PID" "the publisher"
stop b
stop a
stop root
echo "ok"
