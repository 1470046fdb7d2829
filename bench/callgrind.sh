#!/usr/bin/env bash
# Instructions the relay executes per delivered byte, counted by callgrind: a deterministic
# figure next to bench/run.sh's CPU seconds, which vary 20-30 % from run to run. Usage:
#   bench/callgrind.sh [--small] [--subs N] [--frames N] [--frame BYTES] [--group-frames N]
# --small sends frames of 256 bytes (the same 2,048 frames), where per-frame costs weigh more
# than with the default 4,096 bytes. One publisher sends FRAMES frames of FRAME bytes over raw QUIC; SUBS subscribers receive
# all of them. Counting starts when every subscriber is subscribed and the publisher holds
# the track open with nothing sent yet (session setup and handshakes are left out), and ends
# when the relay has exited (the sessions' teardown is counted).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
RELAY="$BUILD/moq-relay"
MOQ="$BUILD/moq"
SUBS=5
FRAMES=2048
FRAME=4096
GROUP_FRAMES=32
while (($#)); do
    case "$1" in
    --small) FRAME=256 ;;
    --subs) SUBS="$2"; shift ;;
    --frames) FRAMES="$2"; shift ;;
    --frame) FRAME="$2"; shift ;;
    --group-frames) GROUP_FRAMES="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -x "$RELAY" && -x "$MOQ" ]] || { echo "build first: make build" >&2; exit 1; }
command -v valgrind >/dev/null || MOQ_DEPS_VALGRIND=1 scripts/deps.sh
command -v perl >/dev/null || { echo "perl is needed to generate frames" >&2; exit 1; }

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [[ -n "${KEEP:-}" ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# Waits on state; the bound only catches a hang (valgrind slows the relay 20-50x).
wait_for() { # SECONDS COMMAND...
    local limit=$(($1 * 10))
    shift
    for _ in $(seq "$limit"); do
        "$@" && return 0
        sleep 0.1
    done
    echo "timed out waiting for: $*" >&2
    return 1
}

perl -e '
    my ($n, $size) = @ARGV;
    for my $i (1 .. $n) { print pack("N", $size) . chr(65 + $i % 26) x $size }
' "$FRAMES" "$FRAME" >"$TMP/input"

port=$((20000 + RANDOM % 40000))
valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out" --instr-atstart=no \
    "$RELAY" --server-bind "127.0.0.1:$port" --web-http-listen "127.0.0.1:$port" \
    --tls-generate localhost --auth-public "" --log-level warn >"$TMP/relay.log" 2>&1 &
relay=$!
PIDS+=("$relay")
wait_for 120 curl -sf -o /dev/null "http://127.0.0.1:$port/health"
url="moql://127.0.0.1:$port/"
fp=$(curl -sf "http://127.0.0.1:$port/certificate.sha256")
common=(--tls-fingerprint "$fp" --broadcast bench --track t --framing length --log-level error)

mkfifo "$TMP/feed"
"$MOQ" publish "$url" "${common[@]}" --group-frames "$GROUP_FRAMES" --max-latency 600s \
    --ready-file "$TMP/pub.ready" <"$TMP/feed" 2>"$TMP/pub.err" &
PIDS+=("$!")
pub=$!
exec 3>"$TMP/feed" # the publisher's input stays open, and empty, until counting starts
wait_for 120 grep -q announced "$TMP/pub.ready"
# moq-lite-04 acknowledges a subscription before any frame exists (05 only with a group).
subs=()
for i in $(seq "$SUBS"); do
    "$MOQ" subscribe "$url" "${common[@]}" --moq-version 04 --timeout 120s \
        --ready-file "$TMP/sub.ready" \
        >"$TMP/out$i" 2>"$TMP/sub$i.err" 3>&- &
    subs+=("$!")
    PIDS+=("$!")
done
subscribed() { [[ "$(grep -c subscribed "$TMP/sub.ready" 2>/dev/null)" == "$SUBS" ]]; }
wait_for 300 subscribed

callgrind_control --instr=on "$relay" >/dev/null 2>&1
cat "$TMP/input" >&3
exec 3>&-
ok=1
for p in "${subs[@]}"; do wait "$p" || ok=0; done
wait "$pub" || ok=0
kill -TERM "$relay"
wait "$relay" || true
((ok)) || { echo "a client failed:" >&2; cat "$TMP"/*.err "$TMP/relay.log" >&2; exit 1; }
for i in $(seq "$SUBS"); do
    cmp -s "$TMP/input" "$TMP/out$i" || { echo "subscriber $i did not receive every frame" >&2; exit 1; }
done

instr=$(awk '/^(summary|totals):/ { print $2; exit }' "$TMP/callgrind.out")
bytes=$((SUBS * FRAMES * FRAME))
printf "# 1 publisher -> %d subscribers, raw QUIC, %d frames of %d bytes, %d frames per group\n" \
    "$SUBS" "$FRAMES" "$FRAME" "$GROUP_FRAMES"
printf "relay instructions %d, delivered payload %d bytes, %.2f instructions per byte\n" \
    "$instr" "$bytes" "$(awk -v i="$instr" -v b="$bytes" 'BEGIN { print i / b }')"
# The allocator's share: instructions inside malloc, calloc, realloc and free (inclusive of
# what they call).
callgrind_annotate --inclusive=yes --threshold=100 "$TMP/callgrind.out" 2>/dev/null |
    awk -v total="$instr" '
        match($0, /malloc\.c:(malloc|calloc|realloc|free) /) {
            fn = substr($0, RSTART + 9, RLENGTH - 10)
            gsub(",", "", $1)
            if (!(fn in seen)) { seen[fn] = 1; sum += $1 }
        }
        END { printf "malloc/calloc/realloc/free: %d instructions, %.2f %% of the relay'"'"'s\n", sum, 100 * sum / total }'
