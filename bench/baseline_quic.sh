#!/usr/bin/env bash
# Baseline for bench/run.sh: a bare QUIC transfer with Debian's ngtcp2 example programs
# (gtlsserver -> gtlsclient over HTTP/3, the same libngtcp2 and GnuTLS the relay uses) on
# loopback. Prints throughput and the sender's CPU seconds per GB, median of N runs.
# Usage: bench/baseline_quic.sh [--runs N] [--mb MB]
set -euo pipefail
RUNS=3
MB=256
while (($#)); do
    case "$1" in
    --runs) RUNS="$2"; shift ;;
    --mb) MB="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v gtlsserver >/dev/null && command -v gtlsclient >/dev/null || {
    echo "needs gtlsserver and gtlsclient (Debian packages ngtcp2-server, ngtcp2-client)" >&2
    exit 1
}
TMP="$(mktemp -d)"
trap 'kill "${S:-0}" 2>/dev/null || true; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/htdocs" "$TMP/dl"
head -c $((MB * 1048576)) /dev/zero >"$TMP/htdocs/file"
certtool --generate-privkey --key-type ecdsa --outfile "$TMP/key.pem" 2>/dev/null
printf 'cn = localhost\nexpiration_days = 7\ntls_www_server\ndns_name = localhost\n' >"$TMP/t.tmpl"
certtool --generate-self-signed --load-privkey "$TMP/key.pem" --template "$TMP/t.tmpl" \
    --outfile "$TMP/cert.pem" 2>/dev/null
hz=$(getconf CLK_TCK)
port=$((20000 + RANDOM % 40000))
: >"$TMP/results"
for _ in $(seq 1 "$RUNS"); do
    gtlsserver -q -d "$TMP/htdocs" 127.0.0.1 "$port" "$TMP/key.pem" "$TMP/cert.pem" \
        >/dev/null 2>&1 &
    S=$!
    sleep 0.5
    c0=$(awk '{ print $14 + $15 }' "/proc/$S/stat")
    t0=$(date +%s.%N)
    timeout 120 gtlsclient -q --download "$TMP/dl" --exit-on-all-streams-close 127.0.0.1 "$port" \
        "https://127.0.0.1:$port/file" >/dev/null 2>&1
    t1=$(date +%s.%N)
    c1=$(awk '{ print $14 + $15 }' "/proc/$S/stat")
    kill "$S"
    wait "$S" 2>/dev/null || true
    size=$(stat -c %s "$TMP/dl/file")
    rm -f "$TMP/dl/file"
    awk -v a="$t0" -v b="$t1" -v c="$c0" -v d="$c1" -v sz="$size" -v hz="$hz" \
        'BEGIN { printf "%.3f %.3f\n", sz / 1048576 / (b - a), (d - c) / hz / (sz / 1073741824) }' \
        >>"$TMP/results"
done
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
printf "# bare QUIC (gtlsserver -> gtlsclient), %d MiB, %d run(s)\n" "$MB" "$RUNS"
printf "MB/s %.1f   sender CPU-s/GB %.2f\n" "$(cut -d' ' -f1 "$TMP/results" | median)" \
    "$(cut -d' ' -f2 "$TMP/results" | median)"
