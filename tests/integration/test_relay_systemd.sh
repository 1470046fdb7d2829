#!/usr/bin/env bash
# The relay as a systemd Type=notify service, with a notify socket of the test's own
# (helpers/notify_listener): READY=1 arrives only once every listener is bound (QUIC, HTTP
# and [internal] accept at that very moment), from the relay's own pid; STOPPING=1 on
# SIGTERM before a clean exit; WATCHDOG=1 at half of $WATCHDOG_USEC, over an
# abstract-namespace socket; and `--file PATH`, as upstream's packaged unit passes the config.
# `systemd-analyze verify` checks dist/systemd/moq-relay.service.
source "$(dirname "$0")/lib.sh"
LISTENER="$HELPERS/notify_listener"

# distinct free ports for the three listeners
QUIC_PORT="$(free_port)"
HTTP_PORT="$(free_port)"
while [[ "$HTTP_PORT" == "$QUIC_PORT" ]]; do HTTP_PORT="$(free_port)"; done
INTERNAL_PORT="$(free_port)"
while [[ "$INTERNAL_PORT" == "$QUIC_PORT" || "$INTERNAL_PORT" == "$HTTP_PORT" ]]; do
    INTERNAL_PORT="$(free_port)"
done
cat >"$TMP/relay.toml" <<EOF
[server]
bind = "127.0.0.1:$QUIC_PORT"
tls.generate = ["localhost"]
[web.http]
listen = "127.0.0.1:$HTTP_PORT"
[internal]
listen = "127.0.0.1:$INTERNAL_PORT"
[auth]
public = ""
EOF

start_listener() { # NAME SOCKET: a notify socket; sets NOTIFY_OUT
    spawn "$1" "$LISTENER" "$2" "udp:$QUIC_PORT" "tcp:$HTTP_PORT" "tcp:$INTERNAL_PORT"
    NOTIFY_OUT="$TMP/$1.out"
    wait_for has_line "$NOTIFY_OUT" "listening" || fail "the notify listener did not start"
}

note "READY=1 once every listener is bound (--file, socket path)"
start_listener notify "$TMP/notify.sock"
NOTIFY_SOCKET="$TMP/notify.sock" spawn relay "$MOQ_RELAY_BIN" --file "$TMP/relay.toml"
RELAY_PID=$SPAWNED
RELAY_LOG="$TMP/relay.err"
wait_for has_line "$NOTIFY_OUT" "READY=1" || fail "no READY=1: $(cat "$NOTIFY_OUT")"
for state in "udp:$QUIC_PORT bound" "tcp:$HTTP_PORT open" "tcp:$INTERNAL_PORT open" \
    "datagram from pid $RELAY_PID" "MAINPID=$RELAY_PID"; do
    has_line "$NOTIFY_OUT" "$state" ||
        fail "when READY=1 arrived, not '$state': $(cat "$NOTIFY_OUT")"
done
log_has "$RELAY_LOG" "loaded $TMP/relay.toml" || fail "--file did not load the config"
# READY=1 is sent once, after the listeners: nothing about stopping yet
(($(count_lines "$NOTIFY_OUT" "READY=1") == 1)) || fail "READY=1 sent more than once"
! has_line "$NOTIFY_OUT" "STOPPING=1" || fail "STOPPING=1 before any signal"
curl -sf "http://127.0.0.1:$INTERNAL_PORT/health" >/dev/null || fail "[internal] /health failed"

note "STOPPING=1 on SIGTERM, then a clean exit"
stop_relay
wait_for has_line "$NOTIFY_OUT" "STOPPING=1" || fail "no STOPPING=1: $(cat "$NOTIFY_OUT")"
! has_line "$NOTIFY_OUT" "WATCHDOG=1" || fail "WATCHDOG=1 sent though no watchdog was asked for"

note "WATCHDOG=1 pings when \$WATCHDOG_USEC asks, abstract socket, positional config"
abstract="@moq-relay-test-$$-$RANDOM"
start_listener notify2 "$abstract"
NOTIFY_SOCKET="$abstract" WATCHDOG_USEC=200000 spawn relay2 "$MOQ_RELAY_BIN" "$TMP/relay.toml"
RELAY_PID=$SPAWNED
RELAY_LOG="$TMP/relay2.err"
wait_for has_line "$NOTIFY_OUT" "READY=1" || fail "no READY=1 on the abstract socket"
has_line "$NOTIFY_OUT" "udp:$QUIC_PORT bound" || fail "READY=1 before the QUIC socket was bound"
pings() { (($(count_lines "$NOTIFY_OUT" "WATCHDOG=1") >= $1)); }
wait_for pings 3 || fail "fewer than 3 WATCHDOG=1 pings: $(cat "$NOTIFY_OUT")"
log_has "$RELAY_LOG" "watchdog: pinging the service manager every 0.1 s" ||
    fail "the relay did not log its watchdog interval"
stop_relay
wait_for has_line "$NOTIFY_OUT" "STOPPING=1" || fail "no STOPPING=1 on the abstract socket"

note "a notify socket nobody listens on is a warning, not a failure"
NOTIFY_SOCKET="$TMP/nobody.sock" spawn relay3 "$MOQ_RELAY_BIN" "$TMP/relay.toml"
RELAY_PID=$SPAWNED
RELAY_LOG="$TMP/relay3.err"
wait_for log_has "$RELAY_LOG" "cannot tell the service manager" || fail "no warning"
curl -sf "http://127.0.0.1:$INTERNAL_PORT/health" >/dev/null || fail "the relay is not serving"
stop_relay

command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze is not installed (apt package systemd; scripts/deps.sh installs it)"
note "systemd-analyze verify dist/systemd/moq-relay.service"
# verify wants the ExecStart binary where the unit says: point it at this build's
sed "s|/usr/local/bin/moq-relay|$MOQ_RELAY_BIN|" \
    "$MOQ_SOURCE_DIR/dist/systemd/moq-relay.service" >"$TMP/moq-relay.service"
MANPATH="$MOQ_BUILD_DIR/man" systemd-analyze verify "$TMP/moq-relay.service" >"$TMP/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
[[ ! -s "$TMP/verify.log" ]] || fail "systemd-analyze verify warns: $(cat "$TMP/verify.log")"
echo "PASS"
