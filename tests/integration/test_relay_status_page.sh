#!/usr/bin/env bash
# The live status page on [internal] (/status) in headless Chromium: it loads, polls the
# relay every second, and while a publisher sends its bandwidth plot shows the track's
# traffic and moves (the canvas pixels change between polls); the tables list the track and
# both sessions. A screenshot is kept as build/test-output/status-page.png. Needs Debian's
# chromium (MOQ_DEPS_BROWSER=1 scripts/deps.sh, run by ctest's setup_chromium) and node; it
# does not skip without them.
source "$(dirname "$0")/lib.sh"
CHROMIUM="${MOQ_CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || fail "$CHROMIUM is missing: install it with MOQ_DEPS_BROWSER=1 scripts/deps.sh"
command -v node >/dev/null || fail "node is missing (scripts/deps.sh installs nodejs)"

IPORT="$(free_port)"
start_relay --internal-listen "127.0.0.1:$IPORT"
fifo_publisher pub "${HTTP_URL}live" --broadcast cam --track video
spawn sub "$MOQ" subscribe "${HTTP_URL}live" --broadcast cam --track video
# A steady source: a 4 KiB line every 50 ms (about 650 kbit/s, less when a loaded machine
# stretches the sleeps; the check below leaves room for that) while the page watches.
(
    line="$(head -c 4095 /dev/zero | tr '\0' x)"
    while printf '%s\n' "$line"; do sleep 0.05; done >"$PUB_FIFO" 2>/dev/null
) &
PIDS+=($!)
wait_for at_least_lines "$TMP/sub.out" 3 || fail "the subscriber got nothing"

note "headless Chromium on http://127.0.0.1:$IPORT/status"
mkdir -p "$MOQ_BUILD_DIR/test-output"
SHOT="$MOQ_BUILD_DIR/test-output/status-page.png"
rm -f "$SHOT"
node "$MOQ_SOURCE_DIR/tests/integration/status_page.js" "$CHROMIUM" \
    "http://127.0.0.1:$IPORT/status" video "$SHOT" >"$TMP/page.json" 2>"$TMP/page.err" ||
    fail "the page did not show the traffic: $(head -c 1500 "$TMP/page.json")"
python3 - "$TMP/page.json" <<'PY' || fail "page state: $(cat "$TMP/page.json")"
import json, sys
d = json.load(open(sys.argv[1]))
first, last = d["first"], d["last"]
assert first["key"] == "live/cam/video", first["key"]
assert last["errors"] == 0, last
assert last["updates"] > first["updates"] >= 2, (first["updates"], last["updates"])
assert sum(1 for v in last["series"] if v > 0) >= 2, last["series"]
assert 50_000 < max(last["series"]) < 5_000_000, max(last["series"])  # bit/s of the source
assert last["ink"] > 100 and last["hash"] != first["hash"]
assert last["rows"] == 1 and last["sessions"] == 2 and last["broadcasts"] == 1, last
assert "2 sessions, 1 broadcasts" in last["summary"], last["summary"]
PY
[[ "$(head -c 8 "$SHOT" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] ||
    fail "the screenshot is not a PNG"
(($(stat -c %s "$SHOT") > 10000)) || fail "the screenshot is empty"
note "screenshot: $SHOT"
stop_relay
note "ok"
