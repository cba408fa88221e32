#!/bin/sh
# test_install.sh — `meson install` into a scratch DESTDIR gives the library, the header
# and tessera.pc; a program built with only `pkg-config tessera` (tests/install/embed.c)
# runs against the installed library and renders an image from the fixture pipeline.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR [SANITIZERS (meson's b_sanitize)]
set -eu
build=$1 src=$2 san=${3:-none}
# a sanitized library needs a sanitized program (the runtime must come first)
sanflags=
[ "$san" = none ] || sanflags="-fsanitize=$san"

dest=$(mktemp -d /tmp/ts_install_XXXXXX)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(find "$dest" -name tessera.pc | head -n 1)
hdr=$(find "$dest" -name tessera.h | head -n 1)
[ -n "$pc" ] && [ -n "$hdr" ] || { echo "FAIL: no tessera.pc or tessera.h installed"; exit 1; }
libdir=$(dirname "$(find "$dest" -name 'libtessera.so*' | head -n 1)")
# the .pc names the install prefix; the sysroot variable points it into DESTDIR
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs tessera)
cc -std=c11 -Wall -Wextra -Werror $sanflags -o "$dest/embed" "$src/tests/install/embed.c" $flags
LD_LIBRARY_PATH=$libdir "$dest/embed" "$src/tests/fixtures/wan_t2v" "$dest/out.png"
[ -s "$dest/out.png" ] || { echo "FAIL: embed wrote no image"; exit 1; }
LD_LIBRARY_PATH=$libdir ldd "$dest/embed" | grep -q "$libdir/libtessera" || { echo "FAIL: embed did not link the installed library"; exit 1; }
echo "install: 1 passed, 0 failed"
