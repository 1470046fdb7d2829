#!/usr/bin/env bash
# The Debian package (what `make deb` builds, with dist/debian/build-deb.sh): installed into a
# throwaway root with `dpkg --root` (maintainer scripts chrootless, under $DPKG_ROOT) and
# nothing forced, its dependencies being this Debian's installed packages. Checks the files,
# the conffile, the moq system user and /var/lib/moq; `systemd-analyze verify` on the
# installed unit; the unit's ExecStart run as systemd would (as User=, in WorkingDirectory=,
# with a notify socket: READY=1, a publisher and a subscriber through it, STOPPING=1); then
# `dpkg -r` keeps the edited conffile and the user, and `dpkg -P` leaves the root as it was.
# The host's /etc, /usr, users and dpkg database are never touched.
source "$(dirname "$0")/deploy_lib.sh"
as_root_or_userns "$@"
source "$(dirname "$0")/lib.sh"

host_state() {
    sha256sum /etc/passwd /etc/group /etc/shadow /var/lib/dpkg/status 2>/dev/null
    ls -la /usr/bin /usr/local/bin /etc /lib/systemd/system 2>/dev/null | sha256sum
}
host_state >"$TMP/host.before"

note "build the package"
DEB="$("$MOQ_SOURCE_DIR/dist/debian/build-deb.sh" "$MOQ_BUILD_DIR" "$TMP/out")"
[[ -f "$DEB" ]] || fail "no package: $DEB"
[[ "$(dpkg-deb -f "$DEB" Package)" == moq-relay ]] || fail "wrong package name"
dpkg-deb -c "$DEB" | awk '{ print $6 }' >"$TMP/contents"
for f in ./usr/bin/moq-relay ./usr/bin/moq ./usr/bin/moq-token ./etc/moq/relay.toml \
    ./lib/systemd/system/moq-relay.service ./usr/share/man/man1/moq-relay.1.gz \
    ./usr/share/man/man1/moq.1.gz ./usr/share/man/man1/moq-token.1.gz; do
    has_line "$TMP/contents" "$f" || fail "the package lacks $f"
done
! grep -q '^./var/lib/moq' "$TMP/contents" || fail "/var/lib/moq is the postinst's, not data"
dpkg-deb -e "$DEB" "$TMP/control"
has_line "$TMP/control/conffiles" /etc/moq/relay.toml || fail "relay.toml is not a conffile"

