#!/usr/bin/env bash
# WebTransport over HTTP/3 between headless Chromium and moq-relay, with the published JS
# client @moq/net@0.3.4 (bundled into a page by esbuild, driven by playwright-core), plus
# the mixed case: the browser publishes over WebTransport while a Node @moq/net client
# subscribes over WebSocket and, when $MOQ_BUILD_DIR/moq exists, the native tool over raw
# QUIC, and moq-lite-02 ("moql", compat SETUP) and IETF moq-transport drafts 17 and 20 over
# WebTransport, within a protocol and across protocols. IETF draft 14 runs against a second
# relay whose [server] version lists moq-transport-14 and moq-lite 05-03 but not moq-lite-02/01,
# so the client's compat SETUP over "moql" lands on draft 14 (the same page and browser); it
# is paired with itself and with moq-lite-05 both ways. The checks themselves are in
# tests/interop/browser/driver.mjs; this script installs what they need, starts both relays
# on free ports and adds checks on the relays' logs and exits.
#
# Needs Debian's chromium (ctest's setup_chromium installs it through scripts/deps.sh with
# MOQ_DEPS_BROWSER=1), node, npm and the npm registry (packages pinned by browser/package.json
# and its lock, installed under $MOQ_BUILD_DIR/interop-cache/browser). Nothing is skipped:
# a missing browser or package is a failure with the reason.
# Prints "N passed, M failed"; exits non-zero on any failure.
# Env: MOQ_BROWSER_NETLOG=<file> keeps Chromium's net-log; MOQ_BROWSER_KEEP=1 keeps the
# work directory (relays' logs, bundle) and prints where it is; MOQ_BROWSER_ONLY=<regex> runs
# only the driver's checks whose name matches (include "page loads", which loads the page).
set -u

