#!/usr/bin/env bash
# The relay on two worker threads (server.workers = 2):
#  1. QUIC connections land on both workers (connection-ID steering keeps each on one), and
#     one publisher reaches subscribers on both: the track crosses workers once per worker;
#  2. WebSocket sessions on both workers (one SO_REUSEPORT TCP socket each) get it too;
#  3. /announced answers for the whole relay from either worker's HTTP socket;
#  4. a broadcast published on each worker reaches a subscriber on the other one, and
#     [internal] /debug/tracks shows each track once, with its one real subscriber;
#  5. the relay shuts down cleanly.
source "$(dirname "$0")/lib.sh"
IPORT="$(free_port)"
MOQ_LOG=info,relay=debug,moq=debug start_relay --server-workers 2 --internal-listen "127.0.0.1:$IPORT"
INTERNAL="http://127.0.0.1:$IPORT"
log_has "$RELAY_LOG" "2 workers" || fail "the relay did not start two workers"

on_worker() { # N: sessions the relay placed on worker N
    log_count "$RELAY_LOG" "session on worker $1"
}
both_workers() {
    (($(on_worker 0) > 0 && $(on_worker 1) > 0))
}

# 1 + 2. subscribers until both workers have some (each new connection picks a worker from
# its random connection ID, or the kernel's hash for TCP) -------------------------------------
note "subscribers on both workers, QUIC and WebSocket"
seq 1 300 | sed 's/^/frame /' >"$TMP/fan.in"
SUBS=()
spawn_sub() { # NAME URL...
    local name="$1"
    shift
    spawn "$name" "$MOQ" subscribe "$@" --broadcast fan --track t --log-level warn
    SUBS+=("$name:$SPAWNED")
}
n=0
for tr in quic ws; do
    before0=$(on_worker 0) before1=$(on_worker 1)
    while (($(on_worker 0) == before0 || $(on_worker 1) == before1)); do
        ((n < 60)) || fail "64 $tr sessions and still not on both workers"
        n=$((n + 1))
        if [[ $tr == quic ]]; then
            spawn_sub "sub-$n" "$QUIC_URL" --tls-fingerprint "$FP"
        else
            spawn_sub "sub-$n" "ws://127.0.0.1:$PORT/"
        fi
        wait_for eval "((\$(log_count \"\$RELAY_LOG\" 'session on worker') >= n))" ||
            fail "session $n never started"
    done
done
note "$n subscribers: $(on_worker 0) on worker 0, $(on_worker 1) on worker 1"
# The publisher announces at once (on either worker) and writes once all subscribed.
publish_when_subscribed() { # N
    exec "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" --broadcast fan --track t \
        --group-frames 5 < <(wait_for relay_subscribed fan/t "$1" && cat "$TMP/fan.in")
}
spawn pub publish_when_subscribed "$n"
expect_ok "$SPAWNED" "the publisher"
for s in "${SUBS[@]}"; do
    expect_ok "${s#*:}" "subscriber ${s%%:*}"
    cmp -s "$TMP/fan.in" "$TMP/${s%%:*}.out" || fail "${s%%:*}: output differs"
done

# 3 + 4. a publisher on each worker; /announced from any HTTP connection sees both; each
# broadcast reaches a subscriber on the other worker ------------------------------------------
note "a broadcast on each worker, seen from the other"
declare -A PUB_ON=([0]="" [1]="")
m=0
while [[ -z ${PUB_ON[0]} || -z ${PUB_ON[1]} ]]; do
    ((m < 40)) || fail "40 publishers and still not one on each worker"
    m=$((m + 1))
    total=$(log_count "$RELAY_LOG" "session on worker")
    fifo_publisher "p-$m" "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "b-$m" --track t \
        --ready-file "$(ready_file "p-$m")"
    wait_for eval "((\$(log_count \"\$RELAY_LOG\" 'session on worker') > total))" ||
        fail "publisher $m never started"
    w=$(grep -F "session on worker" "$RELAY_LOG" | tail -1 | awk '{print $NF}')
    [[ -n ${PUB_ON[$w]} ]] || PUB_ON[$w]=$m
done
for w in 0 1; do
    p=${PUB_ON[$w]}
    wait_for eval "curl -sf '${HTTP_URL}announced/' | grep -qx 'b-$p'" ||
        fail "b-$p (worker $w) not in /announced"
done
for try in 1 2 3 4 5 6 7 8; do
    curl -sf "${HTTP_URL}announced/" | grep -qx "b-${PUB_ON[0]}" ||
        fail "/announced on connection $try misses b-${PUB_ON[0]}"
    curl -sf "${HTTP_URL}announced/" | grep -qx "b-${PUB_ON[1]}" ||
        fail "/announced on connection $try misses b-${PUB_ON[1]}"
done
for w in 0 1; do
    p=${PUB_ON[$w]}
    other=$((1 - w))
    # A subscriber on the other worker: retry the connection until it lands there.
    k=0
    while :; do
        ((k < 40)) || fail "40 subscribers and none on worker $other"
        k=$((k + 1))
        total=$(log_count "$RELAY_LOG" "session on worker")
        spawn "x-$p-$k" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "b-$p" \
            --track t --ready-file "$(ready_file "x-$p-$k")"
        wait_for eval "((\$(log_count \"\$RELAY_LOG\" 'session on worker') > total))" ||
            fail "subscriber never started"
        [[ $(grep -F "session on worker" "$RELAY_LOG" | tail -1 | awk '{print $NF}') == "$other" ]] &&
            break
        kill "$SPAWNED" 2>/dev/null || true
    done
    wait_for log_has "$RELAY_LOG" "relay: worker $w: /b-$p/t carried to worker $other" ||
        fail "b-$p/t never carried from worker $w to worker $other"
    printf '%s\n' "from worker $w" >"$TMP/p-$p.fifo"
    wait_for has_line "$TMP/x-$p-$k.out" "from worker $w" ||
        fail "b-$p: a subscriber on worker $other did not get worker $w's frame"
done

# Each track once, on the worker that has its publisher, with the subscriber of the other.
one_subscriber() { # BROADCAST
    curl -sf "$INTERNAL/debug/tracks" | python3 -c '
import json, sys
t = [t for t in json.load(sys.stdin)["tracks"] if t["broadcast"] == sys.argv[1]]
sys.exit(0 if len(t) == 1 and t[0]["track"] == "t" and t[0]["subscribers"] == 1 else 1)' "$1"
}
for w in 0 1; do
    wait_for one_subscriber "b-${PUB_ON[$w]}" ||
        fail "/debug/tracks: $(curl -sf "$INTERNAL/debug/tracks")"
done

curl -sf "$INTERNAL/metrics" >"$TMP/metrics.txt" || fail "no /metrics"
grep -qx "moq_relay_workers 2" "$TMP/metrics.txt" || fail "/metrics: no worker count"
bridged=$(awk '$1 == "moq_relay_bridged_frames_total" {print $2}' "$TMP/metrics.txt")
((bridged > 0)) || fail "/metrics: no frame crossed workers"
# Every publisher of step 4 is still there; step 1's has gone.
wait_for eval "curl -sf '$INTERNAL/metrics' | grep -qx 'moq_relay_broadcasts $m'" ||
    fail "/metrics: not the relay's $m broadcasts: $(curl -sf "$INTERNAL/metrics" | grep broadcasts)"

# 5. ------------------------------------------------------------------------------------------
stop_relay
! grep -E " (WARN|ERROR) " "$RELAY_LOG" | grep -v "peer closed\|idle timeout" ||
    fail "the relay logged warnings or errors"
note "ok"