note "dpkg -i into a throwaway root"
ROOT="$TMP/root"
make_root "$ROOT"
dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/[(|].*//; s/ //g' >"$TMP/depends"
while read -r dep; do # the root's database: this system's packages that the package needs
    dpkg-query -s "$dep" >>"$ROOT/var/lib/dpkg/status" 2>/dev/null ||
        fail "dependency $dep is not installed on this system"
    echo >>"$ROOT/var/lib/dpkg/status"
    : >"$ROOT/var/lib/dpkg/info/$(dpkg-query -W -f='${binary:Package}' "$dep").list"
done <"$TMP/depends"
cp -a "$ROOT" "$TMP/root.empty"
DPKG=(dpkg --root="$ROOT" --log="$ROOT/var/log/dpkg.log" --force-script-chrootless)
"${DPKG[@]}" -i "$DEB" >"$TMP/dpkg-install.log" 2>&1 || fail "dpkg -i: $(cat "$TMP/dpkg-install.log")"
"${DPKG[@]}" -s moq-relay >"$TMP/status"
has_line "$TMP/status" "Status: install ok installed" || fail "not installed: $(cat "$TMP/status")"
grep -q "^ /etc/moq/relay.toml [0-9a-f]*$" "$TMP/status" || fail "dpkg knows no conffile"
cmp -s "$ROOT/etc/moq/relay.toml" "$MOQ_SOURCE_DIR/dist/relay.toml" || fail "relay.toml differs"

note "the moq system user and /var/lib/moq"
IFS=: read -r _ _ uid gid _ home shell < <(grep '^moq:' "$ROOT/etc/passwd") ||
    fail "no user moq"
[[ "$home" == /var/lib/moq && "$shell" == /usr/sbin/nologin ]] || fail "moq: $home $shell"
((uid < 1000)) || fail "moq is not a system user (uid $uid)"
[[ "$(awk -F: '$1 == "moq" { print $3 }' "$ROOT/etc/group")" == "$gid" ]] ||
    fail "moq's group is not the group moq"
[[ "$(stat -c '%u:%g %a' "$ROOT/var/lib/moq")" == "$uid:$gid 750" ]] ||
    fail "/var/lib/moq: $(stat -c '%u:%g %a' "$ROOT/var/lib/moq")"

UNIT="$ROOT/lib/systemd/system/moq-relay.service"
EXEC_START="$(unit_value "$UNIT" ExecStart)"
[[ "$EXEC_START" == "/usr/bin/moq-relay --file /etc/moq/relay.toml" ]] ||
    fail "ExecStart=$EXEC_START"
[[ "$(unit_value "$UNIT" User)" == moq && "$(unit_value "$UNIT" Group)" == moq ]] ||
    fail "the unit does not run as moq"
WORKDIR="$(unit_value "$UNIT" WorkingDirectory)"
[[ "$WORKDIR" == /var/lib/moq ]] || fail "WorkingDirectory=$WORKDIR"

command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze is not installed (apt package systemd; scripts/deps.sh installs it)"
note "systemd-analyze verify the installed unit"
(root_view "$ROOT" env MANPATH=/usr/share/man \
    systemd-analyze verify /lib/systemd/system/moq-relay.service) >"$TMP/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
[[ ! -s "$TMP/verify.log" ]] || fail "systemd-analyze verify warns: $(cat "$TMP/verify.log")"

note "the unit's ExecStart as systemd runs it: as moq, in /var/lib/moq, Type=notify"
PORT="$(free_port)"
socket="@moq-deb-test-$$-$RANDOM"
spawn notify "$HELPERS/notify_listener" "$socket" "udp:$PORT" "tcp:$PORT"
wait_for has_line "$TMP/notify.out" listening || fail "no notify listener"
# the installed config listens on 4443; the environment moves it to a free port
MOQ_SERVER_BIND="127.0.0.1:$PORT" MOQ_WEB_HTTP_LISTEN="127.0.0.1:$PORT" NOTIFY_SOCKET="$socket" \
    spawn relay root_view "$ROOT" "$BASH" -c 'cd "$1" && exec setpriv --reuid="$2" --regid="$3" \
    --init-groups -- $4' unit "$WORKDIR" moq moq "$EXEC_START"
RELAY_PID=$SPAWNED
RELAY_LOG="$TMP/relay.err"
wait_for has_line "$TMP/notify.out" READY=1 || fail "no READY=1: $(cat "$TMP/notify.out")"
has_line "$TMP/notify.out" "udp:$PORT bound" || fail "READY=1 before QUIC was bound"
has_line "$TMP/notify.out" "tcp:$PORT open" || fail "READY=1 before HTTP was bound"
log_has "$RELAY_LOG" "loaded /etc/moq/relay.toml" || fail "the relay did not load the conffile"
has_line "$TMP/notify.out" "datagram from pid $RELAY_PID" || fail "READY=1 not from the relay"
[[ "$(ps -o uid= -p "$RELAY_PID" | tr -d ' ')" == "$uid" ]] || fail "the relay does not run as moq"
[[ "$(readlink "/proc/$RELAY_PID/cwd")" == "$ROOT/var/lib/moq" ||
    "$(readlink "/proc/$RELAY_PID/cwd")" == /var/lib/moq ]] || fail "the relay is not in /var/lib/moq"
url="http://127.0.0.1:$PORT/anon"
spawn sub "$ROOT/usr/bin/moq" subscribe "$url" --broadcast deb --track t
sub=$SPAWNED
printf 'installed\nfrom the package\n' >"$TMP/frames"
IN="$TMP/frames" spawn pub "$ROOT/usr/bin/moq" publish "$url" --broadcast deb --track t
expect_ok "$SPAWNED" "the installed moq publish"
expect_ok "$sub" "the installed moq subscribe"
cmp -s "$TMP/frames" "$TMP/sub.out" || fail "the subscriber got: $(cat "$TMP/sub.out")"
stop_relay
wait_for has_line "$TMP/notify.out" STOPPING=1 || fail "no STOPPING=1"

note "dpkg -r keeps the edited conffile and the user; dpkg -P removes everything"
echo "# edited" >>"$ROOT/etc/moq/relay.toml"
"${DPKG[@]}" -r moq-relay >"$TMP/dpkg-remove.log" 2>&1 || fail "dpkg -r: $(cat "$TMP/dpkg-remove.log")"
[[ ! -e "$ROOT/usr/bin/moq-relay" && ! -e "$UNIT" ]] || fail "dpkg -r left the binaries or unit"
grep -q "^# edited" "$ROOT/etc/moq/relay.toml" || fail "dpkg -r dropped the edited conffile"
grep -q '^moq:' "$ROOT/etc/passwd" || fail "dpkg -r removed the user"
"${DPKG[@]}" -P moq-relay >"$TMP/dpkg-purge.log" 2>&1 || fail "dpkg -P: $(cat "$TMP/dpkg-purge.log")"
! grep -q '^moq:' "$ROOT/etc/passwd" "$ROOT/etc/group" "$ROOT/etc/shadow" "$ROOT/etc/gshadow" ||
    fail "dpkg -P left the user or group moq"
# everything but dpkg's own bookkeeping and the shadow tools' backups is as before
listing() {
    (cd "$1" && find . ! -path './var/lib/dpkg/*' ! -path './var/log/*' ! -name '*-' -printf '%p %m\n' |
        sort && cat etc/passwd etc/group)
}
diff <(listing "$TMP/root.empty") <(listing "$ROOT") >"$TMP/purge.diff" ||
    fail "the root after dpkg -P differs: $(cat "$TMP/purge.diff")"

host_state >"$TMP/host.after"
cmp -s "$TMP/host.before" "$TMP/host.after" || fail "the host's system changed"
echo "PASS"
