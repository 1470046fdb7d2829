#!/usr/bin/env bash
# SIGHUP reloads the certificate/key files and the auth key set without dropping sessions:
# a publisher and a subscriber connected before the signal keep exchanging frames after
# it; new sessions are served the new certificate (its fingerprint at /certificate.sha256
# and in the handshake) and their tokens are checked against the new key, the old key's
# tokens refused. The relay logs one line per item reloaded. A broken file on reload is
# reported with the reason and harms no session: a broken certificate keeps the current
# one, a broken key fails closed (its tokens are refused until it loads again, as when the
# file changes between two connections), and the relay stays up.
source "$(dirname "$0")/lib.sh"
TOKEN_TOOL="$MOQ_BUILD_DIR/moq-token"

make_cert() { # NAME: a self-signed certificate for 127.0.0.1 and localhost
    certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$TMP/$1.key" \
        2>/dev/null
    cat >"$TMP/$1.tmpl" <<EOF
cn = "relay $1"
dns_name = "localhost"
ip_address = "127.0.0.1"
expiration_days = 10
tls_www_server
signing_key
EOF
    certtool --generate-self-signed --load-privkey "$TMP/$1.key" --template "$TMP/$1.tmpl" \
        --outfile "$TMP/$1.pem" 2>/dev/null
}
fingerprint() {
    certtool --certificate-info --infile "$1" --outder 2>/dev/null | sha256sum | cut -d' ' -f1
}
make_cert a
make_cert b
cp "$TMP/a.pem" "$TMP/cert.pem"
cp "$TMP/a.key" "$TMP/cert.key"
"$TOKEN_TOOL" generate --out "$TMP/old.jwk" >/dev/null 2>&1
"$TOKEN_TOOL" generate --out "$TMP/new.jwk" >/dev/null 2>&1
cp "$TMP/old.jwk" "$TMP/key.jwk"
OLD_TOKEN="$("$TOKEN_TOOL" sign --key "$TMP/old.jwk" --root room --publish "" --subscribe "")"
NEW_TOKEN="$("$TOKEN_TOOL" sign --key "$TMP/new.jwk" --root room --publish "" --subscribe "")"

RELAY_KEY="$TMP/key.jwk" start_relay --tls-cert "$TMP/cert.pem" --tls-key "$TMP/cert.key"
FP_A="$(fingerprint "$TMP/a.pem")"
FP_B="$(fingerprint "$TMP/b.pem")"
[[ "$FP" == "$FP_A" ]] || fail "the relay serves $FP, not certificate a ($FP_A)"
url() { echo "moql://127.0.0.1:$PORT/room?jwt=$1"; }

note "a session that spans the reload"
spawn sub "$MOQ" subscribe "$(url "$OLD_TOKEN")" --tls-fingerprint "$FP_A" --broadcast cam --track t
SUB=$SPAWNED
fifo_publisher pub "$(url "$OLD_TOKEN")" --tls-fingerprint "$FP_A" --broadcast cam --track t
send before
wait_for has_line "$TMP/sub.out" before || fail "the subscriber did not get the first frame"

note "SIGHUP with new files"
cp "$TMP/b.pem" "$TMP/cert.pem"
cp "$TMP/b.key" "$TMP/cert.key"
cp "$TMP/new.jwk" "$TMP/key.jwk"
kill -HUP "$RELAY_PID"
wait_for log_has "$RELAY_LOG" "reload finished: 2 reloaded; sessions continue" ||
    fail "the relay did not report the reload"
relay_alive || fail "SIGHUP killed the relay"
log_has "$RELAY_LOG" "received SIGHUP, reloading certificates and keys (other settings take effect on restart)" ||
    fail "no SIGHUP line"
log_has "$RELAY_LOG" "reload: QUIC certificate: reloaded 1 file pair(s), fingerprint $FP_B" ||
    fail "the certificate reload was not logged with the new fingerprint"
log_has "$RELAY_LOG" "reload: auth key $TMP/key.jwk: HS256" || fail "the key reload was not logged"
if grep -q "$NEW_TOKEN\|$OLD_TOKEN" "$RELAY_LOG"; then fail "a token reached the log"; fi

send after
wait_for has_line "$TMP/sub.out" after || fail "the session did not survive the reload"
relay_alive || fail "the relay died"
kill -0 "$SUB" || fail "the subscriber's session ended"