BUILD=${MOQ_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
SRC=${MOQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
RELAY=${MOQ_RELAY_BIN:-$BUILD/moq-relay}
HERE="$SRC/tests/interop/browser"
CACHE="$BUILD/interop-cache/browser"
CHROMIUM=/usr/bin/chromium

pass=0
fail=0
relay_pid=""
relay14_pid=""
WORK=""

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

abort() {
    echo "FAIL $*"
    fail=$((fail + 1))
    finish
}

ok() {
    pass=$((pass + 1))
    echo "ok   $*"
}

bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    shift
    [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/     /' | head -30
}

cleanup() {
    local pid
    for pid in "$relay_pid" "$relay14_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    if [ -n "$WORK" ]; then
        if [ "${MOQ_BROWSER_KEEP:-0}" = 1 ]; then
            echo "work directory kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT

[ -x "$RELAY" ] || abort "moq-relay not found at $RELAY (build first)"
command -v node >/dev/null || abort "node is not installed (scripts/deps.sh installs nodejs)"
command -v npm >/dev/null || abort "npm is not installed (scripts/deps.sh installs npm)"

# ---- Chromium: Debian's package, installed by ctest's setup_chromium fixture ----
[ -x "$CHROMIUM" ] ||
    abort "$CHROMIUM is missing: install it with MOQ_DEPS_BROWSER=1 scripts/deps.sh (ctest's setup_chromium does); this test does not skip"
version=$("$CHROMIUM" --version 2>/dev/null | head -1)
[ -n "$version" ] || abort "$CHROMIUM does not run"
ok "chromium installed: $version"

# ---- npm packages, pinned by package.json + package-lock.json, cached per build dir ----
install_js() {
    if [ -d "$CACHE/node_modules/@moq/net" ] && cmp -s "$HERE/package-lock.json" "$CACHE/package-lock.json"; then
        return 0
    fi
    rm -rf "$CACHE"
    mkdir -p "$CACHE" || return 1
    cp "$HERE/package.json" "$HERE/package-lock.json" "$CACHE/" || return 1
    (cd "$CACHE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) || return 1
    [ -f "$CACHE/node_modules/@moq/net/package.json" ]
}
install_js || abort "could not install the pinned npm packages (@moq/net, esbuild, playwright-core, ws)" \
    "from the npm registry; this test needs them and does not skip"
ok "npm packages installed: @moq/net $(node -p "require('$CACHE/node_modules/@moq/net/package.json').version")"

# ---- the page: sources copied next to node_modules, bundled with esbuild ----
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
mkdir -p "$WORK/page" "$WORK/example" "$WORK/out"
cp "$HERE"/*.js "$HERE"/*.mjs "$WORK/" && cp "$HERE"/page/* "$WORK/page/" &&
    cp "$HERE"/example/* "$WORK/example/" || abort "cannot copy the page sources into $WORK"
ln -s "$CACHE/node_modules" "$WORK/node_modules"
bundle() { # ENTRY OUT
    "$CACHE/node_modules/.bin/esbuild" "$1" --bundle --format=esm --outfile="$2" --log-level=warning 2>&1
}
if out=$(bundle "$WORK/page/app.js" "$WORK/out/app.js") &&
    out=$(bundle "$WORK/example/main.js" "$WORK/out/example.js"); then
    ok "test page and docs example bundled with esbuild"
else
    abort "esbuild could not bundle the pages: $out"
fi

# docs/browser.md shows the example files verbatim: each fenced block whose first lines
# names "moq-relay browser example: FILE" must equal that file.
doc_block() { # FILE: print the docs/browser.md code block of that example file
    awk -v name="moq-relay browser example: $1 " '
        /^```/ { if (inb) { if (hit) exit; inb = 0; n = 0; next } inb = 1; next }
        inb { line[++n] = $0; if (n <= 2 && index($0, name)) hit = 1 }
        END { if (hit) for (i = 1; i <= n; i++) print line[i] }' "$SRC/docs/browser.md"
}
doc_ok=1
for f in index.html main.js; do
    if ! diff <(doc_block "$f") "$HERE/example/$f" >"$WORK/doc.diff" 2>&1; then
        bad "docs/browser.md shows example/$f as it is" "$(head -20 "$WORK/doc.diff")"
        doc_ok=0
    fi
done
[ "$doc_ok" = 1 ] && ok "docs/browser.md shows the tested example files verbatim"

# ---- the relays: QUIC (h3 + moq-lite) and HTTP on one free port each, dual stack ----
LOG="$WORK/relay.log"
LOG14="$WORK/relay14.log"
STARTED_PID=""
start_relay() { # PORT LOG [RELAY-ARGS...]: sets STARTED_PID
    local port=$1 log=$2
    shift 2
    : >"$log" # (not the lines of an attempt before)
    # A short idle timeout: a tab Chromium drops without closing its session is reaped
    # within seconds; keep-alive PINGs every 2 s keep the live sessions open.
    "$RELAY" --server-bind "[::]:$port" --web-http-listen "[::]:$port" --tls-generate localhost \
        --auth-public "" --server-quic-idle-timeout 5s --server-quic-keep-alive 2s \
        --log-level debug "$@" >"$log" 2>&1 &
    STARTED_PID=$!
    # Follow the log up to a minute for a relay that is alive ("ready" follows both listeners);
    # only one that exited is given another port.
    grep -qF -m1 "relay: ready" < <(timeout 60 tail -n +1 --pid="$STARTED_PID" -F "$log" 2>/dev/null) &&
        return 0
    kill "$STARTED_PID" 2>/dev/null
    wait "$STARTED_PID" 2>/dev/null
    STARTED_PID=""
    return 1
}
start_relay_on_free_port() { # LOG [RELAY-ARGS...]: sets STARTED_PORT and STARTED_PID
    local p
    STARTED_PORT=""
    for _ in 1 2 3; do
        p=$(node "$HERE/freeport.mjs") || continue
        if start_relay "$p" "$@"; then
            STARTED_PORT=$p
            return 0
        fi
    done
    return 1
}
start_relay_on_free_port "$LOG" || abort "the relay did not start:" "$(tail -20 "$LOG")"
PORT=$STARTED_PORT relay_pid=$STARTED_PID
ok "relay listening on [::]:$PORT (QUIC and HTTP)"
start_relay_on_free_port "$LOG14" --server-version moq-lite-05 --server-version moq-lite-04 \
    --server-version moq-lite-03 --server-version moq-transport-14 ||
    abort "the draft-14 relay did not start:" "$(tail -20 "$LOG14")"
PORT14=$STARTED_PORT relay14_pid=$STARTED_PID
ok "draft-14 relay (moq-lite 05-03 and moq-transport-14) listening on [::]:$PORT14"

# ---- the browser checks ----
driver_args=()
[ -n "${MOQ_BROWSER_ONLY:-}" ] && driver_args+=(--only "$MOQ_BROWSER_ONLY")
if [ -x "$BUILD/moq" ]; then
    driver_args+=(--moq "$BUILD/moq")
else
    echo "note: $BUILD/moq is not built: the raw QUIC subscriber check is left out"
fi
driver_out="$WORK/driver.out"
timeout 300 node "$WORK/driver.mjs" --relay "http://localhost:$PORT/" --relay-log "$LOG" \
    --relay14 "http://localhost:$PORT14/" --relay14-log "$LOG14" --dir "$WORK" --chromium "$CHROMIUM" "${driver_args[@]}" >"$driver_out" 2>&1
driver_rc=$?
cat "$driver_out"
n_ok=$(grep -c '^ok ' "$driver_out")
n_fail=$(grep -c '^FAIL ' "$driver_out")
pass=$((pass + n_ok))
fail=$((fail + n_fail))
if [ "$driver_rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
    bad "driver exited with status $driver_rc" "$(tail -20 "$driver_out")"
fi
[ "$n_ok" -gt 0 ] || bad "the driver ran no check"

# ---- the relays' side of it ----
check_relay_log() { # NAME LOG
    if grep -q "closing HTTP/3 connection" "$2"; then
        bad "no HTTP/3 connection errors in the $1 log" "$(grep "closing HTTP/3 connection" "$2" | head -5)"
    else
        ok "no HTTP/3 connection errors in the $1 log"
    fi
    if grep -E " ERROR |AddressSanitizer|LeakSanitizer|runtime error:" "$2" >/dev/null; then
        bad "no errors or sanitizer reports in the $1 log" \
            "$(grep -E " ERROR |AddressSanitizer|LeakSanitizer|runtime error:" "$2" | head -10)"
    else
        ok "no errors or sanitizer reports in the $1 log"
    fi
}
stop_relay() { # NAME PID LOG
    if kill -0 "$2" 2>/dev/null; then
        kill -TERM "$2"
        wait "$2"
        local rc=$?
        if [ "$rc" -eq 0 ]; then
            ok "$1 shut down cleanly"
        else
            bad "$1 shut down cleanly" "exit status $rc" "$(tail -20 "$3")"
        fi
    else
        bad "$1 still running after the browser checks" "$(tail -20 "$3")"
    fi
}
check_relay_log relay "$LOG"
check_relay_log "draft-14 relay" "$LOG14"
stop_relay relay "$relay_pid" "$LOG"
relay_pid=""
stop_relay "draft-14 relay" "$relay14_pid" "$LOG14"
relay14_pid=""
if [ "$fail" -ne 0 ]; then
    for log in "$LOG" "$LOG14"; do
        echo "$(basename "$log") (last lines without debug; MOQ_BROWSER_KEEP=1 keeps all of $log):"
        grep -v " DEBUG " "$log" | tail -40 | sed 's/^/     /'
    done
fi
finish
