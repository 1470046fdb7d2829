# Shared helpers for the end-to-end relay tests (tests/integration/test_relay_*.sh).
# Source it; it sets `set -euo pipefail`, makes $TMP, and on any exit kills every process
# started with `spawn` or `start_relay` and removes $TMP.
#
#   start_relay [relay flags...]   relay on 127.0.0.1:$PORT (QUIC and HTTP on the same port),
#                                  self-signed certificate, anonymous access; sets PORT,
#                                  HTTP_URL (http://...), QUIC_URL (moql://...), FP (pin),
#                                  RELAY_PID, RELAY_LOG. RELAY_CONFIG=FILE loads a config
#                                  first, RELAY_HOST=[::] listens on another address,
#                                  RELAY_KEY=JWK grants access by token only (no anonymous).
#   spawn NAME CMD...              CMD in the background, stdin from $IN (default /dev/null),
#                                  stdout/stderr to $TMP/NAME.out/.err; sets SPAWNED (its pid)
#   wait_exit PID [SECONDS]        wait for a spawned process; returns its exit status
#   wait_for CMD...                retry CMD (a condition) until it succeeds or 60 s pass
#   fifo_publisher NAME URL ARGS.. `moq publish` whose input the test writes with `send`
#   log_count FILE PATTERN         lines of FILE matching the fixed string PATTERN
#   curl ARGS...                   curl with --max-time $CURL_MAX_TIME (30 s) unless given one
#   ready_file NAME                the --ready-file path for client NAME ($TMP/NAME.ready)
#   wait_ready NAME LINE [N]       wait until client NAME's ready file holds LINE (N times)
#   skip REASON                    report the test as skipped (exit 77, ctest SKIP_RETURN_CODE)
#   require_ipv6                   skip unless the IPv6 loopback (::1) is usable
#   stop_relay                     SIGTERM the relay; fail unless it exits cleanly
#   start_impair NAME udp|tcp PORT [ARGS...]  the impairment proxy (tests/tools/impair.c) in
#                                  front of 127.0.0.1:PORT; sets IMPAIR_PORT, IMPAIR_PID; its
#                                  log is $TMP/NAME.err
#   fail MESSAGE                   print the message and the logs, exit 1

set -euo pipefail

: "${MOQ_BUILD_DIR:?}" "${MOQ_SOURCE_DIR:?}" "${MOQ_RELAY_BIN:?}"
MOQ="$MOQ_BUILD_DIR/moq"
HELPERS="$MOQ_BUILD_DIR/tests"
TMP="$(mktemp -d)"
PIDS=()
# How long a wait gives up after: it only catches a hang (every wait is for a state), so it
# is generous enough for a loaded machine running a sanitizer build.
WAIT_SECONDS="${WAIT_SECONDS:-60}"

# Every curl of a test gives up after CURL_MAX_TIME seconds (a later --max-time wins), so a
# request the relay never answers fails the test instead of hanging the suite.
curl() {
    command curl --max-time "${CURL_MAX_TIME:-30}" "$@"
}

_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
    release_ports
}
trap _cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$TMP"/*.err "$TMP"/*.log; do
        [[ -s "$f" ]] || continue
        echo "--- $(basename "$f") (last lines)" >&2
        tail -n "${FAIL_LOG_LINES:-12}" "$f" >&2
    done
    exit 1
}

note() {
    echo "== $*"
}

spawn() {
    local name="$1"
    shift
    # Emptied here, not only by the child's redirections: a test that waits on what a
    # respawned NAME writes must not read what the previous one wrote before the child runs.
    : >"$TMP/$name.out"
    : >"$TMP/$name.err"
    "$@" <"${IN:-/dev/null}" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

wait_exit() {
    local pid="$1" secs="${2:-$WAIT_SECONDS}" rc=0
    local deadline=$((SECONDS + secs))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            return 124
        fi
        sleep 0.05
    done
    wait "$pid" || rc=$?
    return "$rc"
}

wait_for() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.05
    done
}

log_count() {
    grep -cF -- "$2" "$1" 2>/dev/null || true
}

log_has() {
    grep -qF -- "$2" "$1" 2>/dev/null
}

lines_of() {
    if [[ -f "$1" ]]; then wc -l <"$1"; else echo 0; fi
}

at_least_lines() {
    (($(lines_of "$1") >= $2))
}

# Input that stays open and never delivers a byte (a FIFO a holder process keeps open), for
# publishers that must stay up until signalled: `idle_input VAR` stores its path in VAR.
idle_input() {
    local fifo="$TMP/idle.$RANDOM.fifo"
    mkfifo "$fifo"
    sleep 100000 >"$fifo" &
    PIDS+=("$!")
    printf -v "$1" '%s' "$fifo"
}

