#!/usr/bin/env bash
# tools/image/rootfs.sh <out.tar>: the operator image's Debian root filesystem as an uncompressed tar (an OCI layer),
# made by mmdebstrap from Debian packages only — no container registry. The suite and packages are operator/
# Dockerfile's (DEBIAN_SUITE, PACKAGES), finished by the same tools/image/customize.sh, so both builds hold the same
# tools. Variant `essential` plus the packages: no apt or package lists in the image (nothing installs at run time).
# Mirrors: $KUBEVISOR_DEBIAN_MIRROR (default http://deb.debian.org/debian) and its -security sibling.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: rootfs.sh <out.tar>}
# shellcheck source=tools/image/common.sh
. "$here/common.sh"
suite=$(dockerfile_arg DEBIAN_SUITE)
packages=$(dockerfile_arg PACKAGES)
mirror=${KUBEVISOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${KUBEVISOR_DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}

[[ $EUID -eq 0 ]] || fail "base: mmdebstrap makes the root filesystem as root (files of other owners, device nodes)"
tree=$(mktemp -d "$(dirname "$out")/.rootfs-XXXXXX")
trap 'remove_tree "$tree"' EXIT
# Docs, man pages and translations are left out, licences kept.
mmdebstrap --variant=essential --mode=root --format=directory --quiet \
  --include="${packages// /,}" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook="sh '$here/customize.sh' \"\$1\"" \
  "$suite" "$tree" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main"
# The layer: sorted, numeric owners, file capabilities kept. Device nodes are the container runtime's to make (runc
# and containerd mount /dev), so /dev goes in empty. (Not `tar --delete` on mmdebstrap's own tar: it corrupted it.)
tar -C "$tree" --sort=name --numeric-owner --xattrs --xattrs-include=security.capability \
  --exclude='./dev/?*' -cf "$out" .
