# Shared by tests/interop/test_node_*.sh (sourced, bash): installs the pinned @moq/net client
# (package-lock.json in this folder) under the build directory, starts relays on ephemeral
# loopback ports, runs scenarios.mjs and counts results. No skipping: a missing node/npm or an
# unreachable npm registry is a failure with its reason.

NODE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MOQ_SOURCE_DIR:-$(cd "$NODE_DIR/../../.." && pwd)}
BUILD=${MOQ_BUILD_DIR:-$SRC/build}
RELAY_BIN=${MOQ_RELAY_BIN:-$BUILD/moq-relay}
TOKEN_BIN=$BUILD/moq-token
MOQ_BIN=$BUILD/moq
# Generous per-scenario limit; the scenarios time their own steps (harness.mjs step()).
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-300}

pass=0
fail=0
RELAY_PID=
RELAY_LOG=
HTTP_PORT=
HTTPS_PORT=
QUIC_PORT=
# Background processes a test starts (other than the relay): killed on exit.
BG_PIDS=()
# How long a wait for a state (a log line, a file's content) gives up after: it only catches
# a hang, so it is generous enough for a loaded machine running a sanitizer build.
WAIT=${WAIT:-60}
WORK=$(mktemp -d)

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    stop_relay
    rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

# wait_until SECONDS CMD...: retry the condition CMD until it holds; 1 after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# log_appears PID FILE TEXT: follow FILE as it grows until a line holds TEXT (0); 1 when PID
# exits or $WAIT seconds pass first.
log_appears() {
    grep -qF -m1 -- "$3" < <(timeout "$WAIT" tail -n +1 --pid="$1" -F "$2" 2>/dev/null)
}

abort() {
    echo "FAIL: $*"
    fail=$((fail + 1))
    finish
}

ok() {
    pass=$((pass + 1))
    echo "ok   $*"
}

ko() {
    fail=$((fail + 1))
    echo "FAIL $*"
}

# Install the pinned packages once per lockfile into the build directory (never the source
# tree) and copy the scenario scripts next to them, where Node resolves their imports.
install_client() {
    command -v node >/dev/null || abort "node is not installed (scripts/deps.sh installs nodejs)"
    command -v npm >/dev/null || abort "npm is not installed (scripts/deps.sh installs npm)"
    [ -x "$RELAY_BIN" ] || abort "relay binary not found at $RELAY_BIN (build first)"
    local key
    key=$(sha256sum "$NODE_DIR/package-lock.json" | cut -c1-12)
    CACHE="$BUILD/interop-cache/node-$key"
    if [ ! -f "$CACHE/.installed" ]; then
        rm -rf "$CACHE"
        mkdir -p "$CACHE" || abort "cannot create $CACHE"
        cp "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json" "$CACHE/"
        local out
        if ! out=$(cd "$CACHE" && timeout 300 npm ci --no-audit --no-fund --loglevel=error 2>&1); then
            printf '%s\n' "$out" | tail -20
            abort "could not install @moq/net (see tests/interop/node/package-lock.json) from the" \
                "npm registry: network or registry unavailable; this test needs it and does not skip"
        fi
        touch "$CACHE/.installed"
    fi
    cp "$NODE_DIR"/*.mjs "$CACHE/" || abort "cannot copy the scenario scripts"
    echo "client: @moq/net $(node -p "require('$CACHE/node_modules/@moq/net/package.json').version")," \
        "@moq/qmux $(node -p "require('$CACHE/node_modules/@moq/qmux/package.json').version")," \
        "ws $(node -p "require('$CACHE/node_modules/ws/package.json').version"), node $(node --version)"
}

# start_relay NAME ARGS...: start a relay (anonymous QUIC on an ephemeral port is always
# added) and wait until it is ready; sets RELAY_LOG, QUIC_PORT, HTTP_PORT and HTTPS_PORT from
# its log.
start_relay() {
    local name=$1
    shift
    stop_relay
    RELAY_LOG="$WORK/relay-$name.log"
    "$RELAY_BIN" --server-bind 127.0.0.1:0 --tls-generate localhost --log-level debug "$@" \
        >"$RELAY_LOG" 2>&1 &
    RELAY_PID=$!
    if ! log_appears "$RELAY_PID" "$RELAY_LOG" "relay: ready"; then
        kill -0 "$RELAY_PID" 2>/dev/null && abort "relay $name not ready after $WAIT s"
        tail -20 "$RELAY_LOG"
        RELAY_PID=
        abort "relay $name exited at startup"
    fi
    QUIC_PORT=$(sed -n 's/.*quic: listening on 127\.0\.0\.1:\([0-9]*\) (udp).*/\1/p' "$RELAY_LOG" | head -1)
    HTTP_PORT=$(sed -n 's/.*http: listening on .*(port \([0-9]*\), http).*/\1/p' "$RELAY_LOG" | head -1)
    HTTPS_PORT=$(sed -n 's/.*http: listening on .*(port \([0-9]*\), https).*/\1/p' "$RELAY_LOG" | head -1)
}

