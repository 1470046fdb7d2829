#!/usr/bin/env bash
# docs/operations.md, "Install from source" and "systemd", on a staging tree: `make install`
# with DESTDIR puts the three binaries and their manual pages under PREFIX (/usr/local by
# default), the systemd unit pointing at them, and /etc/moq/relay.toml only when none
# exists; PREFIX, SYSCONFDIR and UNITDIR move all of it. Then the installed system, seen
# through root_view: `man moq-relay`; the documented useradd and install -d against a copy
# of the user database; `systemd-analyze verify` on the installed unit and on the Type=simple
# unit of the docs; each unit's ExecStart run as its User in its WorkingDirectory (READY=1
# for Type=notify), serving a publisher and a subscriber; the documented ss and
# /proc/PID/limits checks. Nothing outside $TMP is written.
source "$(dirname "$0")/deploy_lib.sh"
as_root_or_userns "$@"
source "$(dirname "$0")/lib.sh"
unset MAKEFLAGS MFLAGS MAKELEVEL

install_into() { # DESTDIR [make variables...]
    local dest="$1"
    shift
    make -C "$MOQ_SOURCE_DIR" install BUILD="$MOQ_BUILD_DIR" DESTDIR="$dest" "$@" \
        >"$TMP/install.log" 2>&1 || fail "make install: $(cat "$TMP/install.log")"
}

note "make install DESTDIR=... (PREFIX=/usr/local)"
STAGE="$TMP/stage"
install_into "$STAGE"
for bin in moq-relay moq moq-token; do
    [[ -x "$STAGE/usr/local/bin/$bin" ]] || fail "no $bin in /usr/local/bin"
    "$STAGE/usr/local/bin/$bin" --version | grep -q "^$bin [0-9]" || fail "$bin --version"
    [[ -s "$STAGE/usr/local/share/man/man1/$bin.1" ]] || fail "no manual page for $bin"
done
UNIT="$STAGE/usr/local/lib/systemd/system/moq-relay.service"
[[ "$(unit_value "$UNIT" ExecStart)" == "/usr/local/bin/moq-relay --file /etc/moq/relay.toml" ]] ||
    fail "ExecStart=$(unit_value "$UNIT" ExecStart)"
cmp -s "$STAGE/etc/moq/relay.toml" "$MOQ_SOURCE_DIR/dist/relay.toml" || fail "no example config"
find "$STAGE" -type f | sed "s|^$STAGE||" | sort >"$TMP/files"
(($(wc -l <"$TMP/files") == 8)) || fail "unexpected files installed: $(cat "$TMP/files")"

note "an existing /etc/moq/relay.toml is kept"
echo "# mine" >"$STAGE/etc/moq/relay.toml"
install_into "$STAGE"
[[ "$(cat "$STAGE/etc/moq/relay.toml")" == "# mine" ]] || fail "make install replaced the config"
grep -q "Keeping: .*relay.toml" "$TMP/install.log" || fail "make install did not say it kept it"
cp "$MOQ_SOURCE_DIR/dist/relay.toml" "$STAGE/etc/moq/relay.toml"

note "PREFIX, SYSCONFDIR and UNITDIR move everything"
install_into "$TMP/opt" PREFIX=/opt/moq SYSCONFDIR=/etc/opt UNITDIR=/etc/systemd/system
[[ -x "$TMP/opt/opt/moq/bin/moq-relay" && -s "$TMP/opt/opt/moq/share/man/man1/moq-relay.1" ]] ||
    fail "nothing under PREFIX=/opt/moq"
[[ "$(unit_value "$TMP/opt/etc/systemd/system/moq-relay.service" ExecStart)" == \
    "/opt/moq/bin/moq-relay --file /etc/opt/moq/relay.toml" ]] || fail "the unit ignores PREFIX"
[[ -s "$TMP/opt/etc/opt/moq/relay.toml" ]] || fail "no config under SYSCONFDIR"

