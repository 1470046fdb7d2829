#!/usr/bin/env bash
# The `moq` command's contract: help and version exit 0, usage errors exit 2 with a hint,
# runtime failures exit 1 with a message naming the problem (nothing listening, a wrong
# certificate pin or an untrusted certificate, with the ways to trust it, an unresolvable
# name, a relay that shuts down under a subscriber).
source "$(dirname "$0")/lib.sh"
start_relay

status_of() { # prints the exit status of CMD, its stderr in $TMP/cli.err
    local rc=0
    "$@" >"$TMP/cli.out" 2>"$TMP/cli.err" </dev/null || rc=$?
    echo "$rc"
}
expect_status() { # STATUS STDERR-SUBSTRING CMD...
    local want="$1" msg="$2" got
    shift 2
    got="$(status_of "$@")"
    [[ "$got" == "$want" ]] || fail "'$*' exited $got, not $want: $(cat "$TMP/cli.err")"
    [[ -z "$msg" ]] || grep -qF -- "$msg" "$TMP/cli.err" ||
        fail "'$*' did not say '$msg': $(cat "$TMP/cli.err")"
}

note "help, version and usage errors"
expect_status 0 "" "$MOQ" --help
grep -q "clock subscribe" "$TMP/cli.out" || fail "--help lists no commands"
expect_status 0 "" "$MOQ" --version
grep -q "^moq [0-9]" "$TMP/cli.out" || fail "--version printed: $(cat "$TMP/cli.out")"
for cmd in publish subscribe fetch announced "clock publish" "clock subscribe"; do
    # shellcheck disable=SC2086
    expect_status 0 "" "$MOQ" $cmd --help
    grep -q -- "--tls-fingerprint" "$TMP/cli.out" || fail "moq $cmd --help lacks the TLS options"
done
expect_status 2 "" "$MOQ"
expect_status 2 "unknown command" "$MOQ" launch "$HTTP_URL"
expect_status 2 "missing URL" "$MOQ" subscribe --broadcast b --track t
expect_status 2 "missing --broadcast" "$MOQ" subscribe "$HTTP_URL" --track t
expect_status 2 "missing --track" "$MOQ" publish "$HTTP_URL" --broadcast b
expect_status 2 "unknown option" "$MOQ" subscribe "$HTTP_URL" --broadcast b --track t --bogus
expect_status 2 "invalid value" "$MOQ" publish "$HTTP_URL" --broadcast b --track t --framing xml
expect_status 2 "invalid value" "$MOQ" subscribe "$HTTP_URL" --broadcast b --track t --moq-version 07
expect_status 2 "unsupported URL scheme" "$MOQ" subscribe "ftp://127.0.0.1:$PORT/" --broadcast b --track t
expect_status 2 "cannot be combined" "$MOQ" subscribe "$QUIC_URL" --broadcast b --track t \
    --tls-disable-verify --tls-fingerprint "$FP"

note "runtime failures"
dead="$(free_port)"
expect_status 1 "timed out during the QUIC handshake" "$MOQ" subscribe "moql://127.0.0.1:$dead/" \
    --tls-disable-verify --broadcast b --track t --timeout 500ms
expect_status 1 "certificate.sha256" "$MOQ" subscribe "http://127.0.0.1:$dead/" --broadcast b --track t
# A certificate that is not trusted: the message says why and names every way to trust it.
tls_refused() { # CMD...
    expect_status 1 "the server's certificate is not trusted" "$@"
    local fix
    for fix in "http:// URL" "--tls-fingerprint HEX" "--tls-root FILE"; do
        grep -qF -- "$fix" "$TMP/cli.err" || fail "'$*' did not name $fix: $(cat "$TMP/cli.err")"
    done
}
tls_refused "$MOQ" subscribe "$QUIC_URL" --broadcast b --track t \
    --tls-fingerprint 0000000000000000000000000000000000000000000000000000000000000000
grep -q "matches no pinned fingerprint" "$TMP/cli.err" || fail "no reason for the refused pin"
tls_refused "$MOQ" subscribe "https://127.0.0.1:$PORT/" --broadcast b --track t
grep -q "issuer is unknown" "$TMP/cli.err" || fail "no reason for the untrusted certificate"
tls_refused "$MOQ" subscribe "https://localhost:$PORT/" --broadcast b --track t \
    --tls-root "$MOQ_SOURCE_DIR/tests/fixtures/tls/ca.pem"
expect_status 1 "cannot resolve" "$MOQ" subscribe "moql://no-such-host.invalid/" --broadcast b --track t

note "moq publish says once that it waits for a subscriber"
fifo_publisher waiter "$HTTP_URL" --broadcast waiter --track t
wait_for log_has "$TMP/waiter.err" "waiting for a subscriber to waiter" || fail "no waiting message"
spawn one "$MOQ" subscribe "$HTTP_URL" --broadcast waiter --track t --count 1
one=$SPAWNED
wait_for log_has "$TMP/waiter.err" "track t requested by the relay" || fail "no subscriber came"
send hello
expect_ok "$one" "the subscriber"
wait_for log_has "$TMP/waiter.err" "track t released by the relay" || fail "the track was not released"
end_input
expect_ok "$PUB_PID" "the publisher"
(($(log_count "$TMP/waiter.err" "waiting for a subscriber") == 1)) ||
    fail "the publisher did not say once that it waits: $(cat "$TMP/waiter.err")"

note "the relay goes away under a subscriber"
spawn waiting "$MOQ" subscribe "$HTTP_URL" --broadcast nobody --track t
waiting=$SPAWNED
wait_for log_has "$TMP/waiting.err" "waiting for nobody" || fail "the subscriber did not connect"
stop_relay
rc=0
wait_exit "$waiting" || rc=$?
((rc == 1)) || fail "the subscriber exited $rc when the relay shut down"
grep -q "ended" "$TMP/waiting.err" || fail "no message about the lost connection"
echo "PASS"
