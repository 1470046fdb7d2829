#!/usr/bin/env bash
# The walkthrough of docs/auth.md, run as written: every code block marked
# `<!-- walkthrough: KIND -->` in order, in an empty directory, with the built binaries first
# on the PATH, in a network namespace of its own (so the documented port 4443 is free and
# nothing leaves loopback). `run` blocks must succeed; `background` blocks keep running (the
# relay, the subscriber); `refused` blocks must exit 1 with the message the docs show; the
# subscriber must print exactly the documented output.
if [[ -z "${MOQ_WALKTHROUGH_NETNS:-}" ]]; then
    unshare --map-root-user --net true 2>/dev/null ||
        { echo "FAIL: this test needs user and network namespaces (unshare -rn)" >&2; exit 1; }
    MOQ_WALKTHROUGH_NETNS=1 exec unshare --map-root-user --net "$BASH" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
ip link set lo up || fail "cannot bring up loopback in the namespace"

DOC="$MOQ_SOURCE_DIR/docs/auth.md"
mkdir -p "$TMP/steps" "$TMP/walk"
# Split the marked blocks into $TMP/steps/NNN.KIND[.NAME].
awk -v dir="$TMP/steps" '
    /^<!-- walkthrough: .* -->$/ { kind = $3; name = ($4 == "-->") ? "" : "." $4; next }
    kind != "" && /^```/ && !inb { inb = 1; n++; file = sprintf("%s/%03d.%s%s", dir, n, kind, name); printf "" > file; next }
    inb && /^```/ { inb = 0; kind = ""; close(file); next }
    inb { print > file }' "$DOC"
STEPS=("$TMP"/steps/*)
((${#STEPS[@]} >= 8)) || fail "docs/auth.md has ${#STEPS[@]} walkthrough blocks"
mapfile -t REFUSALS <"$(ls "$TMP"/steps/*.output.refused)"

cd "$TMP/walk"
export PATH="$MOQ_BUILD_DIR:$PATH"
refused=0
for step in "${STEPS[@]}"; do
    base="$(basename "$step")"
    kind="${base#*.}"
    note "$kind: $(head -1 "$step")"
    case "$kind" in
    run)
        bash -euo pipefail "$step" >"$TMP/$base.out" 2>"$TMP/$base.err" ||
            fail "$base failed: $(tail -3 "$TMP/$base.err")"
        ;;
    background.relay)
        RELAY_LOG="$TMP/relay.log"
        spawn relay bash -c "exec $(cat "$step")"
        RELAY_PID=$SPAWNED
        cp /dev/null "$RELAY_LOG"
        wait_for log_has "$TMP/relay.err" "relay: ready" || fail "the relay did not start"
        RELAY_LOG="$TMP/relay.err"
        ;;
    background.subscriber)
        spawn sub bash -c "exec $(cat "$step")"
        SUB_PID=$SPAWNED
        wait_for log_has "$TMP/sub.err" "client: connected" || fail "the subscriber did not connect"
        ;;
    refused)
        rc=0
        bash -uo pipefail "$step" >"$TMP/$base.out" 2>"$TMP/$base.err" || rc=$?
        ((rc == 1)) || fail "$base: exit $rc, not 1"
        grep -qxF -- "${REFUSALS[$refused]}" "$TMP/$base.err" ||
            fail "$base: not \"${REFUSALS[$refused]}\": $(tail -3 "$TMP/$base.err")"
        refused=$((refused + 1))
        ;;
    output.subscriber)
        expect_ok "$SUB_PID" "the subscriber"
        diff "$step" "$TMP/sub.out" >"$TMP/sub.diff" || fail "the subscriber printed: $(cat "$TMP/sub.out")"
        ;;
    output.refused) ;;
    *) fail "unknown walkthrough block kind $kind" ;;
    esac
done
((refused == ${#REFUSALS[@]})) || fail "$refused refused blocks for ${#REFUSALS[@]} documented messages"
if grep -qF "$(cat publish.jwt)" "$RELAY_LOG" || grep -qF "$(cat watch.jwt)" "$RELAY_LOG"; then
    fail "a token reached the relay's log"
fi
stop_relay
note "ok"
