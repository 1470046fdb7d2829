#!/usr/bin/env bash
# /nodes on [internal] (upstream's topology view) and the cluster sessions in
# /debug/sessions: relay b dials relay a with the cluster token in the URL; both advertise
# themselves. b lists itself, and a with its origin id, its advertisement's route and b's
# outbound connection; a lists b with b's inbound connection. No token is shown.
source "$(dirname "$0")/cluster_lib.sh"
IPORT_A="$(free_port)"
IPORT_B="$(free_port)"
TOKEN="$(cat "$TMP/cluster.jwt")"

json_check() { # NAME FILE PYTHON (over the parsed FILE as d, with the ids in A and B)
    python3 - "$2" "$3" "$A_ID" "${B_ID:-}" <<'PY' || fail "$1: $(head -c 900 "$2")"
import json, sys
d = json.load(open(sys.argv[1]))
A, B = sys.argv[3], sys.argv[4]
if not eval(sys.argv[2]):
    sys.exit(1)
PY
}
origin_id() { # INTERNAL_PORT
    curl -sf -H 'Accept: application/json' "http://127.0.0.1:$1/" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["origin_id"])'
}

RPORT[a]="$(free_port)"
relay a --cluster-node "$(peer a)" --internal-listen "127.0.0.1:$IPORT_A"
RPORT[b]="$(free_port)"
relay b --cluster-connect "$(peer a)?jwt=$TOKEN" --cluster-node "$(peer b)" \
    --internal-listen "127.0.0.1:$IPORT_B"
wait_for joined b a || fail "b did not connect to a"
A_ID="$(origin_id "$IPORT_A")"
B_ID="$(origin_id "$IPORT_B")"

note "b's view: itself, and a with b's outbound connection"
have_nodes() { # PORT FILE COUNT
    curl -sf "http://127.0.0.1:$1/nodes" >"$2" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d["nodes"]) >= int(sys.argv[2]) and all(n["announced"] for n in d["nodes"]) else 1)' "$2" "$3"
}
wait_for have_nodes "$IPORT_B" "$TMP/b-nodes.json" 2 || fail "b: $(cat "$TMP/b-nodes.json")"
json_check b-nodes "$TMP/b-nodes.json" "len(d['nodes']) == 2 and \
    d['nodes'][0]['self'] and d['nodes'][0]['node'] == '$(peer b)' and \
    d['nodes'][0]['origin_id'] == B and d['nodes'][0]['connections'] == [] and \
    d['nodes'][1]['node'] == '$(peer a)' and d['nodes'][1]['origin_id'] == A and \
    not d['nodes'][1]['self'] and d['nodes'][1]['announced']['hops'][0] == A and \
    d['nodes'][1]['announced']['hop_count'] == len(d['nodes'][1]['announced']['hops']) and \
    len(d['nodes'][1]['connections']) == 1 and \
    d['nodes'][1]['connections'][0]['direction'] == 'outbound' and \
    d['nodes'][1]['connections'][0]['state'] == 'connected' and \
    d['nodes'][1]['connections'][0]['remote'] == '127.0.0.1:${RPORT[a]}'"
curl -sf "http://127.0.0.1:$IPORT_B/debug/sessions" >"$TMP/b-sessions.json"
json_check b-sessions "$TMP/b-sessions.json" "len(d['sessions']) == 1 and \
    d['sessions'][0]['direction'] == 'outbound' and d['sessions'][0]['peer_origin_id'] in (A, None) \
    and d['sessions'][0]['url'] == '$(peer a)'"

note "a's view: itself, and b with its inbound connection"
wait_for have_nodes "$IPORT_A" "$TMP/a-nodes.json" 2 || fail "a: $(cat "$TMP/a-nodes.json")"
json_check a-nodes "$TMP/a-nodes.json" "len(d['nodes']) == 2 and d['nodes'][0]['self'] and \
    d['nodes'][1]['node'] == '$(peer b)' and d['nodes'][1]['origin_id'] == B and \
    [c['direction'] for c in d['nodes'][1]['connections']] == ['inbound']"
for f in b-nodes b-sessions a-nodes; do
    if grep -qF "$TOKEN" "$TMP/$f.json" || grep -qF "${TOKEN%%.*}" "$TMP/$f.json"; then
        fail "$f shows the cluster token"
    fi
done

stop b
stop a
note "ok"
