#!/usr/bin/env bash
# The native `moq` tool speaking IETF moq-transport over raw QUIC (moqt:// URLs, pinned
# with --moq-version moq-transport-NN, upstream's --client-version spelling too), publish ->
# relay -> subscribe for every draft 14 .. 20:
#  1. line framing arrives byte for byte, every group (20 one-frame groups at once);
#  2. length framing: binary frames, empty ones and a 1 MiB frame;
#  3. the ready events of both ends (announced, requested, subscribed);
#  4. the session ran on the pinned draft at both ends;
#  5. the relay's shutdown sends GOAWAY to IETF sessions on every transport;
#  6. --server-version decides which drafts are offered, on every transport.
source "$(dirname "$0")/lib.sh"
MOQ_LOG=info start_relay

DRAFTS=(14 15 16 17 18 19 20)
MOQT_URL="moqt://127.0.0.1:$PORT/"
alpn_of() { if [[ $1 == 14 ]]; then echo moq-00; else echo "moqt-$1"; fi; }

# 1 + 3. line framing, ready events -----------------------------------------------------------
note "line framing and ready events, every draft"
seq 1 20 >"$TMP/lines.in"
declare -A SUB PUB
for d in "${DRAFTS[@]}"; do
    b="lines-$d"
    spawn "sub-$b" "$MOQ" subscribe "$MOQT_URL" --tls-fingerprint "$FP" --broadcast "$b" \
        --track t --moq-version "moq-transport-$d" --ready-file "$(ready_file "sub-$b")"
    SUB[$d]=$SPAWNED
    IN="$TMP/lines.in" spawn "pub-$b" "$MOQ" publish "$MOQT_URL" --tls-fingerprint "$FP" \
        --broadcast "$b" --track t --client-version "moq-transport-$d" \
        --ready-file "$(ready_file "pub-$b")"
    PUB[$d]=$SPAWNED
done
for d in "${DRAFTS[@]}"; do
    b="lines-$d"
    expect_ok "${PUB[$d]}" "publisher on draft $d"
    expect_ok "${SUB[$d]}" "subscriber on draft $d"
    cmp -s "$TMP/lines.in" "$TMP/sub-$b.out" ||
        fail "draft $d: the subscriber got: $(tr '\n' ' ' <"$TMP/sub-$b.out")"
    for who in pub sub; do
        log_has "$TMP/$who-$b.err" "over QUIC ($(alpn_of "$d"))" ||
            fail "draft $d: the $who was not on $(alpn_of "$d")"
    done
    has_line "$(ready_file "pub-$b")" "announced $b" || fail "draft $d: no 'announced' event"
    has_line "$(ready_file "pub-$b")" "requested $b/t" || fail "draft $d: no 'requested' event"
    has_line "$(ready_file "sub-$b")" "subscribed $b/t" || fail "draft $d: no 'subscribed' event"
    (($(log_count "$RELAY_LOG" "session accepted (moq-transport-$d)") == 2)) ||
        fail "draft $d: the relay did not serve both ends on moq-transport-$d"
done

# 2. binary frames with length framing, a 1 MiB frame -----------------------------------------
note "length framing: binary, empty and 1 MiB frames, every draft"
{
    lframe 0
    lframe 7 <(printf 'a\nb\0c\r\n')
    lframe 1048576
    lframe 0
    lframe 65536
    lframe 3 <(printf 'end')
} >"$TMP/binary.in"
SUB=()
PUB=()
for d in "${DRAFTS[@]}"; do
    b="binary-$d"
    spawn "sub-$b" "$MOQ" subscribe "$MOQT_URL" --tls-fingerprint "$FP" --broadcast "$b" \
        --track t --moq-version "$d" --framing length
    SUB[$d]=$SPAWNED
    IN="$TMP/binary.in" spawn "pub-$b" "$MOQ" publish "$MOQT_URL" --tls-fingerprint "$FP" \
        --broadcast "$b" --track t --moq-version "$d" --framing length --group-frames 2
    PUB[$d]=$SPAWNED
done
for d in "${DRAFTS[@]}"; do
    expect_ok "${PUB[$d]}" "binary publisher on draft $d"
    expect_ok "${SUB[$d]}" "binary subscriber on draft $d"
    cmp -s "$TMP/binary.in" "$TMP/sub-binary-$d.out" || fail "draft $d: binary frames differ"
done

# 5. GOAWAY on shutdown -------------------------------------------------------------------------
note "the relay's shutdown sends GOAWAY to IETF sessions (14 over QUIC, 16 over WS, 20 over WT)"
declare -A WATCH
for spec in 14:quic 16:ws 20:wt; do
    d=${spec%%:*}
    case "${spec#*:}" in
    quic) url=("$MOQT_URL" --tls-fingerprint "$FP") ;;
    ws) url=("ws://127.0.0.1:$PORT/") ;;
    wt) url=("$HTTP_URL") ;;
    esac
    spawn "watch-$d" "$MOQ" announced "${url[@]}" --moq-version "$d" \
        --ready-file "$(ready_file "watch-$d")"
    WATCH[$d]=$SPAWNED
done
for d in "${!WATCH[@]}"; do
    wait_ready "watch-$d" "watching"
done
log_has "$RELAY_LOG" "ERROR" && fail "the relay logged an error"
stop_relay
for d in "${!WATCH[@]}"; do
    wait_exit "${WATCH[$d]}" || true
    log_has "$TMP/watch-$d.err" "peer sent GOAWAY" || fail "draft $d: no GOAWAY from the relay"
done

# 6. [server] version chooses what is offered, on every transport -------------------------------
note "--server-version moq-transport-17 --server-version moq-lite-05: only those, everywhere"
MOQ_LOG=info start_relay --server-version moq-transport-17 --server-version moq-lite-05
MOQT_URL="moqt://127.0.0.1:$PORT/"
log_has "$RELAY_LOG" "moq versions moq-lite-05, moqt-17 over" || fail "the relay offers more"
for tr in quic ws wt; do
    case "$tr" in
    quic) url=("$MOQT_URL" --tls-fingerprint "$FP") ;;
    ws) url=("ws://127.0.0.1:$PORT/") ;;
    wt) url=("$HTTP_URL") ;;
    esac
    spawn "only17-$tr" "$MOQ" announced "${url[@]}" --moq-version 17 \
        --ready-file "$(ready_file "only17-$tr")"
    wait_ready "only17-$tr" "watching"
    rc=0
    "$MOQ" announced "${url[@]}" --moq-version 16 >/dev/null 2>"$TMP/only16-$tr.err" || rc=$?
    ((rc != 0)) || fail "$tr: draft 16 was accepted"
    grep -qE "no_application_protocol|refused with HTTP status 400" "$TMP/only16-$tr.err" ||
        fail "$tr: draft 16 was not refused for its protocol: $(cat "$TMP/only16-$tr.err")"
done
stop_relay
echo "PASS"
