#!/usr/bin/env bash
# What an operator reads when the relay cannot do what it was asked: a port already in use
# names the flag and the environment variable that move it (QUIC, HTTP and internal
# listeners; exit 1), a cluster dial to a peer whose certificate is not trusted says why and
# names the [client] tls settings that trust it, and --help marks options that are accepted
# but have no effect.
source "$(dirname "$0")/lib.sh"
start_relay

startup_fails() { # NAME MESSAGE RELAY-ARGS...: the relay exits 1 at startup saying MESSAGE
    local name="$1" msg="$2" rc=0
    shift 2
    "$MOQ_RELAY_BIN" --tls-generate localhost --auth-public "" "$@" >"$TMP/$name.log" 2>&1 || rc=$?
    ((rc == 1)) || fail "$name: the relay exited $rc, not 1"
    grep -qF -- "$msg" "$TMP/$name.log" || fail "$name: $(grep ERROR "$TMP/$name.log")"
}

note "a port in use names the option that moves it"
other="$(free_port)"
startup_fails quic-in-use "QUIC listener on 127.0.0.1:$PORT: address already in use" \
    --server-bind "127.0.0.1:$PORT"
grep -qF -- "--server-bind or MOQ_SERVER_BIND (server.bind" "$TMP/quic-in-use.log" ||
    fail "no option named: $(grep ERROR "$TMP/quic-in-use.log")"
startup_fails http-in-use "choose another address with --web-http-listen or MOQ_WEB_HTTP_LISTEN" \
    --server-bind "127.0.0.1:$other" --web-http-listen "127.0.0.1:$PORT"
startup_fails internal-in-use "choose another address with --internal-listen or MOQ_INTERNAL_LISTEN" \
    --server-bind "127.0.0.1:$other" --internal-listen "127.0.0.1:$PORT"

note "a cluster peer whose certificate is not trusted"
leaf="$(free_port)"
"$MOQ_RELAY_BIN" --server-bind "127.0.0.1:$leaf" --tls-generate localhost --auth-public "" \
    --cluster-connect "https://localhost:$PORT/" >"$TMP/leaf.log" 2>&1 &
PIDS+=("$!")
wait_for log_has "$TMP/leaf.log" "certificate is not trusted" ||
    fail "the leaf did not report the untrusted certificate"
for fix in "[client] tls.fingerprint (--client-tls-fingerprint" "tls.root (--client-tls-root"; do
    grep -qF -- "$fix" "$TMP/leaf.log" || fail "the leaf did not name $fix: $(grep cluster "$TMP/leaf.log")"
done

note "--help marks options without effect"
"$MOQ_RELAY_BIN" --help >"$TMP/help.out"
for flag in --stats-enabled --stats-prefix; do
    grep -E -- "^  $flag[ [].*\[accepted, no effect\]" "$TMP/help.out" >/dev/null ||
        fail "--help does not mark $flag"
done
for flag in --server-bind --server-tls-root --web-https-root --client-tls-cert --client-tls-key; do
    ! grep -E -- "^  $flag[ [].*no effect" "$TMP/help.out" >/dev/null || fail "$flag is marked"
done

note "the open files limit is raised to the hard limit and logged"
hard="$(ulimit -Hn)"
if [[ "$hard" != unlimited ]] && ((hard > 256)); then
    lowfd="$(free_port)"
    (
        ulimit -Sn 256
        exec "$MOQ_RELAY_BIN" --server-bind "127.0.0.1:$lowfd" --tls-generate localhost --auth-public ""
    ) >"$TMP/lowfd.log" 2>&1 &
    PIDS+=("$!")
    wait_for log_has "$TMP/lowfd.log" "relay: ready" || fail "the relay with 256 descriptors did not start"
    grep -qF "open files limit raised from 256 to $hard (the hard limit)" "$TMP/lowfd.log" ||
        fail "no line about the raised limit: $(grep -i 'open files' "$TMP/lowfd.log")"
    [[ "$(awk '/Max open files/ { print $4 }' "/proc/${PIDS[-1]}/limits")" == "$hard" ]] ||
        fail "the relay's soft limit is not $hard"
fi

stop_relay
echo "PASS"
