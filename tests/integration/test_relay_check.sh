#!/usr/bin/env bash
# moq-relay --check CONFIG: a valid configuration prints its effective settings with where
# each came from and exits 0 without binding anything (it succeeds next to a running relay on
# the same ports); a broken one exits 1 with FILE:LINE:COL errors, nothing on stdout:
# syntax, a bad value, a certificate or key file that does not load. No secret is printed.
source "$(dirname "$0")/lib.sh"
TOKEN="eyJhbGciOiJIUzI1NiJ9.eyJyb290IjoiIn0.c2VjcmV0LXNpZ25hdHVyZQ"

check() { # NAME ARGS...: run --check, stdout/stderr to $TMP/NAME.out/.err, status in RC
    local name="$1"
    shift
    RC=0
    "$MOQ_RELAY_BIN" --check "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null || RC=$?
}
no_secret() { # NAME
    if grep -qe "$TOKEN" -e "c2VjcmV0" -e "iroh-secret-value" "$TMP/$1.out" "$TMP/$1.err"; then
        fail "$1: a secret was printed"
    fi
}

note "a valid file: the effective settings and their sources"
"$MOQ_BUILD_DIR/moq-token" generate --out "$TMP/root.jwk" >/dev/null 2>&1
cat >"$TMP/relay.toml" <<TOML
[server]
bind = "127.0.0.1:4443"

[server.tls]
generate = ["localhost"]

[auth]
key = "$TMP/root.jwk"

[cluster]
token = "$TOKEN"
connect = ["https://peer.example:443/?jwt=$TOKEN"]

[iroh]
secret = "iroh-secret-value"
TOML
check valid "$TMP/relay.toml"
((RC == 0)) || fail "a valid file: exit $RC: $(cat "$TMP/valid.err")"
head -1 "$TMP/valid.out" | grep -qF "$TMP/relay.toml is valid" || fail "no verdict line"
grep -qxF "server.bind = \"127.0.0.1:4443\"  # $TMP/relay.toml:2:1" "$TMP/valid.out" ||
    fail "server.bind and its position: $(grep server.bind "$TMP/valid.out")"
grep -qxF "auth.key = \"$TMP/root.jwk\"  # $TMP/relay.toml:8:1" "$TMP/valid.out" || fail "auth.key"
grep -qxF 'server.quic.idle_timeout = "30s"  # default' "$TMP/valid.out" || fail "defaults"
grep -qxF 'cluster.token = "<redacted>"  # '"$TMP/relay.toml:11:1" "$TMP/valid.out" ||
    fail "the cluster token: $(grep cluster.token "$TMP/valid.out")"
grep -qF 'cluster.connect = ["https://peer.example/?jwt=<redacted>"]' "$TMP/valid.out" ||
    grep -qF 'cluster.connect = ["https://peer.example:443/?jwt=<redacted>"]' "$TMP/valid.out" ||
    fail "the peer URL: $(grep cluster.connect "$TMP/valid.out")"
no_secret valid

note "environment and flags override the file and say so"
MOQ_SERVER_BIND="127.0.0.1:5000" check env "$TMP/relay.toml" --web-http-listen 127.0.0.1:5001
((RC == 0)) || fail "env: exit $RC"
grep -qxF 'server.bind = "127.0.0.1:5000"  # MOQ_SERVER_BIND' "$TMP/env.out" || fail "env source"
grep -qxF 'web.http.listen = "127.0.0.1:5001"  # --web-http-listen' "$TMP/env.out" ||
    fail "flag source"

note "--check binds nothing: it passes next to a relay on the same ports (ExecStartPre)"
start_relay
check beside --file "$TMP/relay.toml" --server-bind "127.0.0.1:$PORT" \
    --web-http-listen "127.0.0.1:$PORT"
((RC == 0)) || fail "--check next to a running relay: exit $RC: $(cat "$TMP/beside.err")"
stop_relay

note "errors: FILE:LINE:COL, exit 1, nothing on stdout"
expect_error() { # NAME MESSAGE
    ((RC == 1)) || fail "$1: exit $RC, not 1"
    [[ ! -s "$TMP/$1.out" ]] || fail "$1: printed settings: $(head -2 "$TMP/$1.out")"
    grep -qF -- "$2" "$TMP/$1.err" || fail "$1: $(cat "$TMP/$1.err")"
    no_secret "$1"
}
printf '[server\nbind = "x"\n' >"$TMP/syntax.toml"
check syntax "$TMP/syntax.toml"
expect_error syntax "moq-relay: $TMP/syntax.toml:1:8: expected ']'"
printf '[server]\nbind = "127.0.0.1:1"\n\n[auth]\n  key = 5\n' >"$TMP/type.toml"
check type "$TMP/type.toml"
expect_error type "moq-relay: $TMP/type.toml:5:9: auth.key must be a string, not integer"
printf '[server.tls]\ncert = ["%s/none.pem"]\nkey = ["%s/none.key"]\n[auth]\npublic = ""\n' \
    "$TMP" "$TMP" >"$TMP/cert.toml"
check cert "$TMP/cert.toml"
expect_error cert "moq-relay: $TMP/cert.toml:2:1: server.tls.cert: certificate file $TMP/none.pem"
grep -qF "1 problem(s); the relay would not start" "$TMP/cert.err" || fail "no summary"
echo '{"kty":"oct"}' >"$TMP/broken.jwk"
check key "$TMP/relay.toml" --auth-key "$TMP/broken.jwk"
expect_error key "moq-relay: --auth-key: auth.key: "
grep -qF "$TMP/broken.jwk" "$TMP/key.err" || fail "the broken key file is not named"
printf '[cluster]\nconnect = ["ftp://peer/?jwt=%s"]\n[auth]\npublic = ""\n' "$TOKEN" >"$TMP/url.toml"
check url "$TMP/url.toml"
expect_error url "moq-relay: $TMP/url.toml:2:12: cluster.connect: unsupported scheme"
note "ok"
