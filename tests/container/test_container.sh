#!/usr/bin/env bash
# make container-test: build the Dockerfile with podman and run the image the way the guide
# runs it: `docker run -p 4443:4443/udp -v ./config.toml:/config.toml IMAGE /config.toml`.
#
# Without a registry serving debian:12-slim, the base is a Debian 12 (bookworm) minbase root
# filesystem made by mmdebstrap from Debian's mirror without documentation, man pages or
# locales (as slim leaves them out), imported as docker.io/library/debian:12-slim. It and the
# image layers live in $MOQ_BUILD_DIR/container-cache (about 1 GB), away from the host's own
# podman storage, and are reused by the next run; `make clean` removes them.
#
# Checks: the runtime image differs from the base only by the binaries, the shared libraries
# the base lacks, the example config, the user moq and its directory; it holds no compiler;
# it runs as moq (uid 10001); with the guide's command a publisher and a subscriber on the
# host meet through the published UDP port; its default command serves the example config;
# `podman stop` ends it with status 0.
source "$(dirname "$0")/../integration/lib.sh"
IMAGE="${IMAGE:-moq-relay}:test"
CACHE="$MOQ_BUILD_DIR/container-cache"
BASE=docker.io/library/debian:12-slim
mkdir -p "$CACHE"

command -v podman >/dev/null || fail "podman is not installed (MOQ_DEPS_CONTAINER=1 make deps)"
RUNTIME=()
pm() { podman --log-level=error --root "$CACHE/storage" --runroot "$CACHE/run" "${RUNTIME[@]}" "$@"; }
# podman asks for nofile/nproc limits above the host's by default; where a process may not
# raise them (no CAP_SYS_RESOURCE) every container would fail to start
nofile="$(ulimit -Hn)"
[[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
LIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)

note "the base image"
if ! pm image exists "$BASE"; then
    if [[ ! -s "$CACHE/debian-12.tar" ]]; then
        note "mmdebstrap bookworm (minbase, slimmed) into $CACHE/debian-12.tar"
        command -v mmdebstrap >/dev/null || fail "mmdebstrap is not installed"
        mirror=http://deb.debian.org/debian
        mmdebstrap --variant=minbase --quiet \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
            bookworm "$CACHE/debian-12.tmp.tar" "deb $mirror bookworm main" \
            "deb $mirror bookworm-updates main" "deb http://deb.debian.org/debian-security bookworm-security main" \
            >"$TMP/mmdebstrap.log" 2>&1 || fail "mmdebstrap: $(tail -5 "$TMP/mmdebstrap.log")"
        mv "$CACHE/debian-12.tmp.tar" "$CACHE/debian-12.tar"
    fi
    pm import "$CACHE/debian-12.tar" "$BASE" >/dev/null || fail "podman import failed"
fi
if ! pm run --rm "${LIMITS[@]}" --network none "$BASE" true 2>"$TMP/runtime.err"; then
    RUNTIME=(--runtime runc) # crun refuses hosts with hybrid cgroups
    pm run --rm "${LIMITS[@]}" --network none "$BASE" true 2>>"$TMP/runtime.err" ||
        fail "podman cannot run a container here: $(cat "$TMP/runtime.err")"
    note "crun cannot run containers here: using runc"
fi

note "podman build (the Dockerfile)"
pm build "${LIMITS[@]}" -t "$IMAGE" "$MOQ_SOURCE_DIR" >"$TMP/build.log" 2>&1 ||
    fail "podman build: $(tail -20 "$TMP/build.log")"

note "the runtime image: only binaries, libraries, config and user"
pm image diff "$IMAGE" "$BASE" | awk '$1 == "A" { print $2 }' >"$TMP/added"
grep -vE '^/usr/local/bin/moq(-relay|-token)?$|^/usr/lib[^/]*/([^/]+/)?lib[^/]*\.so[.0-9]*$|^/etc/moq(/relay\.toml)?$|^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$|^/var/lib/moq$|^/var/log/(lastlog|faillog)$' \
    "$TMP/added" >"$TMP/strays" && fail "the image adds more: $(cat "$TMP/strays")"
grep -q '^/usr/local/bin/moq-relay$' "$TMP/added" || fail "no /usr/local/bin/moq-relay"
grep -q 'libngtcp2.so' "$TMP/added" || fail "the image lacks libngtcp2"
[[ "$(pm image inspect "$IMAGE" --format '{{.Config.User}}')" == moq ]] || fail "not USER moq"
pm run --rm "${LIMITS[@]}" --network none --entrypoint sh "$IMAGE" -c \
    'for c in cc gcc cmake make; do ! command -v $c; done' >/dev/null || fail "a build tool is in the image"
[[ "$(pm run --rm "${LIMITS[@]}" --network none --entrypoint id "$IMAGE" -u)" == 10001 ]] ||
    fail "the image does not run as uid 10001"

note "the guide's run: -p PORT:4443/udp -v ./config.toml:/config.toml IMAGE /config.toml"
PORT="$(free_port)"
cat >"$TMP/config.toml" <<'EOF'
[server]
bind = "[::]:4443"
tls.generate = ["localhost"]

[auth]
public = "anon"
EOF
chmod 0644 "$TMP/config.toml"
name="moq-relay-test-$$"
(cd "$TMP" && pm run -d --name "$name" "${LIMITS[@]}" -p "$PORT:4443/udp" \
    -v ./config.toml:/config.toml "$IMAGE" /config.toml) >/dev/null || fail "podman run failed"
stop_container() { pm stop -t 10 "$1" >/dev/null 2>&1 || true; pm rm -f "$1" >/dev/null 2>&1 || true; }
trap 'stop_container "$name"; stop_container "$name-default"; _cleanup' EXIT
logs() { pm logs "$name" >"$TMP/container.log" 2>&1; }
ready() { logs && log_has "$TMP/container.log" "relay: ready"; }
wait_for ready || fail "the container's relay did not start: $(cat "$TMP/container.log")"
log_has "$TMP/container.log" "loaded /config.toml" || fail "the relay did not load /config.toml"
fp="$(sed -n 's/.*fingerprint \([0-9a-f]\{64\}\).*/\1/p' "$TMP/container.log" | head -n 1)"
[[ -n "$fp" ]] || fail "no certificate fingerprint in the log"
url="moql://127.0.0.1:$PORT/anon"
spawn sub "$MOQ" subscribe "$url" --tls-fingerprint "$fp" --broadcast box --track t
sub=$SPAWNED
printf 'through the container\n' >"$TMP/frames"
IN="$TMP/frames" spawn pub "$MOQ" publish "$url" --tls-fingerprint "$fp" --broadcast box --track t
expect_ok "$SPAWNED" "moq publish to the container"
expect_ok "$sub" "moq subscribe from the container"
cmp -s "$TMP/frames" "$TMP/sub.out" || fail "the subscriber got: $(cat "$TMP/sub.out")"
pm stop -t 10 "$name" >/dev/null
[[ "$(pm inspect "$name" --format '{{.State.ExitCode}}')" == 0 ]] ||
    fail "the relay did not exit cleanly on podman stop: $(pm logs "$name" 2>&1 | tail -5)"
logs
log_has "$TMP/container.log" "relay: stopped" || fail "no graceful shutdown"

note "the default command serves the example /etc/moq/relay.toml"
HTTP_PORT="$(free_port)"
pm run -d --name "$name-default" "${LIMITS[@]}" -p "$HTTP_PORT:4443/tcp" "$IMAGE" >/dev/null ||
    fail "podman run (default command) failed"
wait_for curl -sf "http://127.0.0.1:$HTTP_PORT/certificate.sha256" -o "$TMP/fingerprint" ||
    fail "the example config serves no /certificate.sha256: $(pm logs "$name-default" 2>&1 | tail)"
[[ "$(wc -c <"$TMP/fingerprint")" -ge 64 ]] || fail "not a fingerprint: $(cat "$TMP/fingerprint")"
echo "PASS"
