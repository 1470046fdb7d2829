# Shared by tests/interop/test_node_ietf*.sh (sourced, bash, after lib.sh): the @moq/net
# flows for IETF moq-transport protocols, one pinned at a time, and mixed pairs.
#
# ietf_suite "VERSIONS..." "PAIRS..." [RELAY-ARGS...]: start a relay (with RELAY-ARGS), run
# every flow for each protocol of VERSIONS ("moql", "moqt-15", ...) and the mixed scenario for
# each "PUB SUB" pair of PAIRS, then check the relay's log.
ietf_suite() {
    local versions=($1) pairs=() v released extra=("${@:3}")
    IFS=',' read -ra pairs <<<"$2"
    install_client
    # Node may not read its socket for tens of seconds while it handles 24 MiB on a loaded
    # machine (20 s was seen): no ack timeout and a long idle timeout keep that from counting
    # as a vanished peer; these clients close their sessions, nothing here waits on detection.
    start_relay ietf --web-http-listen 127.0.0.1:0 --auth-public "" --cluster-linger 300ms \
        --web-metrics=true --server-quic-ack-timeout 0 --server-quic-idle-timeout 120s "${extra[@]}"
    [ -n "$HTTP_PORT" ] || abort "no HTTP port in the relay log"
    local url="http://localhost:$HTTP_PORT/"
    for v in "${versions[@]}"; do
        local opts="\"url\":\"$url\",\"version\":\"$v\""
        scenario "$v two tracks" two-tracks "{$opts}"
        scenario "$v fan-out 1 -> 10" fanout "{$opts}"
        scenario "$v late joiner" late-join "{$opts}"
        scenario "$v publisher ends the broadcast" unannounce "{$opts}"
        scenario "$v publisher disconnects" disconnect "{$opts}"
        scenario "$v unsubscribe reaches the publisher" unsubscribe "{$opts}"
        scenario "$v 400 groups in a burst (stream credit)" burst "{$opts}"
        scenario "$v 90 tracks" many-tracks "{$opts}"
        scenario "$v 24 MiB in flight (large frames on interleaved streams)" large "{$opts}"
        expect_log "$v: the relay ran sessions of that protocol" "ietf: .*: $v session over WebSocket"
    done
    local pair
    for pair in "${pairs[@]}"; do
        set -- $pair
        scenario "publisher $1 -> subscribers $2" mixed \
            "{\"url\":\"$url\",\"pubVersion\":\"$1\",\"subVersion\":\"$2\"}"
    done
    # From draft-17 this client's publisher does not observe the release (see the unsubscribe
    # scenario): the relay's log shows that it sent one in every unsubscribe flow.
    released=$(grep -cE "ietf: .*SUBSCRIBE [0-9]+ /node/unsub/.* upstream released" "$RELAY_LOG")
    if [ "$released" -eq ${#versions[@]} ]; then
        ok "the relay released the upstream subscription of every unsubscribe flow"
    else
        ko "the relay released $released upstream subscriptions in ${#versions[@]} unsubscribe flows"
    fi
    expect_no_log "no IETF session failed" "ietf: .*closing session"
    finish_relay "relay with IETF sessions"
}
