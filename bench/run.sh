#!/usr/bin/env bash
# Relay benchmarks on loopback: fan-out throughput, CPU cost per delivered gigabyte and
# memory, for raw QUIC and WebTransport subscribers. Prints one line per run and a summary
# of medians; numbers, not assertions. Usage:
#   bench/run.sh [--quick] [--runs N] [--mb MB] [--frame BYTES] [--subs "1 10 50"]
#                [--transports "quic wt"] [--workers "1 2"]
# --workers runs each case with each server.workers value; "relay cores" is the relay's CPU
# time over the wall time (above 1.0: it used more than one core).
# Needs a release build in build/ (make build). CPU time is read from /proc/<pid>/stat;
# machine noise is 20-30 %, so compare medians of several runs made in one invocation.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
RELAY="$BUILD/moq-relay"
MOQ="$BUILD/moq"
RUNS=3
MB=256
FRAME=16384
GROUP_FRAMES=32
SUBS="1 10 50"
TRANSPORTS="quic wt"
WORKERS="1"
while (($#)); do
    case "$1" in
    --quick) RUNS=1 MB=64 SUBS="1 10" ;;
    --runs) RUNS="$2"; shift ;;
    --mb) MB="$2"; shift ;;
    --frame) FRAME="$2"; shift ;;
    --subs) SUBS="$2"; shift ;;
    --transports) TRANSPORTS="$2"; shift ;;
    --workers) WORKERS="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -x "$RELAY" && -x "$MOQ" ]] || { echo "build first: make build" >&2; exit 1; }
command -v perl >/dev/null || { echo "perl is needed to generate frames" >&2; exit 1; }

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

ticks() { # PID -> utime+stime in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z "$(ss -Hlnu "sport = :$p")" && -z "$(ss -Hlnt "sport = :$p")" ]]; then
            echo "$p"
            return
        fi
    done
    return 1
}

FRAMES=$((MB * 1024 * 1024 / FRAME))
INPUT="$TMP/input"
perl -e '
    my ($n, $size) = @ARGV;
    my $f = pack("N", $size) . ("x" x $size);
    print $f for 1 .. $n;
' "$FRAMES" "$FRAME" >"$INPUT"

run_one() { # TRANSPORT SUBSCRIBERS WORKERS -> prints "seconds relay_cpu_s relay_rss_kb"
    local transport="$1" subs="$2" workers="$3" port url args=()
    port="$(free_port)"
    "$RELAY" --server-bind "127.0.0.1:$port" --web-http-listen "127.0.0.1:$port" \
        --server-workers "$workers" \
        --tls-generate localhost --auth-public "" --log-level warn >"$TMP/relay.log" 2>&1 &
    local relay=$!
    PIDS+=("$relay")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.05
    done
    if [[ "$transport" == quic ]]; then
        url="moql://127.0.0.1:$port/"
        args=(--tls-fingerprint "$(curl -sf "http://127.0.0.1:$port/certificate.sha256")")
    else
        url="http://127.0.0.1:$port/"
    fi
    local sub_pids=()
    for i in $(seq 1 "$subs"); do
        "$MOQ" subscribe "$url" "${args[@]}" --broadcast bench --track t --framing length \
            --log-level error >/dev/null 2>"$TMP/sub$i.err" &
        sub_pids+=("$!")
        PIDS+=("$!")
    done
    sleep 0.5
    local before start
    before=$(ticks "$relay")
    start=$(date +%s.%N)
    "$MOQ" publish "$url" "${args[@]}" --broadcast bench --track t --framing length \
        --group-frames "$GROUP_FRAMES" --log-level error <"$INPUT" 2>"$TMP/pub.err" &
    local pub=$!
    PIDS+=("$pub")
    local ok=1
    for p in "${sub_pids[@]}"; do wait "$p" || ok=0; done
    local end after rss
    end=$(date +%s.%N)
    after=$(ticks "$relay")
    rss=$(awk '/VmHWM/ { print $2 }' "/proc/$relay/status")
    wait "$pub" || ok=0
    kill -TERM "$relay"
    wait "$relay" || true
    ((ok)) || { echo "a client failed; see $TMP" >&2; cat "$TMP"/*.err >&2; exit 1; }
    awk -v s="$start" -v e="$end" -v b="$before" -v a="$after" -v hz="$hz" -v rss="$rss" \
        'BEGIN { printf "%.3f %.3f %d\n", e - s, (a - b) / hz, rss }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

printf "# %d MiB per subscriber, %d-byte frames, %d frames per group, %d run(s) each\n" \
    "$MB" "$FRAME" "$GROUP_FRAMES" "$RUNS"
printf "%-10s %5s %7s %9s %12s %14s %11s %12s\n" transport subs workers seconds "MB/s out" \
    "relay CPU-s/GB" "relay cores" "relay RSS MB"
for transport in $TRANSPORTS; do
    for subs in $SUBS; do
        # Worker counts alternate run by run, so machine noise falls on all of them alike.
        for w in $WORKERS; do : >"$TMP/results-$w"; done
        for _ in $(seq 1 "$RUNS"); do
            for w in $WORKERS; do run_one "$transport" "$subs" "$w" >>"$TMP/results-$w"; done
        done
        for w in $WORKERS; do
            secs=$(cut -d' ' -f1 "$TMP/results-$w" | median)
            cpu=$(cut -d' ' -f2 "$TMP/results-$w" | median)
            rss=$(cut -d' ' -f3 "$TMP/results-$w" | median)
            awk -v t="$transport" -v n="$subs" -v w="$w" -v secs="$secs" -v cpu="$cpu" \
                -v rss="$rss" -v mb="$MB" \
                'BEGIN { printf "%-10s %5d %7d %9.2f %12.1f %14.2f %11.2f %12.1f\n", t, n, w,
                         secs, mb * n / secs, cpu / (mb * n / 1024), cpu / secs, rss / 1024 }'
        done
    done
done
