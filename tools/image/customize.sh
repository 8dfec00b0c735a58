#!/bin/sh
# tools/image/customize.sh <root>: the finishing touches to the operator image's Debian root filesystem, after its
# packages are installed. One script for both builds, so they cannot drift: operator/Dockerfile runs it with root /,
# tools/image/rootfs.sh as mmdebstrap's customize hook with root = the new tree (from outside, so only file
# operations here, nothing that must run inside the tree). POSIX sh: debian-slim and the build host both have it.
set -eu
root=${1:?usage: customize.sh <root>}

# The VM pod's `tools` init container copies a static busybox from here into an emptyDir, so user images built FROM
# scratch can be copied out (IMAGE_BUSYBOX in operator/pod-layout.ts). A hard link to busybox-static's file: the
# layer stores it once.
mkdir -p "$root/usr/lib/kubevisor"
ln -f "$root/usr/bin/busybox" "$root/usr/lib/kubevisor/busybox"

# Debian installs the Rust virtiofsd (the command line operator/launcher/virtiofs.ts speaks) outside PATH.
mkdir -p "$root/usr/local/bin"
ln -sf /usr/libexec/virtiofsd "$root/usr/local/bin/virtiofsd"

# The controller runs as 65532 (the platform's Deployment sets it; numeric, so runAsNonRoot can check it): named here
# so tools that map ids show a name. No home, no shell, no password.
grep -q '^nonroot:' "$root/etc/passwd" ||
  echo 'nonroot:x:65532:65532:kubevisor controller:/nonexistent:/usr/sbin/nologin' >>"$root/etc/passwd"
grep -q '^nonroot:' "$root/etc/group" || echo 'nonroot:x:65532:' >>"$root/etc/group"

# containerRootfs volumes become ext4 images made by `mkfs.ext4 -d` in the VM pod, with this file's defaults. Debian
# 13 turned on orphan_file (read-only mounts before Linux 5.15) and metadata_csum_seed (Linux 4.4); Debian 12 left
# them off. Off here too, so a guest's root filesystem mounts read-write on the older guest kernels it did before.
conf="$root/etc/mke2fs.conf"
sed -i -e '/^[[:space:]]*features = has_journal,/ { s/,metadata_csum_seed//; s/,orphan_file// }' "$conf"
if grep -Eq 'orphan_file|metadata_csum_seed' "$conf"; then
  echo "customize: $conf still enables orphan_file or metadata_csum_seed" >&2
  exit 1
fi