note "man moq-relay on the installed system"
(root_view "$STAGE" env MANPATH=/usr/local/share/man MANWIDTH=200 LC_ALL=C man moq-relay) \
    >"$TMP/man.txt" 2>&1 || fail "man moq-relay: $(cat "$TMP/man.txt")"
grep -q -- "--file <PATH>" "$TMP/man.txt" || fail "man moq-relay lacks --file"
grep -q -- "TOML: server.bind" "$TMP/man.txt" || fail "man moq-relay lacks the TOML keys"

command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze is not installed (apt package systemd; scripts/deps.sh installs it)"
note "systemd-analyze verify the installed unit"
(root_view "$STAGE" env MANPATH=/usr/local/share/man systemd-analyze verify \
    /usr/local/lib/systemd/system/moq-relay.service) >"$TMP/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
[[ ! -s "$TMP/verify.log" ]] || fail "systemd-analyze verify warns: $(cat "$TMP/verify.log")"

note "the documented useradd and install -d, against a copy of the user database"
make_root "$STAGE"
useradd_line="$(grep -m1 '^sudo useradd ' "$MOQ_SOURCE_DIR/docs/operations.md")" ||
    fail "docs/operations.md has no useradd"
grep -qxF -- "$useradd_line" "$MOQ_SOURCE_DIR/README.md" || fail "README's useradd differs"
read -ra words <<<"${useradd_line#sudo }"
"${words[@]}" --prefix "$STAGE" || fail "${words[*]} failed"
IFS=: read -r _ _ uid gid _ home shell < <(grep '^moq:' "$STAGE/etc/passwd") || fail "no user moq"
[[ "$home" == /var/lib/moq && "$shell" == /usr/sbin/nologin ]] || fail "moq: $home $shell"
install_line="$(grep -m1 '^sudo install -d ' "$MOQ_SOURCE_DIR/docs/operations.md")" ||
    fail "docs/operations.md has no install -d"
install_line="${install_line#sudo }"
install_line="${install_line//-o moq -g moq/-o $uid -g $gid}"
read -ra words <<<"${install_line/ \/var\/lib\/moq/ $STAGE/var/lib/moq}"
"${words[@]}" || fail "${words[*]} failed"
[[ "$(stat -c '%u:%g %a' "$STAGE/var/lib/moq")" == "$uid:$gid 750" ]] || fail "/var/lib/moq"

# the Type=simple unit of docs/operations.md, as /etc/systemd/system/moq-relay.service
GUIDE_UNIT="$STAGE/etc/systemd/system/moq-relay.service"
mkdir -p "$(dirname "$GUIDE_UNIT")"
awk '/^```ini/ { on = 1; next } /^```/ { on = 0 } on' "$MOQ_SOURCE_DIR/docs/operations.md" \
    >"$GUIDE_UNIT"
grep -q '^Type=simple$' "$GUIDE_UNIT" || fail "no Type=simple unit in docs/operations.md"

command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze is not installed (apt package systemd; scripts/deps.sh installs it)"
for unit in /usr/local/lib/systemd/system/moq-relay.service \
    /etc/systemd/system/moq-relay.service; do
    note "systemd-analyze verify $unit"
    (root_view "$STAGE" env MANPATH=/usr/local/share/man systemd-analyze verify "$unit") \
        >"$TMP/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
    [[ ! -s "$TMP/verify.log" ]] || fail "systemd-analyze verify warns: $(cat "$TMP/verify.log")"
done

