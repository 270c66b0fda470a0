#!/usr/bin/env bash
# Make sure a Docker engine is reachable and a local Python base image exists.
#
# For machines without registry access (nothing can be pulled): on Debian, as root,
# it installs docker.io when dockerd is missing, starts dockerd without iptables or
# a bridge (containers then run with --network host), and builds a minimal Debian
# bookworm image with Python 3.11 from Debian's own packages using debootstrap.
#
#   QUAYSIDE_BASE_IMAGE   name of the local base image   (default: quayside/python:3.11-bookworm)
#   DEBIAN_MIRROR         mirror for debootstrap         (default: http://deb.debian.org/debian)
#
# Prints the base image name on its last line. Safe to run again: it does only what is missing.
set -euo pipefail

base_image=${QUAYSIDE_BASE_IMAGE:-quayside/python:3.11-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log_dir=${QUAYSIDE_DOCKER_LOG_DIR:-/var/log}

say() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

engine_up() { docker info >/dev/null 2>&1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root; run this script as root, or start a Docker engine yourself"
}

install_engine() {
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && return
  need_root "installing docker.io"
  command -v apt-get >/dev/null 2>&1 || die "no Docker engine and no apt-get to install one; install Docker and start it"
  say "installing docker.io from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
}

start_engine() {
  engine_up && return
  install_engine
  need_root "starting dockerd"
  say "starting dockerd (no iptables, no bridge: run containers with --network host)"
  nohup dockerd --iptables=false --ip6tables=false --bridge=none >"$log_dir/quayside-dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    engine_up && return
    sleep 0.5
  done
  die "dockerd did not come up within 60 s; see $log_dir/quayside-dockerd.log"
}

make_base_image() {
  if docker image inspect "$base_image" >/dev/null 2>&1; then
    say "base image $base_image is present"
    return
  fi
  need_root "debootstrap"
  command -v debootstrap >/dev/null 2>&1 || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  }
  rootfs=$(mktemp -d /tmp/quayside-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  say "building $base_image with debootstrap (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >/dev/null
  # Slim it the way official images are slimmed: no apt lists, docs or man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/cache/apt/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$base_image" >/dev/null
  say "base image $base_image: $(docker image inspect -f '{{.Size}}' "$base_image") bytes"
}

start_engine
make_base_image
echo "$base_image"
