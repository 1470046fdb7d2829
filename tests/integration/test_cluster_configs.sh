#!/usr/bin/env bash
# The shipped development cluster, dev/cluster/root.toml and leaf.toml (the original guide's
# keys: [cluster] root/node/token, [auth] key, [client] tls.disable_verify), run as
# docs/cluster.md says: keys made with the documented moq-token commands, a root and two
# leaves started from the files (ports and addresses moved to free loopback ports, nothing
# else changed). A subscriber on leaf b waits before the publisher on leaf a starts, so its
# first group comes through the root and then over the direct link b opens to a; every
# byte of every frame (binary, empty, several frames per group) must arrive exactly once.
source "$(dirname "$0")/cluster_lib.sh"

DEMO="$TMP/demo"
mkdir "$DEMO"
(
    cd "$DEMO"
    "$TOKEN_TOOL" generate --out root.jwk
    "$TOKEN_TOOL" --key root.jwk sign --root "" --subscribe "" --publish "" --cluster >cluster.jwt
) >/dev/null || fail "the documented moq-token commands failed"

RPORT[root]="$(free_port)"
RPORT[a]="$(free_port)"
RPORT[b]="$(free_port)"
# configure SRC DEST LEAF_PORT: the file with the root's port 4443 and the leaf's port 4444
# moved, listening on 127.0.0.1 instead of every address, URLs naming 127.0.0.1.
configure() {
    sed -e "s/:4443\([^0-9]\)/:${RPORT[root]}\1/g" -e "s/:4444\([^0-9]\)/:$3\1/g" \
        -e 's/"\[::\]:/"127.0.0.1:/g' -e 's#//localhost:#//127.0.0.1:#g' \
        "$MOQ_SOURCE_DIR/dev/cluster/$1" >"$DEMO/$2"
    ! grep -v '^#' "$DEMO/$2" | grep -qE ':444[34]\b|\[::\]|//localhost' ||
        fail "$2 still names the demo's addresses"
}
configure root.toml root.toml 0
configure leaf.toml leaf-a.toml "${RPORT[a]}"
configure leaf.toml leaf-b.toml "${RPORT[b]}"
grep -qx "root = \"$(peer root)\"" "$DEMO/leaf-a.toml" || fail "leaf-a.toml: $(cat "$DEMO/leaf-a.toml")"

relay_config root "$DEMO" root.toml
relay_config a "$DEMO" leaf-a.toml
relay_config b "$DEMO" leaf-b.toml
wait_for joined a root || fail "leaf a did not join the root"
wait_for joined b root || fail "leaf b did not join the root"
log_has "$TMP/a.log" "advertising this relay as $(peer a)" || fail "leaf a does not advertise its node"

note "a subscriber on leaf b, then a publisher on leaf a"
spawn sub "$MOQ" subscribe "$(url b)" --broadcast live --track t --framing length
SUB_PID=$SPAWNED
fifo_publisher pub "$(url a)" --broadcast live --track t --framing length --group-frames 3
{ lframe 1000; lframe 0; } >"$TMP/first.in"
{ lframe 1; lframe 70000; lframe 0; lframe 13; lframe 4096; } >"$TMP/rest.in"
cat "$TMP/first.in" >"$PUB_FIFO"
wait_for log_has "$TMP/b.log" "/live comes from $(peer a): opening a direct link" ||
    fail "leaf b opened no direct link to a"
wait_for log_has "$TMP/b.log" "connected to $(peer a) (on demand)" ||
    fail "the direct link did not come up"
pulls() { (($(log_count "$TMP/b.log" "requesting live/t upstream") >= 2)); }
wait_for pulls || fail "leaf b did not move its subscription to the direct link"
cat "$TMP/rest.in" >"$PUB_FIFO"
end_input
expect_ok "$PUB_PID" "the publisher"
expect_ok "$SUB_PID" "the subscriber"
cat "$TMP/first.in" "$TMP/rest.in" >"$TMP/all.in"
cmp -s "$TMP/all.in" "$TMP/sub.out" ||
    fail "leaf b's subscriber got $(stat -c %s "$TMP/sub.out") bytes, not the $(stat -c %s "$TMP/all.in") published"
pulls=$(log_count "$TMP/b.log" "requesting live/t upstream")
((pulls == 2)) || fail "leaf b pulled live/t $pulls times (want 2: via the root, then direct)"

stop b
stop a
stop root
echo "ok"
