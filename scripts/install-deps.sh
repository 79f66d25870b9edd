#!/usr/bin/env bash
# System packages strata's tests and demo use, then the npm dependencies and the build.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
pkgs=(tar gzip zstd attr libcap2-bin skopeo umoci fuse-overlayfs fuse3 docker-registry apache2-utils openssl
      util-linux xfsprogs e2fsprogs btrfs-progs libbtrfs-dev zfs-fuse
      runc passt tini docker.io chromium uidmap podman strace)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The container runtime's tools: runc runs the process, pasta (from passt) is the default
# network, tini-static is --init's docker-init. Fail here rather than in the run tests.
for tool in runc pasta tini-static; do
  command -v "$tool" >/dev/null || { echo "install-deps: $tool missing after installing its package" >&2; exit 1; }
done
# Rootless strata (fuse-overlayfs, pasta) opens these as the user. udev makes both 0666; a host
# without udev leaves them root's alone (0600).
for dev in /dev/fuse /dev/net/tun; do
  if [[ -c $dev ]]; then chmod 0666 "$dev"; fi
done
npm ci --no-fund --no-audit
npm run build
