#!/usr/bin/env bash
# Nothing prints a token or a key. The relay, `moq` and `moq-token` go through their failure
# paths with tokens and key material in every place an operator may put them (peer URLs,
# [cluster] token inline and broken, cluster.node, a malformed key file, a token where a file
# name belongs, client URLs refused by the relay), logging at trace level; then no output
# holds any of the secrets. Each path must really have failed the expected way, so the check
# cannot pass on output that never came.
source "$(dirname "$0")/lib.sh"

TOKEN_TOOL="$MOQ_BUILD_DIR/moq-token"
export MOQ_LOG=trace

"$TOKEN_TOOL" generate --out "$TMP/key.jwk" >/dev/null
"$TOKEN_TOOL" generate --out "$TMP/other.jwk" >/dev/null
"$TOKEN_TOOL" generate --json --out "$TMP/secret.json" >/dev/null
KEY_FILE="$(cat "$TMP/key.jwk")"
SECRET_K="$(sed -n 's/.*"k": *"\([^"]*\)".*/\1/p' "$TMP/secret.json")"
TOKEN="$("$TOKEN_TOOL" --key "$TMP/key.jwk" sign --root "" --publish "" --subscribe "")"
FOREIGN="$("$TOKEN_TOOL" --key "$TMP/other.jwk" sign --root "" --publish "" --subscribe "")"
BROKEN="${TOKEN%.*}" # header and claims without the signature: neither a JWT nor a file
# A key file cut short in the middle of its secret.
printf '{"kty":"oct","alg":"HS256","k":"%s' "$SECRET_K" >"$TMP/cut.jwk"
SECRETS=("$SECRET_K" "$KEY_FILE" "${TOKEN##*.}" "${FOREIGN##*.}" "$BROKEN")
for s in "${SECRETS[@]}"; do ((${#s} >= 20)) || fail "a test secret is too short: $s"; done

# must_fail NAME EXPECTED CMD...: CMD fails, saying EXPECTED; its output goes to $TMP/NAME.out.
must_fail() {
    local name="$1" expected="$2"
    shift 2
    if timeout 20 "$@" >"$TMP/$name.out" 2>&1; then fail "$name: succeeded"; fi
    log_has "$TMP/$name.out" "$expected" || fail "$name: no \"$expected\" in: $(cat "$TMP/$name.out")"
}

relay_args() {
    local port
    port="$(free_port)"
    echo --server-bind "127.0.0.1:$port" --web-http-listen "127.0.0.1:$port" \
        --tls-generate localhost --auth-key "$TMP/key.jwk"
}

note "configuration errors"
# shellcheck disable=SC2046
must_fail broken-token "neither a valid JWT" "$MOQ_RELAY_BIN" $(relay_args) \
    --cluster-connect https://127.0.0.1:1/ --cluster-token "$BROKEN"
cat >"$TMP/broken.toml" <<EOF
[cluster]
connect = ["https://127.0.0.1:1/"]
token = "$BROKEN"
EOF
# shellcheck disable=SC2046
must_fail broken-token-file "neither a valid JWT" "$MOQ_RELAY_BIN" "$TMP/broken.toml" $(relay_args)
# shellcheck disable=SC2046
must_fail peer-scheme "unsupported scheme" "$MOQ_RELAY_BIN" $(relay_args) \
    --cluster-connect "ftp://127.0.0.1/?jwt=$TOKEN"
# shellcheck disable=SC2046
must_fail peer-host "has no host" "$MOQ_RELAY_BIN" $(relay_args) \
    --cluster-connect "https://?jwt=$TOKEN"
# shellcheck disable=SC2046
must_fail node-token "must not carry a token" "$MOQ_RELAY_BIN" $(relay_args) \
    --cluster-node "https://127.0.0.1:1/?jwt=$TOKEN"
# shellcheck disable=SC2046
must_fail cut-key "invalid JSON" "$MOQ_RELAY_BIN" $(relay_args | sed "s#$TMP/key.jwk#$TMP/cut.jwk#")
# shellcheck disable=SC2046
must_fail token-as-key "no key file <redacted>" "$MOQ_RELAY_BIN" $(relay_args | sed "s#$TMP/key.jwk#$TOKEN#")

note "cluster dials refused or failing, and clients refused"
RELAY_KEY="$TMP/key.jwk" start_relay
PEER="https://127.0.0.1:$PORT/"
cat >"$TMP/dialer.toml" <<EOF
[cluster]
connect = ["$PEER", "https://127.0.0.1:$PORT/?jwt=$FOREIGN", "https://127.0.0.1:1/?jwt=$TOKEN"]
token = "$FOREIGN"
[client]
tls.disable_verify = true
timeout = "1s"
EOF
# shellcheck disable=SC2046
"$MOQ_RELAY_BIN" "$TMP/dialer.toml" $(relay_args) >"$TMP/dialer.log" 2>&1 &
DIALER=$!
PIDS+=("$DIALER")
refused() { (($(log_count "$TMP/dialer.log" "refused our credentials") >= 4)); }
wait_for refused || fail "the dialer was not refused"
wait_for log_has "$TMP/dialer.log" "dialing https://127.0.0.1:1/" || fail "no failed dial"
spawn foreign "$MOQ" subscribe "${HTTP_URL}?jwt=$FOREIGN" --broadcast b --track t
wait_exit "$SPAWNED" && fail "a foreign token was accepted"
spawn broken "$MOQ" subscribe "${HTTP_URL}room?jwt=$BROKEN" --broadcast b --track t
wait_exit "$SPAWNED" && fail "a broken token was accepted"
wait_for eval '(($(log_count "$RELAY_LOG" "session refused") >= 4))' ||
    fail "the relay did not refuse the sessions"
must_fail moq-scheme "unsupported" "$MOQ" subscribe "ftp://127.0.0.1/?jwt=$TOKEN" \
    --broadcast b --track t
must_fail moq-command "unknown command" "$MOQ" "https://127.0.0.1/?jwt=$TOKEN"
kill -TERM "$DIALER"
wait_exit "$DIALER" || fail "the dialer did not stop cleanly"
stop_relay

note "moq-token"
must_fail verify-arg "unexpected argument" "$TOKEN_TOOL" --key "$TMP/key.jwk" verify "$TOKEN"
must_fail verify-in "failed to read token" "$TOKEN_TOOL" --key "$TMP/key.jwk" verify --in "$TOKEN"
must_fail verify-foreign "invalid token" sh -c "printf %s '$FOREIGN' | '$TOKEN_TOOL' --key '$TMP/key.jwk' verify"
must_fail sign-cut-key "invalid JSON" "$TOKEN_TOOL" --key "$TMP/cut.jwk" sign --root "" --publish ""
must_fail sign-token-key "failed to read key" "$TOKEN_TOOL" --key "$TOKEN" sign --root "" --publish ""

note "no output holds a secret"
for s in "${SECRETS[@]}"; do
    leaks="$(grep -lF -- "$s" "$TMP"/*.out "$TMP"/*.err "$TMP"/*.log 2>/dev/null || true)"
    [[ -z "$leaks" ]] || fail "a secret (${s:0:6}...) is printed in: $leaks"
done
echo "ok"