stop_relay() {
    RELAY_STATUS=
    if [ -n "$RELAY_PID" ]; then
        kill "$RELAY_PID" 2>/dev/null
        wait "$RELAY_PID" 2>/dev/null
        RELAY_STATUS=$?
        RELAY_PID=
    fi
}

# finish_relay LABEL: the relay survived everything, shuts down cleanly on SIGTERM (exit 0)
# and logged no sanitizer report (the ASan build runs these tests too).
finish_relay() {
    if [ -z "$RELAY_PID" ] || ! kill -0 "$RELAY_PID" 2>/dev/null; then
        ko "$1: relay still running after the scenarios"
        tail -20 "$RELAY_LOG" | sed 's/^/     /'
        RELAY_PID=
        return
    fi
    stop_relay
    local report
    report=$(grep -E "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$RELAY_LOG" | head -3)
    if [ "$RELAY_STATUS" = 0 ] && [ -z "$report" ]; then
        ok "$1: relay shut down cleanly"
    else
        ko "$1: relay exit status $RELAY_STATUS on SIGTERM"
        printf '%s\n' "$report" | sed 's/^/     /'
        tail -20 "$RELAY_LOG" | sed 's/^/     /'
    fi
}

# scenario LABEL NAME JSON: run one scenario of scenarios.mjs and count it. Extra environment
# for node can be given through SCENARIO_ENV (an array of NAME=VALUE).
scenario() {
    scenario_start "$2" "$3"
    scenario_end "$1"
}

# scenario_start NAME JSON / scenario_wait LINE / scenario_end LABEL: the same in steps, for
# a scenario that prints progress lines the test reacts to before its result: start it in
# the background, wait until it printed LINE (returns 1 if it exited first or 30 s passed),
# then wait for its result and count it.
scenario_start() {
    SCN_NAME=$1
    SCN_OUT="$WORK/node-$$-$RANDOM.out"
    SCN_ERR="${SCN_OUT%.out}.err"
    env "${SCENARIO_ENV[@]}" timeout "$SCENARIO_TIMEOUT" node "$CACHE/scenarios.mjs" "$1" "$2" \
        >"$SCN_OUT" 2>"$SCN_ERR" &
    SCN_PID=$!
    BG_PIDS+=("$SCN_PID")
}

scenario_wait() {
    local i
    for i in $(seq 1 300); do
        grep -qx -- "$1" "$SCN_OUT" && return 0
        kill -0 "$SCN_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -qx -- "$1" "$SCN_OUT"
}

scenario_end() {
    local label=$1 name=$SCN_NAME out rc=0
    wait "$SCN_PID" || rc=$?
    # the result line and what follows it; progress lines before it are not part of it
    out=$(sed -n '/^\(ok\|FAIL\) /,$p' "$SCN_OUT")
    [ -n "$out" ] || out=$(cat "$SCN_OUT")
    if [ $rc -eq 0 ] && [[ $out == ok* ]]; then
        ok "$label: ${out#ok "$name": }"
    else
        [ $rc -eq 124 ] && out="killed after ${SCENARIO_TIMEOUT} s: $out"
        ko "$label (exit $rc)"
        printf '%s\n' "$out" | sed 's/^/     /' | head -20
        echo "     --- client stderr (last lines):"
        tail -8 "$SCN_ERR" | sed 's/^/     /'
        echo "     --- relay log (last lines):"
        tail -12 "$RELAY_LOG" | sed 's/^/     /'
    fi
}

# expect_log LABEL PATTERN: the current relay's log matches the extended regex.
expect_log() {
    if grep -Eq "$2" "$RELAY_LOG"; then ok "$1"; else ko "$1 (no /$2/ in the relay log)"; fi
}

# expect_no_log LABEL PATTERN: the current relay's log does not match.
expect_no_log() {
    local hit
    if hit=$(grep -E "$2" "$RELAY_LOG" | head -3) && [ -n "$hit" ]; then
        ko "$1"
        printf '%s\n' "$hit" | sed 's/^/     /'
    else
        ok "$1"
    fi
}
