#!/usr/bin/env bash
# Failures: the publisher's leaf dies and subscribers on the other leaf see the broadcast
# end; the leaf comes back, republishes, and subscribers get it again without anyone else
# restarting. A leaf with a wrong cluster token is refused and retried with backoff.
source "$(dirname "$0")/cluster_lib.sh"

RPORT[root]="$(free_port)"
RPORT[a]="$(free_port)"
RPORT[b]="$(free_port)"
# The relays notice a's death within seconds (idle timeout).
# shellcheck disable=SC2046
relay root $(fast_failure)
# shellcheck disable=SC2046
relay a $(member a root) $(fast_failure)
# shellcheck disable=SC2046
relay b $(member b root) $(fast_failure)
wait_for joined a root || fail "leaf a did not join the root"
wait_for joined b root || fail "leaf b did not join the root"

note "leaf a dies"
start_publisher pub a show
spawn sub "$MOQ" subscribe "$(url b)" --broadcast show --track t
SUB=$SPAWNED
wait_for log_has "$TMP/a.log" "subscribed to show/t" || fail "the subscription did not reach a"
send before
wait_for has_line "$TMP/sub.out" before || fail "no frame before the failure"
kill -KILL "${RPID[a]}"
wait "${RPID[a]}" 2>/dev/null || true
# b's subscriber ends once b notices (idle timeout) and the linger window passed. When b
# notices a moment before the root does, b moves the subscription to the root's route to a,
# which the root then fails as a's link goes down: the subscriber ends with that error.
rc=0
wait_exit "$SUB" || rc=$?
((rc == 0)) || grep -q "subscription to show/t failed" "$TMP/sub.err" ||
    fail "the subscriber on b after a died exited with status $rc"
gone() { ! curl -sf "$(url b)announced/" | grep -qx show; }
wait_for gone || fail "b still announces show"
end_input
wait "$PUB_PID" 2>/dev/null || true

note "leaf a returns and republishes"
# shellcheck disable=SC2046
relay a $(member a root) $(fast_failure)
wait_for eval '(($(log_count "$TMP/a.log" "cluster: connected to $(peer root)") >= 2))' ||
    fail "leaf a did not rejoin"
start_publisher pub2 a show
spawn sub2 "$MOQ" subscribe "$(url b)" --broadcast show --track t --count 1
SUB2=$SPAWNED
wait_for eval '(($(log_count "$TMP/a.log" "subscribed to show/t") >= 2))' ||
    fail "the new subscription did not reach a"
send after
expect_ok "$SUB2" "the subscriber after a returned"
[[ "$(cat "$TMP/sub2.out")" == after ]] || fail "wrong frame after a returned"
end_input
expect_ok "$PUB_PID" "the second publisher"

note "a leaf with a wrong token"
"$TOKEN_TOOL" generate --out "$TMP/other.jwk" >/dev/null
"$TOKEN_TOOL" --key "$TMP/other.jwk" sign --root "" --subscribe "" --publish "" >"$TMP/wrong.jwt"
# shellcheck disable=SC2046
relay bad --cluster-connect "$(peer root)" --cluster-token "$TMP/wrong.jwt"
refused() { (($(log_count "$TMP/bad.log" "refused our credentials") >= 3)); }
wait_for refused || fail "the wrong token was not refused and retried"
retries=$(log_count "$TMP/bad.log" "redialing $(peer root) in")
((retries >= 3)) || fail "no backoff between attempts"
# the delays grow: the third announced delay is longer than the first
first=$(grep -m1 -o "redialing .* in [0-9.]*s" "$TMP/bad.log" | grep -o "[0-9.]*s$" | tr -d s)
third=$(grep -o "redialing .* in [0-9.]*s" "$TMP/bad.log" | sed -n 3p | grep -o "[0-9.]*s$" | tr -d s)
awk -v a="$first" -v b="$third" 'BEGIN { exit !(b > a) }' ||
    fail "the backoff did not grow ($first s, then $third s)"
for r in bad a b root; do stop "$r"; done
echo "ok"
