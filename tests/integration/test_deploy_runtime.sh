#!/usr/bin/env bash
# The container image's runtime file set (dist/container/runtime-files.sh: the binaries and
# the shared libraries they load, nothing else) is all the relay needs: the relay runs from
# it alone, chrooted into it as an unprivileged user with /proc and /dev as a container
# runtime provides them, loads the config the way the container guide mounts it
# (`-v ./config.toml:/config.toml IMAGE /config.toml`), tells READY=1 and serves a client
# outside; the client from the same set works inside. `make container-test` builds and runs
# the real image where podman can (docs/operations.md).
source "$(dirname "$0")/deploy_lib.sh"
as_root_or_userns "$@"
source "$(dirname "$0")/lib.sh"
[[ -e /proc/net/if_inet6 ]] || skip "no IPv6 on this machine: the container config listens on [::]"
LISTENER="$HELPERS/notify_listener"

note "the runtime file set"
SET="$TMP/runtime"
"$MOQ_SOURCE_DIR/dist/container/runtime-files.sh" "$SET" "$MOQ_RELAY_BIN" "$MOQ_BUILD_DIR/moq" \
    "$MOQ_BUILD_DIR/moq-token"
(cd "$SET" && find . -type f | sort) >"$TMP/files"
grep -vE '^\./usr/local/bin/moq(-relay|-token)?$|^\./usr/lib[^/]*/([^/]+/)?(ld-linux[^/]*|lib[^/]*\.so[.0-9]*)$' \
    "$TMP/files" >"$TMP/strays" && fail "not a binary or a shared library: $(cat "$TMP/strays")"
grep -q 'libngtcp2.so' "$TMP/files" || fail "the set lacks libngtcp2: $(cat "$TMP/files")"

note "the relay runs from that set alone, chrooted, as uid 10001"
# what a Debian base image adds: the merged-/usr links the binaries' loader path goes through
for link in lib lib64 bin; do [[ -d "$SET/usr/$link" ]] && ln -s "usr/$link" "$SET/$link"; done
mkdir -p "$SET/proc" "$SET/dev"
PORT="$(free_port)"
cat >"$SET/config.toml" <<EOF
[server]
bind = "[::]:$PORT"
tls.generate = ["localhost"]
[web.http]
listen = "[::]:$PORT"
[auth]
public = "anon"
EOF
chmod 0644 "$SET/config.toml"
socket="@moq-runtime-test-$$-$RANDOM"
spawn notify "$LISTENER" "$socket" "udp:$PORT" "tcp:$PORT"
wait_for has_line "$TMP/notify.out" listening || fail "no notify listener"
in_set() { # CMD...: CMD inside the set, as uid/gid 10001, with the host's /proc and /dev
    exec unshare --mount --propagation private "$BASH" -c '
        set="$1"
        shift
        mount --rbind /proc "$set/proc" && mount --rbind /dev "$set/dev" || exit 1
        exec chroot --userspec=10001:10001 "$set" "$@"' in_set "$SET" "$@"
}
NOTIFY_SOCKET="$socket" spawn relay in_set /usr/local/bin/moq-relay /config.toml
RELAY_PID=$SPAWNED
RELAY_LOG="$TMP/relay.err"
wait_for has_line "$TMP/notify.out" READY=1 || fail "the relay did not start from the set"
log_has "$RELAY_LOG" "loaded /config.toml" || fail "the relay did not load /config.toml"
[[ "$(ps -o uid= -p "$RELAY_PID" | tr -d ' ')" == 10001 ]] || fail "the relay is not uid 10001"
[[ "$(readlink "/proc/$RELAY_PID/root")" == "$SET" ]] || fail "the relay is not in the set"

note "a client outside and the set's own client inside"
spawn sub "$MOQ" subscribe "http://127.0.0.1:$PORT/anon" --broadcast rt --track t
sub=$SPAWNED
printf 'from the runtime set\n' >"$TMP/frames"
IN="$TMP/frames" spawn pub in_set /usr/local/bin/moq publish "http://127.0.0.1:$PORT/anon" \
    --broadcast rt --track t
expect_ok "$SPAWNED" "the set's moq publish"
expect_ok "$sub" "moq subscribe"
cmp -s "$TMP/frames" "$TMP/sub.out" || fail "the subscriber got: $(cat "$TMP/sub.out")"
stop_relay
wait_for has_line "$TMP/notify.out" STOPPING=1 || fail "no STOPPING=1"
echo "PASS"
