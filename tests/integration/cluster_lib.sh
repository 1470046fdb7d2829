# Helpers for the clustering tests (test_cluster_*.sh): several relays on loopback, each on
# one free port for QUIC and HTTP, sharing one signing key for the cluster token.
source "$(dirname "$0")/lib.sh"

TOKEN_TOOL="$MOQ_BUILD_DIR/moq-token"
"$TOKEN_TOOL" generate --out "$TMP/root.jwk" >/dev/null
"$TOKEN_TOOL" --key "$TMP/root.jwk" sign --root "" --subscribe "" --publish "" --cluster \
    >"$TMP/cluster.jwt"

declare -A RPORT RPID

# relay NAME [flags...]: start (or restart, on the same port) relay NAME. Anonymous clients
# may do anything (RELAY_PUBLIC=PREFIX: only under PREFIX); peer relays present the cluster
# token.
relay() {
    local name="$1"
    shift
    [[ -n "${RPORT[$name]:-}" ]] || RPORT[$name]="$(free_port)" || fail "no free port"
    local port="${RPORT[$name]}"
    launch "$name" "$TMP" --server-bind "127.0.0.1:$port" \
        --web-http-listen "127.0.0.1:$port" --tls-generate localhost \
        --auth-key "$TMP/root.jwk" --auth-public "${RELAY_PUBLIC:-}" --cluster-linger 1s \
        --client-tls-disable-verify "$@"
}

# Flags that make a relay notice a silent peer within seconds, for the tests that measure how
# a dead relay is detected. Elsewhere the defaults apply: a link starved for a few seconds on
# a loaded machine must not be taken for a dead one.
fast_failure() {
    echo "--server-quic-idle-timeout 3s --server-quic-keep-alive 1s" \
        "--client-quic-idle-timeout 3s --client-quic-keep-alive 1s"
}

# relay_config NAME DIR FILE [flags...]: start relay NAME from the config FILE (the relay's
# positional argument) with DIR as its working directory, where the file's relative paths
# (root.jwk, cluster.jwt) resolve. The file's listen addresses must be on RPORT[NAME].
relay_config() {
    local name="$1" dir="$2" file="$3"
    shift 3
    launch "$name" "$dir" "$file" "$@"
}

# launch NAME DIR ARGS...: run the relay with ARGS in DIR, appending to $TMP/NAME.log, and
# wait until it reports ready (once more than before). RELAY_MOQ_LOG replaces the log spec.
launch() {
    local name="$1" dir="$2" ready
    shift 2
    ready=$(log_count "$TMP/$name.log" "relay: ready")
    (cd "$dir" && MOQ_LOG="${RELAY_MOQ_LOG:-info,moq=debug}" exec "$MOQ_RELAY_BIN" "$@") \
        >>"$TMP/$name.log" 2>&1 &
    RPID[$name]=$!
    PIDS+=("$!")
    wait_for eval '(($(log_count "$TMP/$name.log" "relay: ready") > ready))' ||
        fail "relay $name did not start"
}

url() { echo "http://127.0.0.1:${RPORT[$1]}/"; }
peer() { echo "https://127.0.0.1:${RPORT[$1]}/"; }

# Flags for a relay that dials PEER, advertises itself, and uses TOKEN (default: valid).
member() { # SELF PEER [TOKEN_FILE]
    echo "--cluster-connect $(peer "$2") --cluster-node $(peer "$1")" \
        "--cluster-token ${3:-$TMP/cluster.jwt}"
}

joined() { # NAME PEER
    log_has "$TMP/$1.log" "cluster: connected to $(peer "$2")"
}

stop() { # NAME
    kill -TERM "${RPID[$1]}" 2>/dev/null || true
    wait_exit "${RPID[$1]}" || fail "relay $1 did not stop cleanly"
    if grep -qE "Sanitizer|runtime error" "$TMP/$1.log"; then
        fail "relay $1 reported a sanitizer error"
    fi
}

# start_publisher NAME RELAY BROADCAST: a FIFO-fed publisher (see fifo_publisher in lib.sh)
# of track t on relay RELAY.
start_publisher() { # NAME RELAY BROADCAST [moq publish options]
    fifo_publisher "$1" "$(url "$2")" --broadcast "$3" --track t "${@:4}"
}
