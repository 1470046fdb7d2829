#!/bin/sh
# build-deb.sh BUILD OUTDIR
# The moq-relay Debian package, built with dpkg-deb from BUILD's binaries (run `make bins`
# first): /usr/bin, manual pages, /lib/systemd/system/moq-relay.service, /etc/moq/relay.toml
# as a conffile, and the maintainer scripts of dist/debian. Prints the package's path.
set -eu
build=$(cd "$1" && pwd) out=$2
here=$(cd "$(dirname "$0")" && pwd)
version=$("$build/moq-relay" --version | awk '{ print $2 }')
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg="$work/debian/moq-relay" # where dpkg-shlibdeps expects a package's files
DESTDIR="$pkg" "$here/../install.sh" "$build" /usr /etc /lib/systemd/system >/dev/null
gzip -9n "$pkg"/usr/share/man/man1/*.1

install -d "$pkg/DEBIAN"
printf 'Source: moq-relay\n\nPackage: moq-relay\nArchitecture: any\n' >"$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O debian/moq-relay/usr/bin/* | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
rm "$work/debian/control"

size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
    -e "s|@DEPENDS@|$depends|" \
    -e "s|@MAINTAINER@|${DEB_MAINTAINER:-moq-relay maintainers <moq-relay@localhost>}|" \
    "$here/control.in" >"$pkg/DEBIAN/control"
echo /etc/moq/relay.toml >"$pkg/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$pkg/DEBIAN/"

mkdir -p "$out"
deb="$(cd "$out" && pwd)/moq-relay_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
