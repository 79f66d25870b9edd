#!/usr/bin/env bash
# The main job, end to end, on a store of its own: make an image from a root filesystem built
# from the host's Debian packages, create two containers, change one, show what changed and
# what did not, commit the change, run the committed image (its writes kept across starts), and
# show the store.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${DEMO_ROOT:-/var/lib/strata-demo}
DRIVER=${DEMO_DRIVER:-}
strata() { node bin/strata.cjs --root "$ROOT" ${DRIVER:+--driver "$DRIVER"} "$@"; }
say() { printf '\n\033[1m$ strata %s\033[0m\n' "$*"; }

work=$(mktemp -d)
cleanup() {
  strata umount demo-a >/dev/null 2>&1 || true
  strata umount demo-b >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building a root filesystem from Debian's busybox-static package"
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root busybox-static >/dev/null)
dpkg -x "$work"/busybox-static_*.deb "$work/rootfs"
# Installed from inside the root, so the applet links point at /bin/busybox, not at this temp dir.
chroot "$work/rootfs" /bin/busybox --install -s /bin
mkdir -p "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/root"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$work/rootfs/etc/group"
chmod 1777 "$work/rootfs/tmp"

# Start from an empty demo store so the output below is the same every time.
strata rm -f demo-a demo-b demo-run >/dev/null 2>&1 || true
strata rmi demo/busybox:1.0 demo/busybox:changed >/dev/null 2>&1 || true

say "import - demo/busybox:1.0"
tar -C "$work/rootfs" --numeric-owner -cf - . | strata import - demo/busybox:1.0
say images
strata images

say "create --name demo-a demo/busybox:1.0 sh"
strata create --name demo-a demo/busybox:1.0 sh
say "create --name demo-b demo/busybox:1.0 sh"
strata create --name demo-b demo/busybox:1.0 sh

say "mount demo-a"
a=$(strata mount demo-a)
echo "$a"
echo "-- changing demo-a: new file, edited file, deleted file, chmod"
echo 'hello from demo-a' >"$a/root/hello.txt"
echo 'demo:x:1000:1000::/home/demo:/bin/sh' >>"$a/etc/passwd"
rm "$a/bin/vi"
chmod 0700 "$a/tmp"
strata umount demo-a

say "diff demo-a"
strata diff demo-a
say "diff demo-b"
strata diff demo-b
echo "(nothing: demo-b does not see demo-a's changes)"
b=$(strata mount demo-b)
echo "demo-b has /bin/vi: $(test -e "$b/bin/vi" && echo yes || echo no); /root/hello.txt: $(test -e "$b/root/hello.txt" && echo yes || echo no)"
strata umount demo-b

say "commit demo-a demo/busybox:changed"
strata commit -m "demo change" demo-a demo/busybox:changed
say "history demo/busybox:changed"
strata history demo/busybox:changed
say "images"
strata images

say "run --rm demo/busybox:changed cat /root/hello.txt"
strata run --rm demo/busybox:changed cat /root/hello.txt
say "run --name demo-run demo/busybox:changed sh -c 'echo run >> /root/runs; wc -l < /root/runs'"
strata run --name demo-run demo/busybox:changed sh -c 'echo run >> /root/runs; wc -l < /root/runs'
say "start -a demo-run"
echo "(the same container again: its read-write layer still has the first run's line)"
strata start -a demo-run
say "diff demo-run"
strata diff demo-run
say "ps -a"
strata ps -a
echo
echo "== the busybox layer is stored once, shared by both images and both containers:"
strata inspect --type image demo/busybox:1.0 | grep -A3 '"Layers"'
strata inspect --type image demo/busybox:changed | grep -A4 '"Layers"'
say info
strata info
echo
echo "Demo store: $ROOT (remove with: rm -rf $ROOT)"
