#!/usr/bin/env bash
# tools/system-deps.sh: installs the Debian packages the test suites need, only those missing (idempotent).
# Run by `tools/run test` and CI. As root it uses apt-get; otherwise it names what to install and fails.
# With arguments, only those packages (tools/image/*.sh ask for theirs alone).
set -euo pipefail
packages=(
  openssl ca-certificates                      # e2e: control-plane certificates
  iproute2 nftables dnsmasq-base util-linux    # launch: pod network, NAT, DHCP, setpriv
  genisoimage qemu-utils e2fsprogs tar         # launch: cloud-init ISO, disk conversion, ext4 rootfs
  qemu-system-x86 cpio                         # launch: the real guest under QEMU (TCG)
  mmdebstrap umoci                             # image: Debian root filesystem, OCI layout (tools/image/build.sh); e2e real node images
  runc                                         # image: runs the entry points inside the image (tools/image/smoke.sh); e2e real node
  containerd containernetworking-plugins       # e2e: the real node's runtime and pod network (test/e2e/harness/real-node.ts)
  iptables                                     # e2e: the real node's kubelet adds its chains with it (removed at stop)
  busybox-static                               # e2e: the real-node test's pod image (test/e2e/real-node.e2e.test.ts)
)
[ $# -gt 0 ] && packages=("$@")
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
