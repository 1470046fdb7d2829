#!/usr/bin/env bash
# `moq bench` against the real relay on loopback: every transport (raw QUIC, WebTransport,
# http:// with the fetched pin, WebSocket, secure WebSocket) delivers frames and groups with no loss and
# measures latency; a publisher-only and a subscriber-only instance make a 1 -> N fan-out;
# --max-p99 / --max-loss decide the exit status.
source "$(dirname "$0")/lib.sh"

# check_final FILE WHAT CONNECTIONS [EXPR...]: the final report of a run that received
# frames, on loopback: no lost group, latency measured, plus each python EXPR over d.
check_final() {
    local out="$1" what="$2" conns="$3"
    shift 3
    python3 - "$out" "$conns" "$@" <<'PY' || fail "$what: final report not as expected (above)"
import json, sys
out, conns, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
lines = [l for l in open(out) if l.startswith("{")]
if not lines:
    sys.exit("no JSON line on stdout")
d = json.loads(lines[-1])
checks = [
    "d['final'] is True",
    "d['connections'] == %d" % conns,
    "d['connect_failures'] == 0",
    "d['recv_frames'] > 0 and d['recv_bytes'] > 0 and d['recv_groups'] > 0",
    "d['lost_groups'] == 0",
    "d['latency_p50_ms'] is not None and d['latency_p99_ms'] is not None",
    "0 <= d['latency_p50_ms'] <= d['latency_p99_ms'] <= d['latency_max_ms'] < 10000",
    "d['recv_frames'] == d['frames_recv'] and d['recv_groups'] == d['groups_recv']",
] + extra
for c in checks:
    if not eval(c):
        sys.exit("failed: %s in %s" % (c, lines[-1].strip()))
PY
}

FIX="$MOQ_SOURCE_DIR/tests/fixtures/http"
HTTPS_PORT="$(free_port)"
start_relay --web-https-listen "127.0.0.1:$HTTPS_PORT" --web-https-cert "$FIX/server.pem" \
    --web-https-key "$FIX/server.key"
WS_URL="ws://127.0.0.1:$PORT/"
BENCH=(--connections 4 --broadcasts 1 --subscribe 2 --fps 40 --group-size 7 --frame-size 600
    --startup 0s --duration 3s --report 500ms --quiet)

n=0
for url in "moql://127.0.0.1:$PORT/ --tls-fingerprint $FP" "https://127.0.0.1:$PORT/ --tls-fingerprint $FP" \
    "$HTTP_URL" "$HTTP_URL --raw-quic" "$WS_URL" "wss://localhost:$HTTPS_PORT/ --tls-root $FIX/ca.pem --frame-size 20000"; do
    n=$((n + 1))
    note "moq bench $url"
    # shellcheck disable=SC2086
    spawn "bench$n" "$MOQ" bench "${BENCH[@]}" --output "$TMP/bench$n.jsonl" $url
    expect_ok "$SPAWNED" "moq bench $url"
    check_final "$TMP/bench$n.out" "$url" 4 "d['frames_sent'] > 0"
    # every interval went to --output, the last line there is the one on stdout
    (($(lines_of "$TMP/bench$n.jsonl") >= 3)) || fail "$url: too few reports in --output"
    [[ "$(tail -n 1 "$TMP/bench$n.jsonl")" == "$(grep '^{' "$TMP/bench$n.out" | tail -n 1)" ]] ||
        fail "$url: the last --output line differs from stdout"
    [[ "$(grep -c '"final":true' "$TMP/bench$n.jsonl")" == 1 ]] || fail "$url: one final line expected"
done

note "groups in flight when the run ends are waited for, not counted as lost"
# Every packet of the path takes 50 to 250 ms, so a group of one frame every 25 ms often
# arrives after a newer one: when the run ends, groups below the newest are still in flight.
start_impair jitter udp "$PORT" --delay 50ms --jitter 200ms --seed 1
spawn inflight "$MOQ" bench "moql://127.0.0.1:$IMPAIR_PORT/" --tls-fingerprint "$FP" \
    --connections 2 --broadcasts 1 --subscribe 1 --fps 40 --frame-size 2000 --group-size 0 \
    --startup 0s --duration 2s --quiet --log-level info
expect_ok "$SPAWNED" "moq bench through a reordering path"
check_final "$TMP/inflight.out" "through a reordering path" 2 "d['groups_present'] == d['groups_expected']"
grep -Eq 'stopping: waiting for [0-9]+ subscriptions \([1-9][0-9]* groups below' "$TMP/inflight.err" ||
    fail "no group was in flight behind a newer one when the run stopped: nothing was tested"
log_has "$TMP/inflight.err" "every group in flight arrived" || fail "the groups in flight did not arrive"
kill "$IMPAIR_PID"

note "fan-out: a publisher-only and a subscriber-only instance"
# shellcheck disable=SC2086
spawn pub "$MOQ" bench "$QUIC_URL" --tls-fingerprint "$FP" --file "$MOQ_SOURCE_DIR/bench/presets/fanout-pub.toml" \
    --fps 30 --frame-size 2000 --report 200ms --output "$TMP/pub.jsonl" --quiet
