#!/usr/bin/env bash
# A cluster with IETF moq-transport clients: two relays peer over moq-lite (the cluster token,
# WebTransport) while an IETF publisher (draft 14, raw QUIC) publishes on one and IETF
# subscribers (drafts 16 and 19) subscribe on the other; one upstream subscription serves
# both.
source "$(dirname "$0")/cluster_lib.sh"
note "two relays peering over moq-lite: IETF publisher on one, IETF subscribers on the other"
RPORT[a]="$(free_port)"
RPORT[b]="$(free_port)"
relay a
# shellcheck disable=SC2046
relay b $(member b a)
wait_for joined b a || fail "relay b did not join relay a"
fp_of() { curl -sf "http://127.0.0.1:${RPORT[$1]}/certificate.sha256"; }
moqt() { echo "moqt://127.0.0.1:${RPORT[$1]}/"; }
# shellcheck disable=SC2046
fifo_publisher cpub "$(moqt a)" --tls-fingerprint "$(fp_of a)" --moq-version moq-transport-14 \
    --broadcast stage --track t
for d in 16 19; do
    # shellcheck disable=SC2046
    spawn "csub$d" "$MOQ" subscribe "$(moqt b)" --tls-fingerprint "$(fp_of b)" \
        --moq-version "moq-transport-$d" --broadcast stage --track t
done
send c-one c-two
for d in 16 19; do
    wait_for has_line "$TMP/csub$d.out" c-two || fail "the draft-$d subscriber on b received nothing"
done
log_has "$TMP/a.log" "session accepted (moq-transport-14)" || fail "a did not serve the draft-14 publisher"
for d in 16 19; do
    log_has "$TMP/b.log" "session accepted (moq-transport-$d)" ||
        fail "b did not serve the draft-$d subscriber"
done
grep -Eq "session accepted \(moq-lite-0[345]\)" "$TMP/a.log" || fail "b did not peer with a over moq-lite"
(($(log_count "$TMP/a.log" "subscribed to stage/t (") == 1)) ||
    fail "a served $(log_count "$TMP/a.log" "subscribed to stage/t (") subscriptions of stage/t, not one"
end_input
stop b
stop a
echo "PASS"
