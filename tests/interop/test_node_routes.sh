#!/usr/bin/env bash
# Broadcasts that end or change their upstream while the published JavaScript client
# @moq/net 0.3.4 (Node.js, WebSocket) reads them, with our native `moq` tool alongside:
# - a publisher ends its broadcast while a track of it is subscribed: every watcher (two
#   announced() of @moq/net on the subscriber's connection and our `moq announced`) hears of
#   it at once, and the subscription keeps receiving until the publisher ends the track;
#   for moq-lite-05, -04 and -03;
# - a cluster (root + two leaves): the subscriber's leaf first pulls the track through the
#   root, then over a direct link to the publisher's leaf; the switch keeps the old upstream
#   until its group in flight ends, so @moq/net and `moq subscribe` on that leaf see every
#   frame exactly once, in order, without a group cut short; for moq-lite-05 and -03.
# Prints "N passed, M failed"; exits non-zero on any failure.
source "$(dirname "$0")/node/lib.sh"

install_client
[ -x "$MOQ_BIN" ] || abort "moq binary not found at $MOQ_BIN (build first)"
NATIVE_TIMEOUT=60

# wait_line FILE LINE: FILE gets the exact line LINE (within $WAIT s).
has_line() { grep -qx -- "$2" "$1" 2>/dev/null; }
wait_line() { wait_until "$WAIT" has_line "$1" "$2"; }

# ---- the end of a broadcast reaches every watcher at once ----------------------------------

start_relay single --web-http-listen 127.0.0.1:0 --auth-public ""
[ -n "$HTTP_PORT" ] && [ -n "$QUIC_PORT" ] || abort "no HTTP or QUIC port in the relay log"
FP=$(curl -sf "http://127.0.0.1:$HTTP_PORT/certificate.sha256") || abort "no /certificate.sha256"
URL="http://localhost:$HTTP_PORT/"
for v in 05 04 03; do
    rel="bc-$RANDOM"
    prefix="unann$v"
    seen="$WORK/seen-$v"
    timeout "$NATIVE_TIMEOUT" "$MOQ_BIN" announced "moql://127.0.0.1:$QUIC_PORT/" \
        --tls-fingerprint "$FP" --prefix "$prefix" \
        >"$WORK/ann-$v.out" 2>"$WORK/ann-$v.err" &
    BG_PIDS+=("$!")
    scenario_start unannounce-subscribed "{\"url\":\"$URL\",\"version\":\"moq-lite-$v\",\
\"prefix\":\"$prefix\",\"rel\":\"$rel\",\"seenFile\":\"$seen\"}"
    if scenario_wait closed && wait_line "$WORK/ann-$v.out" "-$prefix/$rel"; then
        touch "$seen"
    else
        ko "lite-$v: moq announced did not print -$prefix/$rel"
    fi
    scenario_end "lite-$v: unannounced while subscribed"
done
finish_relay "single relay"

# ---- a cluster moves a track to a direct link while subscribers read it ---------------------

"$TOKEN_BIN" generate --out "$WORK/root.jwk" >/dev/null || abort "cannot make a key"
"$TOKEN_BIN" --key "$WORK/root.jwk" sign --root "" --subscribe "" --publish "" --cluster \
    >"$WORK/cluster.jwt" || abort "cannot sign the cluster token"

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z "$(ss -Hlnu "sport = :$p" 2>/dev/null)" && -z "$(ss -Hlnt "sport = :$p" 2>/dev/null)" ]]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

declare -A PORT LOG PID
# member NAME [flags...]: a relay of the cluster on PORT[NAME] (QUIC and HTTP), anonymous
# clients may do anything, peers present the cluster token.
member() {
    local name=$1
    shift
    LOG[$name]="$WORK/$name.log"
    "$RELAY_BIN" --server-bind "127.0.0.1:${PORT[$name]}" \
        --web-http-listen "127.0.0.1:${PORT[$name]}" --tls-generate localhost --log-level debug \
        --auth-key "$WORK/root.jwk" --auth-public "" --client-tls-disable-verify \
        --cluster-linger 300ms "$@" \
        >"${LOG[$name]}" 2>&1 &
    PID[$name]=$!
    BG_PIDS+=("$!")
    wait_until "$WAIT" grep -q "relay: ready" "${LOG[$name]}" || abort "relay $name did not start"
}
peer() { echo "https://127.0.0.1:${PORT[$1]}/"; }
joins() { # NAME: a leaf that dials the root and advertises itself
    echo "--cluster-connect $(peer root) --cluster-node $(peer "$1") --cluster-token $WORK/cluster.jwt"
}

# Leaf a advertises a gate in front of its port as its URL: leaf b's direct link to it can
# only come up once the test opens the gate, while subscribers already receive.
for name in root a b gate; do PORT[$name]=$(free_port) || abort "no free port"; done
member root
member a --cluster-connect "$(peer root)" --cluster-node "$(peer gate)" \
    --cluster-token "$WORK/cluster.jwt"