# fifo_publisher NAME URL [publish args...]: `moq publish` fed through a FIFO so the test
# decides when frames go out; sets PUB_PID. A separate process holds the FIFO open for
# writing (descriptors of this shell would leak into every process spawned later and keep
# the input from ever ending); `send LINE...` writes lines, `end_input` closes it.
fifo_publisher() {
    local name="$1" url="$2"
    shift 2
    PUB_FIFO="$TMP/$name.fifo"
    rm -f "$PUB_FIFO"
    mkfifo "$PUB_FIFO"
    IN="$PUB_FIFO" spawn "$name" "$MOQ" publish "$url" "$@"
    PUB_PID=$SPAWNED
    sleep 100000 >"$PUB_FIFO" &
    HOLDER=$!
    PIDS+=("$HOLDER")
    # The holder's open returns once the publisher has opened the FIFO as well. A line sent
    # before that would reach the publisher followed by the end of its input.
    wait_for fifo_held || fail "the publisher $name did not open its input"
}

fifo_held() {
    [[ "$(readlink "/proc/$HOLDER/fd/1" 2>/dev/null)" == "$PUB_FIFO" ]]
}

send() { # LINE...
    # bounded: with no publisher left to read, opening the FIFO would block forever
    timeout 30 bash -c 'printf "%s\n" "${@:2}" >"$1"' send "$PUB_FIFO" "$@" ||
        fail "could not send to the publisher's input (${PUB_FIFO##*/})"
}

end_input() {
    kill "$HOLDER" 2>/dev/null || true
    wait "$HOLDER" 2>/dev/null || true
}

has_line() { # FILE LINE
    grep -qx -- "$2" "$1" 2>/dev/null
}

count_lines() { # FILE LINE (0 while FILE does not exist)
    local n
    n=$(grep -cx -- "$2" "$1" 2>/dev/null) || true
    echo "${n:-0}"
}

# Expect a spawned process to exit with status 0 in time.
expect_ok() {
    local pid="$1" what="$2" rc=0
    wait_exit "$pid" || rc=$?
    ((rc == 0)) || fail "$what exited with status $rc"
}

# Write one length-framed frame (4-byte big-endian size) of LEN bytes taken from SOURCE
# (default /dev/urandom) to stdout.
lframe() {
    local len="$1" src="${2:-/dev/urandom}"
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((len >> 24 & 255)) $((len >> 16 & 255)) \
        $((len >> 8 & 255)) $((len & 255)))"
    if ((len > 0)); then head -c "$len" "$src"; fi
}

# Ports for relays come from below the kernel's ephemeral range, so that no client socket
# (curl, the moq tool, a relay dialing a peer) is given one between the choice and the bind,
# or while a relay restarts on its port. A suite reserves each port it picks with a file in
# $MOQ_PORT_LOCKS holding its pid, so suites running side by side (ctest -j) never pick the
# same one; the reservations go when the suite exits, or when its pid is gone.
MOQ_PORT_LOCKS="${MOQ_PORT_LOCKS:-/tmp/moq-test-ports}"

