#!/usr/bin/env bash
# Instructions the relay executes per delivered byte, counted by callgrind: a deterministic
# figure next to bench/run.sh's CPU seconds, which vary 20-30 % from run to run; and the
# calls to malloc, calloc and realloc per frame once the relay is in its steady state.
# Usage:
#   bench/callgrind.sh [--small] [--workers N] [--subs N] [--frames N] [--frame BYTES]
#                      [--group-frames N] [--cache-groups N]
# One publisher sends FRAMES frames of FRAME bytes over raw QUIC; SUBS subscribers receive
# all of them. --small sends frames of 256 bytes (the same 2,048 frames), where per-frame
# costs weigh more than with the default 4,096 bytes. --workers N runs the relay with N
# worker threads and places the subscribers on all of them (as evenly as they divide; the
# publisher is on whichever worker its connection landed on), so the track crosses workers.
# The relay's cache holds about CACHE_GROUPS groups (--cache-capacity; 0: unbounded, as in a
# run shorter than the track's cache window, where every frame's chunk is new memory), so
# that old groups leave it and their memory is reused, as in a relay that runs for long.
#
# Counting starts when every subscriber is subscribed and the publisher holds the track
# open with nothing sent yet (session setup and handshakes are left out), and ends when the
# relay has exited (the sessions' teardown is counted). The frames go in three parts: a
# half (warm-up: the cache, the pools and the congestion windows fill), a quarter (the
# steady state), the rest; callgrind dumps its counts after each part has reached every
# subscriber. With fewer than 4,096 frames the warm-up may not be over (--frames 4096). Instructions per
# byte are from all three dumps. Allocations per frame are from the middle dump alone: the
# calls= counts of callgrind's call graph to malloc, calloc and realloc (from anywhere in the
# relay and its libraries), divided by the frames of that part - setup, warm-up and
# teardown are in the other dumps.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
RELAY="$BUILD/moq-relay"
MOQ="$BUILD/moq"
SUBS=5
FRAMES=2048
FRAME=4096
GROUP_FRAMES=32
WORKERS=1
CACHE_GROUPS=8
while (($#)); do
    case "$1" in
    --small) FRAME=256 ;;
    --workers) WORKERS="$2"; shift ;;
    --subs) SUBS="$2"; shift ;;
    --frames) FRAMES="$2"; shift ;;
    --frame) FRAME="$2"; shift ;;
    --group-frames) GROUP_FRAMES="$2"; shift ;;
    --cache-groups) CACHE_GROUPS="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
((WORKERS >= 1 && SUBS >= WORKERS)) || { echo "--subs must be at least --workers" >&2; exit 2; }
((FRAMES >= 4)) || { echo "--frames must be at least 4" >&2; exit 2; }
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
# The three parts, in frames, and where each ends in the subscribers' output, in bytes.
PARTS=($((FRAMES / 2)) $((FRAMES / 4)) $((FRAMES - FRAMES / 2 - FRAMES / 4)))
ENDS=() offset=0
for i in 0 1 2; do
    head -c $((offset + PARTS[i] * (FRAME + 4))) "$TMP/input" | tail -c $((PARTS[i] * (FRAME + 4))) \
        >"$TMP/part$i"
    offset=$((offset + PARTS[i] * (FRAME + 4)))
    ENDS+=("$offset")
done

relay_args=(--server-workers "$WORKERS")
((CACHE_GROUPS == 0)) || relay_args+=(--cache-capacity $((CACHE_GROUPS * GROUP_FRAMES * FRAME)))
port=$((20000 + RANDOM % 40000))
# relay=debug: the relay logs which worker each session is on (only while sessions start).
MOQ_LOG=warn,relay=debug valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out" \
    --instr-atstart=no "$RELAY" --server-bind "127.0.0.1:$port" --web-http-listen "127.0.0.1:$port" \
    --tls-generate localhost --auth-public "" "${relay_args[@]}" >"$TMP/relay.log" 2>&1 &
relay=$!
PIDS+=("$relay")
wait_for 120 curl -sf -o /dev/null "http://127.0.0.1:$port/health"
url="moql://127.0.0.1:$port/"
fp=$(curl -sf "http://127.0.0.1:$port/certificate.sha256")
common=(--tls-fingerprint "$fp" --broadcast bench --track t --framing length --log-level error)

sessions() { grep -c "session on worker" "$TMP/relay.log" || true; }
last_worker() { grep "session on worker" "$TMP/relay.log" | tail -1 | awk '{ print $NF }'; }
more_sessions() { (($(sessions) > $1)); }

mkfifo "$TMP/feed"
"$MOQ" publish "$url" "${common[@]}" --group-frames "$GROUP_FRAMES" --max-latency 600s \
    --ready-file "$TMP/pub.ready" <"$TMP/feed" 2>"$TMP/pub.err" &
PIDS+=("$!")
pub=$!
exec 3>"$TMP/feed" # the publisher's input stays open, and empty, until counting starts
wait_for 120 grep -qs announced "$TMP/pub.ready"
pub_worker=0
((WORKERS == 1)) || { wait_for 60 more_sessions 0 && pub_worker=$(last_worker); }

