#!/usr/bin/env bash
# The cluster credential, in the two forms the setup guide uses, reaches every dial. Every
# relay lets anonymous clients in under demo/ only, so a private broadcast crosses a link only
# when the dialing relay presents the cluster token. Leaf a has the token only in its root
# URL (root = "https://root/?jwt=..."); leaf b has it inline in its config file
# (token = "eyJ..."). A broadcast published privately on b and watched on a must reach a over
# the direct link a opens to b, which therefore has to carry the token too; the root then
# stops and the content keeps flowing over that link.
source "$(dirname "$0")/cluster_lib.sh"

CLUSTER_JWT="$(cat "$TMP/cluster.jwt")"
PUB_JWT="$("$TOKEN_TOOL" --key "$TMP/root.jwk" sign --root private --publish "")"
SUB_JWT="$("$TOKEN_TOOL" --key "$TMP/root.jwk" sign --root private --subscribe "")"
FULL='session accepted (moq-lite-05) root=/ publish=[""] subscribe=[""]'

RPORT[root]="$(free_port)"
RPORT[a]="$(free_port)"
RPORT[b]="$(free_port)"
export RELAY_PUBLIC=demo
relay root
relay a --cluster-root "$(peer root)?jwt=$CLUSTER_JWT" --cluster-node "$(peer a)"
cat >"$TMP/b.toml" <<EOF
[cluster]
root = "$(peer root)"
node = "$(peer b)"
token = "$CLUSTER_JWT"
EOF
relay b "$TMP/b.toml"
wait_for joined a root || fail "leaf a did not join the root"
wait_for joined b root || fail "leaf b did not join the root"
both() { (($(log_count "$TMP/root.log" "$FULL") >= 2)); }
wait_for both || fail "the root did not accept both leaves with the cluster token"

note "a private broadcast on leaf b, watched on leaf a"
fifo_publisher pub "$(url b)private?jwt=$PUB_JWT" --broadcast live --track t
spawn sub "$MOQ" subscribe "$(url a)private?jwt=$SUB_JWT" --broadcast live --track t
wait_for log_has "$TMP/a.log" "/private/live comes from $(peer b): opening a direct link" ||
    fail "leaf a opened no direct link to b"
wait_for log_has "$TMP/a.log" "connected to $(peer b) (on demand)" ||
    fail "the direct link did not come up"
wait_for log_has "$TMP/b.log" "$FULL" ||
    fail "leaf b did not accept a's direct link with the cluster token"
pulls() { (($(log_count "$TMP/a.log" "requesting private/live/t upstream") >= 2)); }
wait_for pulls || fail "leaf a did not move its subscription to the direct link"
send frame-1
wait_for has_line "$TMP/sub.out" frame-1 || fail "leaf a's subscriber got no frames"

note "the root stops; the private broadcast keeps crossing the direct link"
stop root
send frame-2 frame-3
wait_for has_line "$TMP/sub.out" frame-3 || fail "the subscriber stopped receiving with the root"
[[ "$(cat "$TMP/sub.out")" == $'frame-1\nframe-2\nframe-3' ]] || fail "wrong frames on leaf a"
end_input
expect_ok "$PUB_PID" "the publisher"
stop a
stop b
! grep -qF "${CLUSTER_JWT##*.}" "$TMP"/*.log "$TMP"/*.err || fail "a log shows the cluster token"
echo "ok"