port_listened() { # PORT
    [[ -n "$(ss -Hlnu "sport = :$1" 2>/dev/null)" || -n "$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]]
}

# Take the reservation of PORT for this suite, or reclaim it from a suite that is gone.
reserve_port() { # PORT
    local lock="$MOQ_PORT_LOCKS/$1" owner
    (set -C && echo "$$" >"$lock") 2>/dev/null && return 0
    owner="$(cat "$lock" 2>/dev/null)" || return 1
    [[ -n "$owner" ]] && ! kill -0 "$owner" 2>/dev/null || return 1
    rm -f "$lock"
    (set -C && echo "$$" >"$lock") 2>/dev/null
}

release_ports() {
    local lock
    for lock in "$MOQ_PORT_LOCKS"/*; do
        [[ "$(cat "$lock" 2>/dev/null)" == "$$" ]] && rm -f "$lock"
    done
    return 0
}

# A port that is free for both UDP and TCP on 127.0.0.1, reserved for this suite.
free_port() {
    local p low=32768 high
    read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    ((low > 12000)) || low=32768
    mkdir -p "$MOQ_PORT_LOCKS"
    for _ in $(seq 200); do
        p=$((10000 + RANDOM % (low - 10000)))
        port_listened "$p" && continue
        reserve_port "$p" || continue
        echo "$p"
        return 0
    done
    return 1
}

start_relay() {
    local attempt
    RELAY_LOG="$TMP/relay.log"
    for attempt in 1 2 3 4 5; do
        PORT="$(free_port)" || fail "no free port"
        local access=(--auth-public "")
        [[ -z "${RELAY_KEY:-}" ]] || access=(--auth-key "$RELAY_KEY")
        # A relay started before in this test left "relay: ready" in the log: empty it before
        # the new one starts, or that line would be taken for the new relay's readiness.
        : >"$RELAY_LOG"
        # shellcheck disable=SC2086
        "$MOQ_RELAY_BIN" ${RELAY_CONFIG:-} --server-bind "${RELAY_HOST:-127.0.0.1}:$PORT" \
            --web-http-listen "${RELAY_HOST:-127.0.0.1}:$PORT" --tls-generate localhost \
            "${access[@]}" "$@" >"$RELAY_LOG" 2>&1 &
        RELAY_PID=$!
        PIDS+=("$RELAY_PID")
        local deadline=$((SECONDS + WAIT_SECONDS))
        while ! log_has "$RELAY_LOG" "relay: ready"; do
            kill -0 "$RELAY_PID" 2>/dev/null || break
            ((SECONDS < deadline)) || fail "the relay did not become ready"
            sleep 0.05
        done
        if log_has "$RELAY_LOG" "relay: ready"; then
            HTTP_URL="http://127.0.0.1:$PORT/"
            QUIC_URL="moql://127.0.0.1:$PORT/"
            FP="$(curl -sf "http://127.0.0.1:$PORT/certificate.sha256")" ||
                fail "no certificate fingerprint"
            return 0
        fi
        wait "$RELAY_PID" 2>/dev/null || true
        grep -q "in use" "$RELAY_LOG" || fail "the relay did not start"
    done
    fail "no port to start the relay on"
}

start_impair() {
    local name="$1" mode="$2" to="$3"
    shift 3
    rm -f "$TMP/$name.port"
    spawn "$name" "$HELPERS/impair" "$mode" --listen 127.0.0.1:0 --to "127.0.0.1:$to" \
        --port-file "$TMP/$name.port" --lifetime "${IMPAIR_LIFETIME:-300s}" "$@"
    IMPAIR_PID=$SPAWNED
    wait_for test -s "$TMP/$name.port" || fail "the impairment proxy $name did not start"
    IMPAIR_PORT=$(cat "$TMP/$name.port")
}

relay_alive() {
    kill -0 "$RELAY_PID" 2>/dev/null
}

# Stop the relay with SIGTERM and require a clean exit: status 0 and no sanitizer report
# (under `make sanitize` leaks and undefined behaviour show up here).
stop_relay() {
    relay_alive || fail "the relay died"
    kill -TERM "$RELAY_PID"
    local rc=0
    wait_exit "$RELAY_PID" || rc=$?
    ((rc == 0)) || fail "the relay exited with status $rc"
    if grep -qE "Sanitizer|runtime error" "$RELAY_LOG"; then
        fail "the relay reported a sanitizer error"
    fi
}

# URL and TLS arguments for a transport: "wt" (http:// URL, WebTransport after the pin) or
# "quic" (moql:// with the pinned fingerprint).
url_args() {
    case "$1" in
    wt) echo "$HTTP_URL" ;;
    quic) echo "$QUIC_URL --tls-fingerprint $FP" ;;
    *) fail "unknown transport $1" ;;
    esac
}

# Relay log lines saying the relay attached a subscriber to BROADCAST/TRACK (the relay runs
# with MOQ_LOG including moq=debug when a test needs them).
subscribed_count() {
    log_count "$RELAY_LOG" "subscribed to $1 ("
}

# Condition for wait_for: the relay attached at least N subscribers to BROADCAST/TRACK.
relay_subscribed() {
    (($(subscribed_count "$1") >= $2))
}

# Ready events of the `moq` tool (docs/client.md, --ready-file): give a client
# `--ready-file "$(ready_file NAME)"` and wait for the line that says the relay confirmed
# what the test needs next ("subscribed b/t", "requested b/t", "announced b", "watching p").
# versioned_subscriber NAME BROADCAST VERSION TRANSPORT: `moq subscribe` to BROADCAST/t
# pinned to VERSION over quic ($MOQT_URL, the caller's scheme), ws ($WS_URL) or wt
# ($HTTP_URL), with a ready file; its pid goes to SUBS[NAME].
versioned_subscriber() {
    local url
    case "$4" in
    quic) url=("$MOQT_URL" --tls-fingerprint "$FP") ;;
    ws) url=("$WS_URL") ;;
    wt) url=("$HTTP_URL") ;;
    esac
    spawn "$1" "$MOQ" subscribe "${url[@]}" --broadcast "$2" --track t --moq-version "$3" \
        --ready-file "$(ready_file "$1")"
    SUBS[$1]=$SPAWNED
}

ready_file() { # NAME
    echo "$TMP/$1.ready"
}

ready_count() { # NAME LINE
    count_lines "$(ready_file "$1")" "$2"
}

wait_ready() { # NAME LINE [N]
    local name="$1" line="$2" n="${3:-1}"
    wait_for eval '(($(ready_count "$name" "$line") >= n))' ||
        fail "$name never reported \"$line\"${3:+ $n times} (ready file: $(tr '\n' '|' <"$(ready_file "$name")" 2>/dev/null))"
}

# A test that cannot run here says why and exits 77, which ctest counts as skipped.
skip() { # REASON
    echo "SKIP: $*"
    exit 77
}

# The IPv6 loopback address ::1 is configured (the kernel lists it on lo).
have_ipv6() {
    grep -qE '^0{31}1 ' /proc/net/if_inet6 2>/dev/null
}

require_ipv6() {
    have_ipv6 || skip "no IPv6 loopback (::1) on this machine"
}
