#!/bin/sh
# install.sh BUILD PREFIX SYSCONFDIR UNITDIR
# What `make install` and `make deb` put in place, under $DESTDIR when it is set: the
# binaries and manual pages of BUILD into PREFIX, the systemd unit into UNITDIR (ExecStart
# pointing at PREFIX/bin, the config at SYSCONFDIR/moq/relay.toml), and an example
# SYSCONFDIR/moq/relay.toml unless one exists.
set -eu
build=$1 prefix=$2 sysconfdir=$3 unitdir=$4
dest=${DESTDIR:-}
src=$(cd "$(dirname "$0")/.." && pwd)

DESTDIR="$dest" cmake --install "$build" --prefix "$prefix" --strip | sed 's/^-- //'

install -d "$dest$unitdir"
sed -e "s|/usr/local/bin/|$prefix/bin/|g" -e "s|/etc/moq/|$sysconfdir/moq/|g" \
    "$src/dist/systemd/moq-relay.service" >"$dest$unitdir/moq-relay.service"
chmod 0644 "$dest$unitdir/moq-relay.service"
echo "Installing: $dest$unitdir/moq-relay.service"

conf="$dest$sysconfdir/moq/relay.toml"
if [ -e "$conf" ]; then
    echo "Keeping: $conf (exists; the example is $src/dist/relay.toml)"
else
    install -D -m 0644 "$src/dist/relay.toml" "$conf"
    echo "Installing: $conf"
fi