# moq-lite-04 acknowledges a subscription before any frame exists (05 only with a group).
# Each new connection lands on a worker its connection ID picks: one that lands on a worker
# which has its share of subscribers already is closed, and another one started.
declare -a ON=() QUOTA=()
for ((w = 0; w < WORKERS; w++)); do ON[w]=0 QUOTA[w]=$((SUBS / WORKERS + (w < SUBS % WORKERS))); done
subs=()
attempts=0 w=0
for i in $(seq "$SUBS"); do
    while :; do
        ((++attempts <= 20 * SUBS)) || { echo "no worker placement after $attempts tries" >&2; exit 1; }
        before=$(sessions)
        "$MOQ" subscribe "$url" "${common[@]}" --moq-version 04 --timeout 120s \
            --ready-file "$TMP/sub$i.ready" >"$TMP/out$i" 2>"$TMP/sub$i.err" 3>&- &
        sub=$!
        ((WORKERS == 1)) && break
        PIDS+=("$sub")
        wait_for 60 more_sessions "$before"
        w=$(last_worker)
        ((ON[w] < QUOTA[w])) && break
        kill -TERM "$sub"
        wait "$sub" || true
        rm -f "$TMP/sub$i.ready"
    done
    ON[w]=$((ON[w] + 1))
    subs+=("$sub")
    PIDS+=("$sub")
    wait_for 300 grep -qs subscribed "$TMP/sub$i.ready"
done

delivered() { # BYTES: every subscriber wrote that much
    for i in $(seq "$SUBS"); do (($(stat -c %s "$TMP/out$i") >= $1)) || return 1; done
}
callgrind_control --instr=on "$relay" >/dev/null 2>&1
for part in 0 1 2; do
    cat "$TMP/part$part" >&3
    ((part == 2)) && break
    wait_for 600 delivered "${ENDS[part]}"
    callgrind_control --dump="part $part" "$relay" >/dev/null 2>&1
    wait_for 60 test -s "$TMP/callgrind.out.$((part + 1))"
done
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

dumps=("$TMP/callgrind.out.1" "$TMP/callgrind.out.2" "$TMP/callgrind.out")
instr=$(awk '/^(summary|totals):/ { s += $2; nextfile } END { print s }' "${dumps[@]}")
# calls= lines follow the cfn= line that names the callee; names are compressed to "(id)"
# after their first use in each file.
allocs=$(awk '
    FNR == 1 { delete name }
    /^c?fn=\(/ {
        id = substr($1, index($1, "(")); sub(/^c?fn=/, "", id)
        if (NF > 1) name[id] = $2
        if ($0 ~ /^cfn=/) callee = name[id]
    }
    /^calls=/ && callee ~ /^(malloc|calloc|realloc)('"'"'[0-9]+)?$/ { n += substr($1, 7) }
    END { print n + 0 }' "${dumps[1]}")
bytes=$((SUBS * FRAMES * FRAME))
placement=""
((WORKERS == 1)) || placement=" (worker $pub_worker), on workers 0..$((WORKERS - 1)): ${ON[*]}"
printf "# 1 publisher -> %d subscribers%s, raw QUIC, %d worker(s), %d frames of %d bytes, %d frames per group, cache %s\n" \
    "$SUBS" "$placement" "$WORKERS" "$FRAMES" "$FRAME" "$GROUP_FRAMES" \
    "$( ((CACHE_GROUPS)) && echo "about $CACHE_GROUPS groups" || echo unbounded)"
printf "relay instructions %d, delivered payload %d bytes, %.2f instructions per byte\n" \
    "$instr" "$bytes" "$(awk -v i="$instr" -v b="$bytes" 'BEGIN { print i / b }')"
printf "steady state (frames %d-%d): %d calls to malloc/calloc/realloc, %.3f per frame\n" \
    $((PARTS[0] + 1)) $((PARTS[0] + PARTS[1])) "$allocs" \
    "$(awk -v a="$allocs" -v f="${PARTS[1]}" 'BEGIN { print a / f }')"
# The allocator's share: instructions inside malloc, calloc, realloc and free (inclusive of
# what they call), over all three dumps.
alloc_instr=0
for d in "${dumps[@]}"; do
    n=$(callgrind_annotate --inclusive=yes --threshold=100 "$d" 2>/dev/null |
        awk 'match($0, /malloc\.c:(malloc|calloc|realloc|free) /) {
                 fn = substr($0, RSTART + 9, RLENGTH - 10)
                 gsub(",", "", $1)
                 if (!(fn in seen)) { seen[fn] = 1; sum += $1 }
             }
             END { print sum + 0 }')
    alloc_instr=$((alloc_instr + n))
done
printf "malloc/calloc/realloc/free: %d instructions, %.2f %% of the relay's\n" "$alloc_instr" \
    "$(awk -v a="$alloc_instr" -v t="$instr" 'BEGIN { print 100 * a / t }')"