PUB=$SPAWNED
pub_up() { [[ "$(tail -n 1 "$TMP/pub.jsonl" 2>/dev/null)" == *'"connections":1,'* ]]; }
wait_for pub_up || fail "the publisher instance did not connect"
spawn sub "$MOQ" bench "$WS_URL" --file "$MOQ_SOURCE_DIR/bench/presets/fanout-sub.toml" \
    --connections 6 --startup 0s --report 200ms --output "$TMP/sub.jsonl" --max-loss 0 --quiet
SUB=$SPAWNED
# Runs until every subscriber has timed frames from group starts (a subscriber that joins
# mid-group measures nothing until the next group), then stops on SIGTERM.
sub_measured() {
    python3 -c '
import json, sys
d = json.loads(open(sys.argv[1]).readlines()[-1])
sys.exit(0 if d["connections"] == 6 and d["latency_samples"] >= 12 else 1)
' "$TMP/sub.jsonl" 2>/dev/null
}
wait_for sub_measured || fail "the subscriber-only instance measured no latency: $(tail -n 1 "$TMP/sub.jsonl")"
kill -TERM "$SUB"
expect_ok "$SUB" "the subscriber-only instance (SIGTERM)"
check_final "$TMP/sub.out" "fan-out subscribers" 6 "d['subscriptions'] == 6" "d['frames_sent'] == 0" \
    "d['broadcasts'] == 0"
kill -TERM "$PUB"
expect_ok "$PUB" "the publisher instance (SIGTERM)"
python3 -c '
import json, sys
d = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
assert d["final"] and d["frames_sent"] > 0 and d["recv_frames"] == 0 and d["subscriptions"] == 0, d
' "$TMP/pub.out" || fail "the publisher instance: final report not as expected"

note "a subscriber-only instance does not keep what it counted"
# 100 kB frames in 1.5 s groups (3 MB each) to 8 subscriber connections: holding whole groups
# would cost each connection megabytes; counting frames as they arrive costs a frame.
spawn bigpub "$MOQ" bench "$QUIC_URL" --tls-fingerprint "$FP" --connections 1 --broadcasts 1 \
    --fps 20 --frame-size 100000 --group-size 29 --startup 0s --report 200ms --output "$TMP/bigpub.jsonl" --quiet
BIGPUB=$SPAWNED
bigpub_up() { [[ "$(tail -n 1 "$TMP/bigpub.jsonl" 2>/dev/null)" == *'"connections":1,'* ]]; }
wait_for bigpub_up || fail "the large-frame publisher did not connect"
spawn bigsub "$MOQ" bench "$QUIC_URL" --tls-fingerprint "$FP" --connections 8 --broadcasts 0 \
    --subscribe 1 --startup 0s --report 200ms --output "$TMP/bigsub.jsonl" --quiet
BIGSUB=$SPAWNED
# Two whole groups per connection have arrived (the first may start mid-group).
three_groups() { [[ "$(tail -n 1 "$TMP/bigsub.jsonl" 2>/dev/null)" =~ \"recv_groups\":(2[4-9]|[3-9][0-9]) ]]; }
wait_for three_groups || fail "the subscribers did not receive three groups each"
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$BIGSUB/status")
note "subscriber instance peak RSS ${hwm} kB (holding whole groups: about 40 MB)"
# Under sanitizers the allocator is theirs: the RSS says nothing there.
if [[ "$(nm "$MOQ" 2>/dev/null | grep -c __asan_init)" == 0 ]]; then
    ((hwm < 25000)) || fail "the subscriber-only instance peaked at ${hwm} kB: it keeps the groups it counted"
fi
kill -TERM "$BIGSUB" "$BIGPUB"
expect_ok "$BIGSUB" "the large-frame subscribers (SIGTERM)"
expect_ok "$BIGPUB" "the large-frame publisher (SIGTERM)"

note "thresholds decide the exit status"
spawn p99 "$MOQ" bench "$WS_URL" --connections 2 --subscribe 1 --fps 50 --group-size 0 \
    --startup 0s --duration 2s --max-p99 0 --max-loss 0 --quiet
rc=0
wait_exit "$SPAWNED" || rc=$?
((rc == 3)) || fail "--max-p99 0 exited with $rc, want 3"
log_has "$TMP/p99.err" "p99 latency" || fail "--max-p99 0: no reason given"
check_final "$TMP/p99.out" "--max-p99 0" 2

spawn ok "$MOQ" bench "$QUIC_URL" --tls-fingerprint "$FP" --connections 2 --subscribe 1 --fps 50 \
    --group-size 4 --startup 0s --duration 2s --max-p99 5s --max-loss 0 --quiet
expect_ok "$SPAWNED" "a run within --max-p99 5s and --max-loss 0"

spawn bad "$MOQ" bench "$QUIC_URL" --fps lots
rc=0
wait_exit "$SPAWNED" || rc=$?
((rc == 2)) || fail "a bad --fps exited with $rc, want 2"

stop_relay
echo "PASS"
