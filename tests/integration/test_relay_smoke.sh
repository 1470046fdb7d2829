#!/usr/bin/env bash
# The `make run` flow end to end: the relay on dev/relay.toml (ports moved to a free one,
# listening on [::] like the file), `moq clock publish` and `moq clock subscribe` on
# http://localhost:PORT/ show the time ticking, /announced/ lists the clock and
# /fetch/clock/seconds returns its latest group.
source "$(dirname "$0")/lib.sh"
[[ -e /proc/net/if_inet6 ]] || skip "no IPv6 on this machine: dev/relay.toml listens on [::]"
RELAY_CONFIG="$MOQ_SOURCE_DIR/dev/relay.toml" RELAY_HOST="[::]" start_relay
URL="http://localhost:$PORT/"

spawn clock-pub "$MOQ" clock publish "$URL" --broadcast clock
clock_pub=$SPAWNED
spawn clock-sub "$MOQ" clock subscribe "$URL" --broadcast clock --count 3
expect_ok "$SPAWNED" "moq clock subscribe"
time_re='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$'
[[ "$(lines_of "$TMP/clock-sub.out")" == 3 ]] || fail "expected 3 ticks: $(cat "$TMP/clock-sub.out")"
prev=""
while read -r line; do
    [[ "$line" =~ $time_re ]] || fail "not a time: '$line'"
    [[ -z "$prev" || "$line" > "$prev" ]] || fail "the clock did not tick: '$prev' then '$line'"
    prev="$line"
done <"$TMP/clock-sub.out"
echo "clock subscribe printed: $(tr '\n' ',' <"$TMP/clock-sub.out")"

[[ "$(curl -sf "http://localhost:$PORT/announced/")" == "clock" ]] ||
    fail "/announced/ lists: $(curl -s "http://localhost:$PORT/announced/")"
# The latest group is the current minute, still being written: read its first frame, the
# prefix "YYYY-MM-DD HH:MM:" (17 bytes), and one second (2 bytes), then hang up.
{ curl -sN --max-time 20 "http://localhost:$PORT/fetch/clock/seconds" || true; } |
    head -c 19 >"$TMP/fetch.body"
body="$(cat "$TMP/fetch.body")"
[[ "$body" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:([0-9]{2})+$ ]] ||
    fail "/fetch/clock/seconds returned: '$body'"
echo "latest group: $body"

kill -TERM "$clock_pub"
expect_ok "$clock_pub" "moq clock publish (SIGTERM)"
stop_relay
echo "PASS"
