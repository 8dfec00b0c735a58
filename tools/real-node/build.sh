#!/usr/bin/env bash
# Builds what the e2e real node (test/e2e/harness/real-node.ts) needs beside the kubelet, once, into
# a cache outside the repo:
#
#   ${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}/real-node/pause-<hash>/
#     pause          the sandbox entry point (pause/main.go, static)
#     pause.oci.tar  an OCI image layout archive holding it, tagged <hash> (entry point /pause,
#                    user 65535): containerd's sandbox_image, imported as kubevisor.local/pause:<hash>
#     image.txt      that image name
#
# No registry is involved anywhere: the image is packed with umoci and imported with `ctr images
# import`. <hash> covers this script, the pause sources and the Go version. The build goes to a
# temporary sibling that is renamed into place, so an interrupted build never leaves a half cache.
#
# Usage: build.sh   build if needed; the last line of output is the cache dir
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}"

command -v go >/dev/null || { echo "real-node: go is not on PATH" >&2; exit 1; }
command -v umoci >/dev/null || { echo "real-node: umoci is missing (tools/system-deps.sh installs it)" >&2; exit 1; }

go_version="$(GOTOOLCHAIN=local go env GOVERSION)"
hash="$(cd "$here" && { cat build.sh pause/go.mod pause/main.go; echo "$go_version"; } | sha256sum | cut -c1-12)"
out_dir="$cache_root/real-node/pause-$hash"
image="kubevisor.local/pause:$hash"

if [[ -f "$out_dir/pause.oci.tar" ]]; then
  echo "real-node: pause image cached at $out_dir"
  echo "$out_dir"
  exit 0
fi

mkdir -p "$cache_root/real-node"
tmp_dir="$(mktemp -d "$cache_root/real-node/.building-XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT
chmod 755 "$tmp_dir"
start=$SECONDS

# Static, stripped, reproducible paths; GOCACHE beside the control plane's (one dir for CI to cache).
(cd "$here/pause" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
  GOCACHE="${GOCACHE:-$cache_root/go-build}" go build -trimpath -ldflags="-s -w" -o "$tmp_dir/pause" .)

# One layer holding /pause. umoci unpack/repack need root (they keep file owners); the e2e suite runs as root.
layout="$tmp_dir/layout"
umoci init --layout "$layout"
umoci new --image "$layout:$hash"
umoci unpack --image "$layout:$hash" "$tmp_dir/bundle" >/dev/null
install -m 0755 "$tmp_dir/pause" "$tmp_dir/bundle/rootfs/pause"
umoci repack --image "$layout:$hash" "$tmp_dir/bundle"
umoci config --image "$layout:$hash" --os linux --architecture amd64 \
  --config.entrypoint /pause --config.user 65535:65535 --author kubevisor
umoci gc --layout "$layout"
tar -C "$layout" -cf "$tmp_dir/pause.oci.tar" .
rm -rf "$layout" "$tmp_dir/bundle"
echo "$image" >"$tmp_dir/image.txt"

if ! mv -T "$tmp_dir" "$out_dir" 2>/dev/null; then
  echo "real-node: another build finished first; using it"
fi
trap - EXIT
rm -rf "$tmp_dir"
echo "real-node: built the pause image $image in $((SECONDS - start)) s into $out_dir"
echo "$out_dir"
