#!/usr/bin/env bash
# @moq/net 0.3.4 in Node.js over secure WebSocket (wss://) on the relay's [web.https]
# listener, with a CA and a localhost certificate generated here (certtool). Node trusts the
# CA through NODE_EXTRA_CA_CERTS (read by Node's TLS, which the `ws` package uses); without
# it the connection must fail, so the certificate is really verified.
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client
command -v certtool >/dev/null || abort "certtool is not installed (gnutls-bin, scripts/deps.sh)"

# A throw-away CA and a leaf for localhost/127.0.0.1, valid for two days.
make_certs() {
    cat >"$WORK/ca.tmpl" <<'EOF'
cn = "moq-relay interop test CA"
ca
cert_signing_key
expiration_days = 2
EOF
    cat >"$WORK/leaf.tmpl" <<'EOF'
cn = "localhost"
dns_name = "localhost"
ip_address = "127.0.0.1"
tls_www_server
signing_key
encryption_key
expiration_days = 2
EOF
    certtool --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$WORK/ca.key" &&
        certtool --generate-self-signed --load-privkey "$WORK/ca.key" --template "$WORK/ca.tmpl" \
            --outfile "$WORK/ca.pem" &&
        certtool --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$WORK/leaf.key" &&
        certtool --generate-certificate --load-privkey "$WORK/leaf.key" \
            --load-ca-certificate "$WORK/ca.pem" --load-ca-privkey "$WORK/ca.key" \
            --template "$WORK/leaf.tmpl" --outfile "$WORK/leaf.pem"
}
make_certs >"$WORK/certtool.log" 2>&1 || {
    tail -5 "$WORK/certtool.log"
    abort "certtool could not generate the test certificates"
}

start_relay wss --web-https-listen 127.0.0.1:0 --web-https-cert "$WORK/leaf.pem" \
    --web-https-key "$WORK/leaf.key" --auth-public "" --cluster-linger 300ms
[ -n "$HTTPS_PORT" ] || abort "no HTTPS port in the relay log"
URL="https://localhost:$HTTPS_PORT/"

SCENARIO_ENV=(NODE_EXTRA_CA_CERTS="$WORK/ca.pem")
scenario "wss: default offer" negotiate "{\"url\":\"$URL\",\"expect\":\"moq-lite-05\"}"
scenario "wss: two tracks" two-tracks "{\"url\":\"$URL\",\"version\":\"moq-lite-05\"}"
scenario "wss: fan-out 1 -> 10" fanout "{\"url\":\"$URL\",\"version\":\"moq-lite-05\"}"
scenario "wss: late joiner (moq-lite-04)" late-join "{\"url\":\"$URL\",\"version\":\"moq-lite-04\"}"
scenario "wss: publisher disconnects" disconnect "{\"url\":\"$URL\",\"version\":\"moq-lite-05\"}"
SCENARIO_ENV=(NODE_EXTRA_CA_CERTS=)
scenario "wss: a client that does not trust the CA is refused" refused "{\"url\":\"$URL\"}"
SCENARIO_ENV=()

expect_log "the relay served them as WebSocket sessions" "moq-lite-05 session over WebSocket"
expect_log "the only web listener is HTTPS" "http: listening on .*\\(port $HTTPS_PORT, https\\)"
expect_no_log "no plain HTTP listener" "http: listening on .*, http\\)"
expect_no_log "no session used another transport" "session over (QUIC|WebTransport)"
finish_relay "wss relay"

finish
