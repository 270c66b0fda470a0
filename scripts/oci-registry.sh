#!/usr/bin/env bash
# Make sure an OCI image registry (the CNCF distribution registry, Debian's docker-registry
# package) listens on 127.0.0.1, for `quayside build --push` and the tests that push and pull.
#
# On Debian, as root, it installs docker-registry when it is missing and starts it with a
# config of its own: loopback only, no auth, storage under $QUAYSIDE_OCI_REGISTRY_DIR.
# A Docker engine trusts a registry on 127.0.0.0/8 over plain HTTP without configuration.
#
#   QUAYSIDE_OCI_REGISTRY_PORT  port to listen on        (default: 5000)
#   QUAYSIDE_OCI_REGISTRY_DIR   storage and config dir   (default: /var/lib/quayside-oci-registry)
#
# Prints HOST:PORT on its last line. Safe to run again: it does only what is missing.
set -euo pipefail

port=${QUAYSIDE_OCI_REGISTRY_PORT:-5000}
dir=${QUAYSIDE_OCI_REGISTRY_DIR:-/var/lib/quayside-oci-registry}
address="127.0.0.1:$port"

say() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

up() { curl -fsS "http://$address/v2/" >/dev/null 2>&1; }

if up; then
  say "an OCI registry answers on $address"
  echo "$address"
  exit 0
fi

if ! command -v docker-registry >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "installing docker-registry needs root; run a registry on $address yourself"
  command -v apt-get >/dev/null 2>&1 || die "no docker-registry and no apt-get to install it"
  say "installing docker-registry from Debian"
  # The package starts a service of its own where an init system runs; ours is started below.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-registry >/dev/null
fi

mkdir -p "$dir/storage"
cat > "$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $address
CONFIG

say "starting docker-registry on $address (storage in $dir/storage)"
nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
for _ in $(seq 1 60); do
  if up; then
    echo "$address"
    exit 0
  fi
  sleep 0.5
done
die "docker-registry did not answer on $address within 30 s; see $dir/registry.log"
