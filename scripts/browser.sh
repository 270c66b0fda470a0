#!/usr/bin/env bash
# Make sure a Chromium is there for the web UI's browser tests (Playwright drives it).
#
# Playwright's own browser download needs a host these machines cannot reach, so the
# tests use Debian's `chromium` package instead. As root, on Debian, it installs it when
# the binary is missing; it does nothing when it is there.
#
#   QUAYSIDE_TEST_CHROMIUM   the Chromium binary the tests launch   (default: /usr/bin/chromium)
#
# Prints the binary's path on its last line.
set -euo pipefail

chromium=${QUAYSIDE_TEST_CHROMIUM:-/usr/bin/chromium}

say() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

if [ ! -x "$chromium" ]; then
  [ "$(id -u)" = 0 ] || die "no Chromium at $chromium; install Debian's chromium package as root (apt-get install chromium)"
  say "installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >&2 || { apt-get update -qq >&2 && apt-get install -y -qq chromium >&2; }
  [ -x "$chromium" ] || die "apt-get installed chromium, but there is no $chromium"
fi
echo "$chromium"
