#!/usr/bin/env bash
# Publish -> relay -> subscribe with the real binaries, for moq-lite-05, -04 and -03 over
# raw QUIC and WebTransport:
#  1. line framing arrives byte for byte (empty frames, a last line without newline);
#  2. binary frames with --framing length arrive byte for byte (empty ones, NULs, newlines);
#  3. a 4 MiB frame;
#  4. two tracks of one broadcast, each to its own subscriber;
#  5. a late joiner starts at the latest group (from its first frame) and then follows live.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info,moq=debug start_relay

VERSIONS=(05 04 03)
TRANSPORTS=(quic wt)

# 1. line framing -----------------------------------------------------------------------------
note "line framing, every version and transport"
printf 'hello\n\nworld\n\n\nlast line without newline' >"$TMP/lines.in"
printf 'hello\n\nworld\n\n\nlast line without newline\n' >"$TMP/lines.expected"
declare -A SUB PUB
for v in "${VERSIONS[@]}"; do
    for tr in "${TRANSPORTS[@]}"; do
        b="lines-$v-$tr"
        # shellcheck disable=SC2046
        spawn "sub-$b" "$MOQ" subscribe $(url_args "$tr") --broadcast "$b" --track t \
            --moq-version "$v"
        SUB[$b]=$SPAWNED
        # shellcheck disable=SC2046
        IN="$TMP/lines.in" spawn "pub-$b" "$MOQ" publish $(url_args "$tr") --broadcast "$b" \
            --track t --moq-version "$v"
        PUB[$b]=$SPAWNED
    done
done
for b in "${!SUB[@]}"; do
    expect_ok "${PUB[$b]}" "publisher $b"
    expect_ok "${SUB[$b]}" "subscriber $b"
    cmp -s "$TMP/lines.expected" "$TMP/sub-$b.out" || fail "$b: subscriber output differs"
    log_has "$TMP/sub-$b.err" "moq-lite-${b:6:2}" || fail "$b: not on moq-lite-${b:6:2}"
done

# 2 + 3. binary frames with length framing, and a 4 MiB frame ---------------------------------
note "length framing: binary, empty and 4 MiB frames"
{
    lframe 0
    lframe 1 <(printf '\0')
    lframe 7 <(printf 'a\nb\0c\r\n')
    lframe 1000
    lframe 0
    lframe 65536
    lframe 3 <(printf 'end')
} >"$TMP/binary.in"
{
    lframe 4194304
    lframe 5 <(printf 'after')
} >"$TMP/big.in"
SUB=()
PUB=()
for v in "${VERSIONS[@]}"; do
    for kind in binary big; do
        tr=quic
        [[ $kind == big && $v == 04 ]] && tr=wt
        [[ $kind == binary && $v != 04 ]] && tr=wt
        b="$kind-$v"
        # shellcheck disable=SC2046
        spawn "sub-$b" "$MOQ" subscribe $(url_args "$tr") --broadcast "$b" --track t \
            --moq-version "$v" --framing length
        SUB[$b]=$SPAWNED
        # shellcheck disable=SC2046
        IN="$TMP/$kind.in" spawn "pub-$b" "$MOQ" publish $(url_args "$tr") --broadcast "$b" \
            --track t --moq-version "$v" --framing length --group-frames 3
        PUB[$b]=$SPAWNED
    done
done
for b in "${!SUB[@]}"; do
    expect_ok "${PUB[$b]}" "publisher $b"
    expect_ok "${SUB[$b]}" "subscriber $b"
    cmp -s "$TMP/${b%-*}.in" "$TMP/sub-$b.out" || fail "$b: subscriber output differs"
done

# 4. two tracks of one broadcast --------------------------------------------------------------
note "two tracks in one broadcast"
seq 1 50 >"$TMP/video.in"
seq 1000 1010 >"$TMP/audio.in"
spawn sub-video "$MOQ" subscribe "$HTTP_URL" --broadcast room --track video
sv=$SPAWNED
spawn sub-audio "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast room \
    --track audio
sa=$SPAWNED
spawn pub-room "$MOQ" publish "$QUIC_URL" --tls-fingerprint "$FP" --broadcast room \
    --track "video=$TMP/video.in" --track "audio=$TMP/audio.in" --group-frames 5
expect_ok "$SPAWNED" "two-track publisher"
expect_ok "$sv" "video subscriber"
expect_ok "$sa" "audio subscriber"
cmp -s "$TMP/video.in" "$TMP/sub-video.out" || fail "video track differs"
cmp -s "$TMP/audio.in" "$TMP/sub-audio.out" || fail "audio track differs"

# 5. late joiner ------------------------------------------------------------------------------
note "a late joiner starts at the latest group"
# Groups of two frames: a and b are published before the late subscriber arrives, c after
# the relay attached it: its ready event (SUBSCRIBE_OK on 03/04; on 05 SUBSCRIBE_START, which
# comes at once with the cached group b).
publish_late() { # VERSION BROADCAST GO-FILE
    exec "$MOQ" publish "$HTTP_URL" --broadcast "$2" --track t --moq-version "$1" \
        --group-frames 2 < <(
            printf 'a1\na2\nb1\nb2\n'
            for _ in $(seq 600); do
                [[ -e "$3" ]] && break
                sleep 0.05
            done
            printf 'c1\nc2\n'
        )
}
declare -A FIRST LATE
PUB=()
for v in "${VERSIONS[@]}"; do
    b="late-$v"
    spawn "first-$b" "$MOQ" subscribe "$HTTP_URL" --broadcast "$b" --track t --moq-version "$v"
    FIRST[$b]=$SPAWNED
    spawn "pub-$b" publish_late "$v" "$b" "$TMP/go-$b"
    PUB[$b]=$SPAWNED
done
for v in "${VERSIONS[@]}"; do
    b="late-$v"
    wait_for at_least_lines "$TMP/first-$b.out" 4 || fail "$b: the first subscriber got nothing"
    spawn "late-$b" "$MOQ" subscribe "$QUIC_URL" --tls-fingerprint "$FP" --broadcast "$b" \
        --track t --moq-version "$v" --ready-file "$(ready_file "late-$b")"
    LATE[$b]=$SPAWNED
    wait_ready "late-$b" "subscribed $b/t"
    relay_subscribed "$b/t" 2 || fail "$b: ready before the relay attached the late subscriber"
    touch "$TMP/go-$b"
done
for v in "${VERSIONS[@]}"; do
    b="late-$v"
    expect_ok "${PUB[$b]}" "publisher $b"
    expect_ok "${FIRST[$b]}" "first subscriber $b"
    expect_ok "${LATE[$b]}" "late subscriber $b"
    [[ "$(tr '\n' ' ' <"$TMP/first-$b.out")" == "a1 a2 b1 b2 c1 c2 " ]] ||
        fail "$b: first subscriber got: $(tr '\n' ' ' <"$TMP/first-$b.out")"
    [[ "$(tr '\n' ' ' <"$TMP/late-$b.out")" == "b1 b2 c1 c2 " ]] ||
        fail "$b: late subscriber got: $(tr '\n' ' ' <"$TMP/late-$b.out")"
done

stop_relay
echo "PASS"