# shellcheck disable=SC2046
member b $(joins b)
for leaf in a b; do
    wait_until "$WAIT" grep -qF "cluster: connected to $(peer root)" "${LOG[$leaf]}" ||
        abort "leaf $leaf did not join"
done

# route_switch VERSION (05 or 03)
route_switch() {
    local v=$1 rel="live-$RANDOM" prefix="switch$1" frames=8
    local path="$prefix/$rel" stop="$WORK/stop-$1" open="$WORK/open-$1"
    local label="lite-$1 cluster route switch"
    node "$CACHE/udpgate.mjs" "${PORT[gate]}" "${PORT[a]}" "$open" >"$WORK/gate-$v.out" 2>&1 &
    local gate=$!
    BG_PIDS+=("$gate")
    wait_line "$WORK/gate-$v.out" listening || ko "$label: the UDP gate did not start"
    # our native subscriber waits for the broadcast on leaf b, like the JS one
    timeout "$NATIVE_TIMEOUT" "$MOQ_BIN" subscribe "http://127.0.0.1:${PORT[b]}/" \
        --moq-version "$v" --broadcast "$path" --track t >"$WORK/native-$v.out" \
        2>"$WORK/native-$v.err" &
    local native=$!
    BG_PIDS+=("$native")
    # shellcheck disable=SC2034 # (node/lib.sh reports it on failure)
    RELAY_LOG=${LOG[b]}
    scenario_start route-switch "{\"pubUrl\":\"http://localhost:${PORT[a]}/\",\
\"subUrl\":\"http://localhost:${PORT[b]}/\",\"version\":\"moq-lite-$v\",\"prefix\":\"$prefix\",\
\"rel\":\"$rel\",\"frames\":$frames,\"stopFile\":\"$stop\"}"
    local attached=0 moved=0
    if scenario_wait flowing &&
        wait_until "$WAIT" eval '(($(grep -cF "subscribed to $path/t (" "${LOG[b]}") >= 2))'; then
        attached=1
    fi
    if ((attached)); then
        ok "$label: both subscribers receive through the root"
        touch "$open"
        # leaf b pulls the track directly from leaf a now, and lets the root's subscription
        # go once its group in flight has ended
        if wait_until "$WAIT" eval '(($(grep -cF "requesting $path/t upstream" "${LOG[b]}") >= 2)) &&
                grep -qF "releasing $path/t upstream" "${LOG[b]}"'; then
            moved=1
        fi
    else
        ko "$label: the subscribers did not both attach to leaf b"
    fi
    if ((moved)); then ok "$label: leaf b moved the track to the direct link"; else
        ko "$label: leaf b did not move the track to the direct link"
    fi
    touch "$stop"
    scenario_end "$label: @moq/net saw every frame once"
    # the publisher has gone: the native subscriber sees the broadcast end and exits 0
    local rc=0
    wait "$native" || rc=$?
    kill "$gate" 2>/dev/null
    wait "$gate" 2>/dev/null
    if [ "$rc" -ne 0 ]; then
        ko "$label: moq subscribe exited $rc"
        tail -5 "$WORK/native-$v.err" | sed 's/^/     /'
        return
    fi
    # "<group>:<frame>" lines: whole groups of $frames frames, consecutive, each frame once
    local verdict
    verdict=$(awk -F: -v n="$frames" '
        NR == 1 { if ($2 != 0) { print "starts inside group " $1; exit } }
        NR > 1 && !($1 == g && $2 == f + 1) && !($1 == g + 1 && $2 == 0 && f == n - 1) {
            print "line " NR " (" $0 ") after " g ":" f; exit }
        { g = $1; f = $2 }
        END { if (NR < 3 * n) print "only " NR " frames"; else if (f != n - 1) print "ends inside group " g }
    ' "$WORK/native-$v.out")
    if [ -z "$verdict" ]; then
        ok "$label: moq subscribe saw every frame once ($(wc -l <"$WORK/native-$v.out") frames)"
    else
        ko "$label: moq subscribe output: $verdict"
    fi
}
route_switch 05
# the direct link closes once unused; the next run opens it again
closed=0
wait_until "$WAIT" grep -qF "closing unused direct link to $(peer gate)" "${LOG[b]}" && closed=1
if ((closed)); then ok "leaf b closed the unused direct link"; else
    ko "leaf b did not close the unused direct link"
fi
route_switch 03

for name in b a root; do
    kill "${PID[$name]}" 2>/dev/null
    rc=0
    wait "${PID[$name]}" || rc=$?
    report=$(grep -E "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "${LOG[$name]}" | head -3)
    if [ "$rc" -eq 0 ] && [ -z "$report" ]; then ok "relay $name shut down cleanly"; else
        ko "relay $name: exit status $rc on SIGTERM"
        printf '%s\n' "$report" | sed 's/^/     /'
    fi
done
finish