# run_unit NAME UNIT: the unit's ExecStart as systemd starts it (as User and Group, in
# WorkingDirectory), with the listeners moved to $PORT through the environment and a notify
# socket; sets RELAY_PID and RELAY_LOG
run_unit() {
    local name="$1" unit="$2" socket="@moq-install-test-$$-$RANDOM"
    PORT="$(free_port)"
    spawn "$name-notify" "$HELPERS/notify_listener" "$socket"
    wait_for has_line "$TMP/$name-notify.out" listening || fail "no notify listener"
    local pre
    pre="$(unit_value "$unit" ExecStartPre)"
    if [[ -n "$pre" ]]; then # as systemd runs it first; it must pass and bind nothing
        MOQ_SERVER_BIND="127.0.0.1:$PORT" MOQ_WEB_HTTP_LISTEN="127.0.0.1:$PORT" \
            spawn "$name-pre" root_view "$STAGE" "$BASH" -c \
            'cd "$1" && exec setpriv --reuid="$2" --regid="$3" --init-groups -- $4' unit \
            "$(unit_value "$unit" WorkingDirectory)" "$(unit_value "$unit" User)" \
            "$(unit_value "$unit" Group)" "$pre"
        expect_ok "$SPAWNED" "$unit: ExecStartPre ($pre)"
        grep -qF "/etc/moq/relay.toml is valid" "$TMP/$name-pre.out" ||
            fail "$unit: ExecStartPre printed: $(head -3 "$TMP/$name-pre.out" "$TMP/$name-pre.err")"
    fi
    MOQ_SERVER_BIND="127.0.0.1:$PORT" MOQ_WEB_HTTP_LISTEN="127.0.0.1:$PORT" \
        NOTIFY_SOCKET="$socket" spawn "$name" root_view "$STAGE" "$BASH" -c \
        'cd "$1" && exec setpriv --reuid="$2" --regid="$3" --init-groups -- $4' unit \
        "$(unit_value "$unit" WorkingDirectory)" "$(unit_value "$unit" User)" \
        "$(unit_value "$unit" Group)" "$(unit_value "$unit" ExecStart)"
    RELAY_PID=$SPAWNED
    RELAY_LOG="$TMP/$name.err"
    wait_for log_has "$RELAY_LOG" "relay: ready" || fail "$unit: the relay did not start"
    log_has "$RELAY_LOG" "loaded /etc/moq/relay.toml" || fail "$unit: not the installed config"
    [[ "$(ps -o uid= -p "$RELAY_PID" | tr -d ' ')" == "$uid" ]] || fail "$unit: not run as moq"
    NOTIFY_OUT="$TMP/$name-notify.out"
}

pubsub() { # the installed client through the relay on $PORT
    local url="http://127.0.0.1:$PORT/anon" sub
    spawn sub "$STAGE/usr/local/bin/moq" subscribe "$url" --broadcast i --track t
    sub=$SPAWNED
    printf 'installed\n' >"$TMP/frame"
    IN="$TMP/frame" spawn pub "$STAGE/usr/local/bin/moq" publish "$url" --broadcast i --track t
    expect_ok "$SPAWNED" "moq publish"
    expect_ok "$sub" "moq subscribe"
    cmp -s "$TMP/frame" "$TMP/sub.out" || fail "the subscriber got: $(cat "$TMP/sub.out")"
}

note "the installed unit (Type=notify): READY=1, a publisher and a subscriber, STOPPING=1"
run_unit notify-unit "$STAGE/usr/local/lib/systemd/system/moq-relay.service"
[[ -s "$TMP/notify-unit-pre.out" ]] || fail "the installed unit has no ExecStartPre check"
wait_for has_line "$NOTIFY_OUT" READY=1 || fail "no READY=1 from the installed unit"
pubsub
note "the documented checks: ss and /proc/PID/limits"
ss -lump "sport = :$PORT" >"$TMP/ss-udp.txt"
grep -q 'rb[0-9]' "$TMP/ss-udp.txt" || fail "ss -lump shows no buffers: $(cat "$TMP/ss-udp.txt")"
ss -lnup "sport = :$PORT" | grep -q moq-relay || fail "ss -lnup does not show the relay"
ss -lntp "sport = :$PORT" | grep -q moq-relay || fail "ss -lntp does not show the relay"
grep -q '^Max open files' "/proc/$RELAY_PID/limits" || fail "no open files limit"
stop_relay
wait_for has_line "$NOTIFY_OUT" STOPPING=1 || fail "no STOPPING=1 from the installed unit"

note "the Type=simple unit of docs/operations.md"
run_unit simple-unit "$GUIDE_UNIT"
pubsub
stop_relay
echo "PASS"
