# Helpers for the tests of what is installed (make install, the Debian package, the
# container's runtime files). Source after lib.sh.
#
#   as_root_or_userns "$@"        first line of a test: go on as root, or re-run the test as
#                                 root of a user namespace (unshare with subordinate ids);
#                                 nothing on the host changes either way
#   make_root DIR                 an empty installation root for dpkg --root: the host's users
#                                 and groups (no passwords), an empty dpkg database
#   root_view ROOT CMD...         CMD in a private mount namespace where ROOT's /usr/bin,
#                                 /usr/local, /etc, /var/lib, /lib/systemd and /usr/share/man
#                                 lie over the host's, read-only: the
#                                 system as if ROOT were installed, for this command only.
#                                 Replaces the calling (sub)shell: run it in ( ) or spawn
#   unit_value UNIT KEY           the value of KEY= in a unit file

as_root_or_userns() {
    [[ "$(id -u)" == 0 ]] && return 0
    if unshare --map-root-user --map-auto true 2>/dev/null; then
        exec unshare --map-root-user --map-auto "$BASH" "$0" "$@"
    fi
    echo "FAIL: this test needs root, or user namespaces with subordinate ids" \
        "(uidmap, /etc/subuid) to act as root without changing the host" >&2
    exit 1
}

make_root() {
    local root="$1"
    mkdir -p "$root/etc" "$root/var/log" "$root/var/lib/dpkg/info" \
        "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
    : >"$root/var/lib/dpkg/status"
    : >"$root/var/lib/dpkg/available"
    cp /etc/passwd /etc/group "$root/etc/"
    awk -F: '{ print $1 ":*:19000:0:99999:7:::" }' /etc/passwd >"$root/etc/shadow"
    awk -F: '{ print $1 ":*::" }' /etc/group >"$root/etc/gshadow"
    chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
}

root_view() {
    local root="$1"
    shift
    exec unshare --mount --propagation private "$BASH" -c '
        root="$1"
        shift
        for dir in usr/bin usr/local etc var/lib lib/systemd usr/share/man; do
            [[ -d "$root/$dir" ]] || continue
            real="$(readlink -m "/$dir")"
            [[ -d "$real" ]] || { echo "root_view: no $real to lie over" >&2; exit 1; }
            mount -t overlay overlay -o "lowerdir=$root/$dir:$real" "$real" || exit 1
        done
        exec "$@"' root_view "$root" "$@"
}

unit_value() {
    sed -n "s/^$2=//p" "$1" | tail -n 1
}
