#!/usr/bin/env bash
# What the relay is doing: GET / on the web listener (HTML by default, JSON for
# Accept: application/json: name, version, uptime, transports and ALPNs, counts) and, on
# [internal] only, /debug/sessions, /debug/broadcasts and /debug/tracks describing a live
# publisher (QUIC) and subscriber (WebSocket): addresses, transports, versions, roots, bytes,
# RTT, streams, ages, what libngtcp2 holds for a QUIC session; the broadcast's route; the
# track's subscribers, cache and upstream. /metrics counts QUIC connections and their memory
# as they open and close.
source "$(dirname "$0")/lib.sh"
IPORT="$(free_port)"
start_relay --internal-listen "127.0.0.1:$IPORT"
INTERNAL="http://127.0.0.1:$IPORT"

metric() { # NAME: its value on [internal] /metrics
    curl -sf "$INTERNAL/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
quic_memory_is() { # CONNECTIONS: that many QUIC connections, holding memory exactly when > 0
    local conns mem
    conns="$(metric moq_relay_quic_connections)"
    mem="$(metric moq_relay_quic_memory_bytes)"
    [[ "$conns" == "$1" ]] && { ((conns > 0 && mem > 0)) || ((conns == 0 && mem == 0)); }
}

# json_check NAME FILE PYTHON: run the Python expression over the parsed FILE as `d`.
json_check() {
    python3 - "$2" "$3" <<'PY' || fail "$1: $(head -c 600 "$2")"
import json, sys
d = json.load(open(sys.argv[1]))
if not eval(sys.argv[2]):
    sys.exit(1)
PY
}

note "GET / on the public listener: HTML for browsers and curl"
curl -sf -D "$TMP/root.hdr" "http://127.0.0.1:$PORT/" >"$TMP/root.html" || fail "GET / failed"
grep -qi '^content-type: text/html' "$TMP/root.hdr" || fail "GET /: $(cat "$TMP/root.hdr")"
grep -q '<h1>moq-relay</h1>' "$TMP/root.html" || fail "no page: $(head -c 300 "$TMP/root.html")"
VERSION="$("$MOQ_RELAY_BIN" --version | cut -d' ' -f2)"
grep -q "<td>$VERSION</td>" "$TMP/root.html" || fail "the page does not show version $VERSION"
grep -q "moq-lite-05, moq-lite-04, moq-lite-03, moql, moqt-20, moqt-19, moqt-18, moqt-17, \
moqt-16, moqt-15, moq-00, h3" "$TMP/root.html" || fail "no ALPNs on the page"

note "GET / with Accept: application/json"
curl -sf -H 'Accept: application/json' "http://127.0.0.1:$PORT/" >"$TMP/root.json"
json_check info "$TMP/root.json" "d['name'] == 'moq-relay' and d['version'] == '$VERSION' \
    and d['uptime_s'] >= 0 and d['counts']['sessions'] == 0 and d['counts']['broadcasts'] == 0 \
    and d['transports'][0] == {'name': 'quic', 'port': $PORT, \
        'alpns': ['moq-lite-05', 'moq-lite-04', 'moq-lite-03', 'moql', 'moqt-20', 'moqt-19', \
                  'moqt-18', 'moqt-17', 'moqt-16', 'moqt-15', 'moq-00']} \
    and d['transports'][1]['alpns'] == ['h3'] \
    and d['transports'][2] == {'name': 'websocket', 'ports': [$PORT]}"
note "the same on [internal]; the debug endpoints only there"
curl -sf -H 'Accept: application/json' "$INTERNAL/" >"$TMP/internal-root.json"
json_check internal-info "$TMP/internal-root.json" "d['name'] == 'moq-relay'"
for path in /debug/sessions /debug/broadcasts /debug/tracks /nodes /status; do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$path")"
    [[ "$code" == 404 ]] || fail "the public listener answers $path with $code"
done
curl -sf "$INTERNAL/debug/sessions" >"$TMP/none.json"
json_check no-sessions "$TMP/none.json" "d == {'sessions': []}"
curl -sf "$INTERNAL/nodes" >"$TMP/nodes.json"
json_check nodes "$TMP/nodes.json" "d == {'nodes': []}"
quic_memory_is 0 || fail "QUIC memory before any connection: $(curl -sf "$INTERNAL/metrics" | grep quic_)"

note "a QUIC publisher and a WebSocket subscriber"
fifo_publisher pub "moql://127.0.0.1:$PORT/room" --tls-fingerprint "$FP" --broadcast cam \
    --track video
spawn sub "$MOQ" subscribe "ws://127.0.0.1:$PORT/room" --broadcast cam --track video
send 0123456789 abcdefghij
wait_for has_line "$TMP/sub.out" abcdefghij || fail "the subscriber got nothing"

curl -sf "$INTERNAL/debug/sessions" >"$TMP/sessions.json"
json_check sessions "$TMP/sessions.json" "len(d['sessions']) == 2 and \
    sorted(s['transport'] for s in d['sessions']) == ['quic', 'websocket'] and \
    all(s['root'] == 'room' and s['direction'] == 'inbound' and s['version'].startswith('moq-lite-') \
        and s['remote'].startswith('127.0.0.1:') and s['age_s'] > 0 and s['streams'] >= 1 \
        and s['bytes_in'] > 0 and s['bytes_out'] > 0 for s in d['sessions']) and \
    [s for s in d['sessions'] if s['transport'] == 'quic'][0]['rtt_ms'] > 0 and \
    [s for s in d['sessions'] if s['transport'] == 'quic'][0]['payload_in'] == 20 and \
    [s for s in d['sessions'] if s['transport'] == 'websocket'][0]['payload_out'] == 20 and \
    [s for s in d['sessions'] if s['transport'] == 'websocket'][0]['subscriptions'] == 1 and \
    [s for s in d['sessions'] if s['transport'] == 'quic'][0]['memory'] > 1000 and \
    [s for s in d['sessions'] if s['transport'] == 'websocket'][0]['memory'] is None"
quic_memory_is 1 || fail "QUIC memory with one connection: $(curl -sf "$INTERNAL/metrics" | grep quic_)"
PUB_REMOTE="$(python3 -c 'import json,sys; print([s["remote"] for s in json.load(open(sys.argv[1]))["sessions"] if s["transport"] == "quic"][0])' "$TMP/sessions.json")"

curl -sf "$INTERNAL/debug/broadcasts" >"$TMP/broadcasts.json"
json_check broadcasts "$TMP/broadcasts.json" "len(d['broadcasts']) == 1 and \
    d['broadcasts'][0]['path'] == 'room/cam' and d['broadcasts'][0]['routes'] == 1 and \
    d['broadcasts'][0]['tracks'] == 1 and not d['broadcasts'][0]['lingering']"
curl -sf "$INTERNAL/debug/tracks" >"$TMP/tracks.json"
json_check tracks "$TMP/tracks.json" "len(d['tracks']) == 1 and d['time_s'] > 0 and \
    d['tracks'][0]['broadcast'] == 'room/cam' and d['tracks'][0]['track'] == 'video' and \
    d['tracks'][0]['subscribers'] == 1 and d['tracks'][0]['frames_in'] == 2 and \
    d['tracks'][0]['bytes_in'] == 20 and d['tracks'][0]['groups_cached'] >= 1 and \
    d['tracks'][0]['cached_bytes'] >= 10 and d['tracks'][0]['latest_group'] is not None and \
    d['tracks'][0]['upstream']['via'] == '$PUB_REMOTE'"
curl -sf -H 'Accept: application/json' "http://127.0.0.1:$PORT/" >"$TMP/root2.json"
json_check counts "$TMP/root2.json" "d['counts']['sessions'] == 2 and \
    d['counts']['broadcasts'] == 1 and d['counts']['tracks'] == 1 and \
    d['counts']['subscriptions'] == 1"

end_input
expect_ok "$PUB_PID" publisher
wait_for quic_memory_is 0 ||
    fail "QUIC memory after the connection closed: $(curl -sf "$INTERNAL/metrics" | grep quic_)"
stop_relay
note "ok"
