#!/usr/bin/env bash
# Three publishers of one broadcast on a relay with two workers: the oldest and the newest on
# one worker, the second on the other. When the newest leaves cleanly, the newest remaining
# one (the second) carries the broadcast on both workers, as on a relay with one origin:
# a subscriber gets its content, not the oldest publisher's.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,relay=debug,moq=debug start_relay --server-workers 2
log_has "$RELAY_LOG" "2 workers" || fail "the relay did not start two workers"

sessions() { log_count "$RELAY_LOG" "session on worker"; }
last_worker() { grep -F "session on worker" "$RELAY_LOG" | tail -1 | awk '{print $NF}'; }

# publisher NAME WORKER: a FIFO-fed publisher of cam/t on WORKER (any when WORKER is "");
# one that lands on the other worker leaves cleanly and another is started. Sets WORKER_OF.
declare -A FIFO_OF HOLDER_OF PID_OF
publisher() {
    local name="$1" want="$2" try before
    for try in $(seq 1 40); do
        before=$(sessions)
        fifo_publisher "$name-$try" "$QUIC_URL" --tls-fingerprint "$FP" --broadcast cam --track t \
            --ready-file "$(ready_file "$name-$try")"
        wait_for eval '(($(sessions) > before))' || fail "$name: publisher $try never started"
        wait_ready "$name-$try" "announced cam"
        WORKER_OF=$(last_worker)
        if [[ -z $want || $WORKER_OF == "$want" ]]; then
            FIFO_OF[$name]=$PUB_FIFO HOLDER_OF[$name]=$HOLDER PID_OF[$name]=$PUB_PID
            note "$name is on worker $WORKER_OF"
            return
        fi
        end_input
        expect_ok "$PUB_PID" "$name: publisher $try on the wrong worker"
    done
    fail "$name: 40 publishers and none on worker $want"
}

publisher p1 ""
A=$WORKER_OF B=$((1 - A))
publisher p2 "$B"
publisher p3 "$A"

note "the newest publisher leaves"
HOLDER=${HOLDER_OF[p3]} end_input
expect_ok "${PID_OF[p3]}" "the newest publisher"

# A subscriber (on either worker) receives from whichever publisher the relay routes it to;
# both remaining publishers write a frame once it subscribed. One whose subscription ends
# without a frame (it reached the relay while the departure was still crossing workers) is
# replaced by another.
n=0
until [[ -s "$TMP/sub-$n.out" ]]; do
    ((n < 10)) || fail "10 subscribers and none received a frame"
    n=$((n + 1))
    before=$(subscribed_count cam/t)
    spawn "sub-$n" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast cam \
        --track t --count 1
    SUB=$SPAWNED
    wait_for eval '(($(subscribed_count cam/t) > before))' || fail "subscriber $n did not attach"
    note "subscriber $n is on worker $(last_worker)"
    printf 'p1-%s\n' "$n" >"${FIFO_OF[p1]}"
    printf 'p2-%s\n' "$n" >"${FIFO_OF[p2]}"
    wait_exit "$SUB" || true
done
got=$(head -n 1 "$TMP/sub-$n.out")
[[ $got == p2-* ]] ||
    fail "the subscriber got '$got': not the newest remaining publisher's content (p2-*)"

HOLDER=${HOLDER_OF[p2]} end_input
expect_ok "${PID_OF[p2]}" "publisher p2"
# p1 still holds frames no subscriber asked for: it would wait for one.
kill -TERM "${PID_OF[p1]}"
wait "${PID_OF[p1]}" 2>/dev/null || true
stop_relay
echo "ok"