note "new sessions see the new certificate and key"
[[ "$(curl -sf "http://127.0.0.1:$PORT/certificate.sha256")" == "$FP_B" ]] ||
    fail "/certificate.sha256 still serves the old fingerprint"
rc=0
"$MOQ" subscribe "$(url "$NEW_TOKEN")" --tls-fingerprint "$FP_A" --broadcast cam --track t \
    >/dev/null 2>"$TMP/oldpin.err" </dev/null & PIDS+=($!)
wait_exit $! || rc=$?
((rc != 0)) || fail "a client pinning the old certificate connected"
grep -qi "fingerprint" "$TMP/oldpin.err" || fail "old pin: $(tail -2 "$TMP/oldpin.err")"
# A late subscriber starts with the latest group ("after"): then it is attached.
spawn sub2 "$MOQ" subscribe "$(url "$NEW_TOKEN")" --tls-fingerprint "$FP_B" --broadcast cam --track t
wait_for has_line "$TMP/sub2.out" after || fail "a new session with the new pin and key got nothing"
send third
wait_for has_line "$TMP/sub2.out" third || fail "the new session stopped receiving"
rc=0
"$MOQ" subscribe "$(url "$OLD_TOKEN")" --tls-fingerprint "$FP_B" --broadcast cam --track t \
    >/dev/null 2>"$TMP/oldkey.err" </dev/null & PIDS+=($!)
wait_exit $! || rc=$?
((rc == 1)) || fail "a token of the replaced key: exit $rc, not 1"
grep -q "not authorized" "$TMP/oldkey.err" || fail "old key: $(tail -2 "$TMP/oldkey.err")"

note "a broken file on reload is reported and harmless"
echo "not a certificate" >"$TMP/cert.pem"
echo "{not json" >"$TMP/key.jwk"
kill -HUP "$RELAY_PID"
wait_for log_has "$RELAY_LOG" "reload finished: 0 reloaded, 2 failed" ||
    fail "the failed reload was not reported"
log_has "$RELAY_LOG" "reload: QUIC certificate: failed, keeping the current one: certificate file $TMP/cert.pem" ||
    fail "the broken certificate was not named"
log_has "$RELAY_LOG" "reload: auth key $TMP/key.jwk: failed, tokens it signed are refused until it loads" ||
    fail "the broken key was not named"
relay_alive || fail "a broken file killed the relay"
[[ "$(curl -sf "http://127.0.0.1:$PORT/certificate.sha256")" == "$FP_B" ]] ||
    fail "a broken file changed the served certificate"
send fourth
wait_for has_line "$TMP/sub.out" fourth || fail "the first session did not survive a failed reload"
wait_for has_line "$TMP/sub2.out" fourth || fail "the second session did not survive a failed reload"
rc=0
"$MOQ" subscribe "$(url "$NEW_TOKEN")" --tls-fingerprint "$FP_B" --broadcast cam --track t \
    >/dev/null 2>"$TMP/broken.err" </dev/null & PIDS+=($!)
wait_exit $! || rc=$?
((rc == 1)) || fail "a token of a key whose file is broken: exit $rc, not 1"

note "the files repaired, systemctl reload (the unit's ExecReload) serves them"
cp "$TMP/b.pem" "$TMP/cert.pem"
cp "$TMP/new.jwk" "$TMP/key.jwk"
EXEC_RELOAD="$(sed -n 's/^ExecReload=//p' "$MOQ_SOURCE_DIR/dist/systemd/moq-relay.service")"
[[ "$EXEC_RELOAD" == '/bin/kill -HUP $MAINPID' ]] || fail "ExecReload=$EXEC_RELOAD"
${EXEC_RELOAD/\$MAINPID/$RELAY_PID}
wait_for log_has "$RELAY_LOG" "reload finished: 2 reloaded; sessions continue" ||
    fail "the repaired files were not reloaded"
(($(log_count "$RELAY_LOG" "reload finished: 2 reloaded; sessions continue") == 2)) ||
    fail "the repair was not a second successful reload"
spawn sub3 "$MOQ" subscribe "$(url "$NEW_TOKEN")" --tls-fingerprint "$FP_B" --broadcast cam --track t
wait_for has_line "$TMP/sub3.out" fourth || fail "after the repair a new session got nothing"
send fifth
wait_for has_line "$TMP/sub3.out" fifth || fail "after the repair a new session got nothing"
wait_for has_line "$TMP/sub.out" fifth || fail "the first session lost frames"
end_input
expect_ok "$PUB_PID" publisher
stop_relay
note "ok"
