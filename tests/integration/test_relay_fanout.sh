#!/usr/bin/env bash
# Fan-out and flow through the real relay:
#  1. one publisher, 50 subscribers (mixed versions and transports): every subscriber gets
#     every frame;
#  2. 1000 small groups reach an active subscriber without loss, per version;
#  3. a subscriber that stops reading (SIGSTOP) does not keep the others from getting
#     everything; the time the others needed with and without the stalled one is printed
#     (informational only: the assertions are about correctness).
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,moq=debug start_relay

VERSIONS=(05 04 03)

# Publish FILE once the relay has attached N subscribers to BROADCAST/t.
publish_when_subscribed() { # BROADCAST N FILE [publish options...]
    local b="$1" n="$2" file="$3"
    shift 3
    exec "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "$b" --track t "$@" < <(
        wait_for relay_subscribed "$b/t" "$n" && cat "$file"
    )
}

# 1. 1 -> 50 ----------------------------------------------------------------------------------
note "one publisher, 50 subscribers"
N=50
# 50 clients connecting at once keep a loaded machine (or a sanitizer build) busy for longer
# than a client's default 10 s to connect: they are given the time it takes.
DIAL=(--timeout 120s)
seq 1 200 | sed 's/^/frame /' >"$TMP/fan.in"
SUBS=()
for i in $(seq 1 $N); do
    v=${VERSIONS[$((i % 3))]}
    if ((i % 2)); then
        spawn "fan-$i" "$MOQ" subscribe "$HTTP_URL" --broadcast fan --track t --moq-version "$v" \
            --log-level warn "${DIAL[@]}"
    else
        spawn "fan-$i" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast fan \
            --track t --moq-version "$v" --log-level warn "${DIAL[@]}"
    fi
    SUBS+=("$SPAWNED")
done
spawn pub-fan publish_when_subscribed fan $N "$TMP/fan.in" --group-frames 4 "${DIAL[@]}"
expect_ok "$SPAWNED" "the fan-out publisher"
for i in $(seq 1 $N); do
    expect_ok "${SUBS[$((i - 1))]}" "subscriber $i"
    cmp -s "$TMP/fan.in" "$TMP/fan-$i.out" || fail "subscriber $i: output differs"
done

# 2. 1000 small groups --------------------------------------------------------------------------
note "1000 small groups, per version"
seq 1 1000 >"$TMP/many.in"
declare -A SUB PUB
for v in "${VERSIONS[@]}"; do
    b="many-$v"
    spawn "sub-$b" "$MOQ" subscribe "$HTTP_URL" --broadcast "$b" --track t --moq-version "$v"
    SUB[$v]=$SPAWNED
    IN="$TMP/many.in" spawn "pub-$b" "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" \
        --broadcast "$b" --track t --moq-version "$v"
    PUB[$v]=$SPAWNED
done
for v in "${VERSIONS[@]}"; do
    expect_ok "${PUB[$v]}" "publisher many-$v"
    expect_ok "${SUB[$v]}" "subscriber many-$v"
    cmp -s "$TMP/many.in" "$TMP/sub-many-$v.out" ||
        fail "many-$v: got $(lines_of "$TMP/sub-many-$v.out") of 1000 groups, or different ones"
done

# 3. a stalled subscriber ---------------------------------------------------------------------
# 768 frames of 16 KiB (12 MiB): more than a stopped client's receive windows and socket
# buffer hold, so the relay really has to hold data back for it.
for _ in $(seq 768); do lframe 16384; done >"$TMP/bulk.in"

now() { date +%s.%N; }

# Run one round: two active subscribers (and a stopped one with "stall"); prints seconds.
bulk_round() { # NAME [stall]
    local name="$1" stall="${2:-}" n=2 start a b s=""
    spawn "$name-a" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "$name" \
        --track t --framing length --log-level warn
    a=$SPAWNED
    spawn "$name-b" "$MOQ" subscribe "$HTTP_URL" --broadcast "$name" --track t --framing length \
        --log-level warn
    b=$SPAWNED
    if [[ -n "$stall" ]]; then
        spawn "$name-stalled" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" \
            --broadcast "$name" --track t --framing length --log-level warn
        s=$SPAWNED
        n=3
    fi
    start=$(now)
    spawn "pub-$name" publish_when_subscribed "$name" "$n" "$TMP/bulk.in" --framing length \
        --group-frames 8
    local pub=$SPAWNED
    if [[ -n "$s" ]]; then
        wait_for relay_subscribed "$name/t" 3 || fail "$name: subscribers not attached"
        kill -STOP "$s"
    fi
    expect_ok "$a" "$name: subscriber a"
    expect_ok "$b" "$name: subscriber b"
    ELAPSED=$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')
    cmp -s "$TMP/bulk.in" "$TMP/$name-a.out" || fail "$name: subscriber a missed data"
    cmp -s "$TMP/bulk.in" "$TMP/$name-b.out" || fail "$name: subscriber b missed data"
    if [[ -n "$s" ]]; then
        kill -CONT "$s"
        kill -TERM "$s" 2>/dev/null || true
        wait_exit "$s" || true
    fi
    expect_ok "$pub" "$name: publisher"
}

note "a stalled subscriber does not slow the others"
bulk_round bulk-free
free_time=$ELAPSED
bulk_round bulk-stall stall
stall_time=$ELAPSED
printf 'two active subscribers received 12 MiB in %.2f s alone and %.2f s beside a stopped one\n' \
    "$free_time" "$stall_time"

stop_relay
echo "PASS"
