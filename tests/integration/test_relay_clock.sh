#!/usr/bin/env bash
# `moq clock publish` sends each second when it begins, named by the time it is sent: a
# subscriber receives consecutive seconds without a gap, and seconds that arrive while the
# second they name is still running (frames named after the second that just ended would all
# arrive one second late; on a loaded machine some correct ones may be late too). The first
# line is left out of the timing check: it is written when the subscription arrives, at any
# point of its second.
source "$(dirname "$0")/lib.sh"
start_relay

TICKS=8
spawn clock-pub "$MOQ" clock publish "$HTTP_URL" --broadcast clock
clock_pub=$SPAWNED
# Each printed line with the wall-clock time it arrived (stdout is written unbuffered).
spawn clock-sub bash -c '"$1" clock subscribe "$2" --broadcast clock --count "$3" |
    while IFS= read -r line; do printf "%s %s\n" "$(date -u +%s.%N)" "$line"; done' \
    _ "$MOQ" "$HTTP_URL" "$TICKS"
expect_ok "$SPAWNED" "moq clock subscribe"
[[ "$(lines_of "$TMP/clock-sub.out")" == "$TICKS" ]] ||
    fail "expected $TICKS ticks: $(cat "$TMP/clock-sub.out")"

prev=
n=0
on_time=0
while read -r arrived day time; do
    named=$(date -u -d "$day $time" +%s) || fail "not a time: '$day $time'"
    if [[ -n "$prev" ]]; then
        ((named == prev + 1)) || fail "second $(date -u -d "@$prev" +%T) was followed by $time"
        late=$(awk -v a="$arrived" -v n="$named" 'BEGIN { print (a >= n + 1) ? 1 : 0 }')
        ((late == 1)) || on_time=$((on_time + 1))
    fi
    prev=$named
    n=$((n + 1))
done <"$TMP/clock-sub.out"
# A frame named after the second that just ended arrives after its second, every time; a
# correctly named one may too when a loaded machine runs the clients late, but not all of them.
((on_time > 0)) || fail "none of the seconds arrived while it was running: $(cat "$TMP/clock-sub.out")"
echo "clock subscribe printed $n consecutive seconds, $on_time of $((n - 1)) within their second"

kill -TERM "$clock_pub"
expect_ok "$clock_pub" "moq clock publish (SIGTERM)"
stop_relay
echo "PASS"
