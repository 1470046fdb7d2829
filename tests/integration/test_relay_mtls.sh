#!/usr/bin/env bash
# mTLS between relays, as upstream: relay a asks QUIC/WebTransport clients for an optional
# certificate (server.tls.root); relay b presents one its CA signed (client.tls.cert/key)
# and is a full-access peer without any token: what is published on b plays on a. A
# certificate from another CA that claims the same name fails the handshake; one whose
# issuer a does not name is not even sent (GnuTLS offers only certificates of the CAs the
# server lists), so that peer, like one without certificate or token, is refused as any
# anonymous client; clients with tokens and no certificate are unaffected.
# The same on [web.https] (web.https.root): a WebSocket upgrade with a certificate of the CA
# is accepted without a token, without one it is refused (401).
# Certificates are made here with GnuTLS certtool.
source "$(dirname "$0")/cluster_lib.sh"

cert() { # NAME SIGNER(or -) TEMPLATE-LINES... (CN=NAME unless CN is set)
    local name="$1" signer="$2"
    shift 2
    local cn="${CN:-$name}"
    certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$TMP/$name.key" \
        2>/dev/null
    printf '%s\n' "cn = \"$cn\"" "expiration_days = 10" "$@" >"$TMP/$name.tmpl"
    if [[ "$signer" == - ]]; then
        certtool --generate-self-signed --load-privkey "$TMP/$name.key" \
            --template "$TMP/$name.tmpl" --outfile "$TMP/$name.pem" 2>/dev/null
    else
        certtool --generate-certificate --load-privkey "$TMP/$name.key" \
            --load-ca-certificate "$TMP/$signer.pem" --load-ca-privkey "$TMP/$signer.key" \
            --template "$TMP/$name.tmpl" --outfile "$TMP/$name.pem" 2>/dev/null
    fi
    [[ -s "$TMP/$name.pem" ]] || fail "certtool did not make $name"
}
cert ca - ca cert_signing_key
cert other-ca - ca cert_signing_key
CN=ca cert fake-ca - ca cert_signing_key
cert peer-b ca tls_www_client signing_key
cert rogue other-ca tls_www_client signing_key
cert forged fake-ca tls_www_client signing_key
cert https-a ca tls_www_server signing_key 'ip_address = "127.0.0.1"'

note "a: tokens only, client certificates from ca.pem"
declare -A taken
for n in a b c d e https; do # distinct ports, none bound yet
    until [[ -n "${RPORT[$n]:-}" && -z "${taken[${RPORT[$n]}]:-}" ]]; do RPORT[$n]="$(free_port)"; done
    taken[${RPORT[$n]}]=1
done
common() { # NAME: the listeners of relay NAME
    echo "--server-bind 127.0.0.1:${RPORT[$1]} --web-http-listen 127.0.0.1:${RPORT[$1]}" \
        "--tls-generate localhost --client-tls-disable-verify"
}
# shellcheck disable=SC2046
launch a "$TMP" $(common a) --auth-key "$TMP/root.jwk" --server-tls-root "$TMP/ca.pem" \
    --web-https-listen "127.0.0.1:${RPORT[https]}" --web-https-cert "$TMP/https-a.pem" \
    --web-https-key "$TMP/https-a.key" --web-https-root "$TMP/ca.pem"
"$MOQ_RELAY_BIN" --check --auth-key "$TMP/root.jwk" --server-tls-root "$TMP/ca.pem" \
    --tls-generate localhost --client-tls-cert "$TMP/peer-b.pem" \
    --client-tls-key "$TMP/peer-b.key" >/dev/null 2>"$TMP/check.err" ||
    fail "--check refused the mTLS settings: $(cat "$TMP/check.err")"

note "b presents a certificate of that CA and no token: a full-access peer"
# shellcheck disable=SC2046
launch b "$TMP" $(common b) --auth-public "" --cluster-connect "$(peer a)" \
    --client-tls-cert "$TMP/peer-b.pem" --client-tls-key "$TMP/peer-b.key"
wait_for joined b a || fail "b did not connect to a with its certificate"
wait_for log_has "$TMP/a.log" "session accepted (moq-lite-05, client certificate) root=/ publish=[\"\"] subscribe=[\"\"]" ||
    fail "a did not accept b on its certificate"
TOKEN="$("$TOKEN_TOOL" --key "$TMP/root.jwk" sign --root "" --subscribe "")"
spawn sub "$MOQ" subscribe "$(url a)?jwt=$TOKEN" --broadcast cam --track t
wait_for log_has "$TMP/sub.err" "client: connected" || fail "a token client did not connect to a"
start_publisher pub b cam
send "through the certified link"
wait_for has_line "$TMP/sub.out" "through the certified link" ||
    fail "what b's publisher sent did not reach a's subscriber"

note "c presents a certificate of a CA that only claims a's CA name: the handshake fails"
# shellcheck disable=SC2046
launch c "$TMP" $(common c) --auth-public "" --cluster-connect "$(peer a)" \
    --client-tls-cert "$TMP/forged.pem" --client-tls-key "$TMP/forged.key"
wait_for log_has "$TMP/c.log" "dialing $(peer a) failed" || fail "c's dial did not fail"
if log_has "$TMP/c.log" "cluster: connected to"; then fail "c connected with a forged certificate"; fi

note "e's certificate comes from a CA a does not list: refused as anonymous"
# shellcheck disable=SC2046
launch e "$TMP" $(common e) --auth-public "" --cluster-connect "$(peer a)" \
    --client-tls-cert "$TMP/rogue.pem" --client-tls-key "$TMP/rogue.key"
wait_for log_has "$TMP/e.log" "refused our credentials (code 6: not authorized)" ||
    fail "e was not refused"

note "d has neither certificate nor token: refused like any anonymous client"
# shellcheck disable=SC2046
launch d "$TMP" $(common d) --auth-public "" --cluster-connect "$(peer a)"
wait_for log_has "$TMP/d.log" "refused our credentials (code 6: not authorized)" ||
    fail "d was not refused"
(($(log_count "$TMP/a.log" "client certificate) root=") == 1)) ||
    fail "a accepted another peer on a certificate"

note "HTTPS: a WebSocket upgrade with b's certificate needs no token; without, 401"
upgrade() { # CURL ARGS...: the status of a WebSocket upgrade at a's HTTPS root
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$TMP/ca.pem" "$@" \
        -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
        -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
        -H 'Sec-WebSocket-Protocol: qmux-01.moq-lite-05' "https://127.0.0.1:${RPORT[https]}/" || true
}
[[ "$(upgrade --cert "$TMP/peer-b.pem" --key "$TMP/peer-b.key")" == 101 ]] ||
    fail "the certified upgrade was not accepted: $(tail -3 "$TMP/a.log")"
wait_for log_has "$TMP/a.log" "session accepted (moq-lite-05, client certificate) root=/" ||
    fail "a did not accept the WebSocket session on its certificate"
[[ "$(upgrade)" == 401 ]] || fail "an upgrade without certificate or token was not refused"

end_input
expect_ok "$PUB_PID" publisher
for n in e d c b a; do stop "$n"; done
note "ok"
