#!/usr/bin/env bash
# tools/image/build.sh (`npm run image:build`): builds the operator image without a Docker engine and without any
# container registry, into an OCI image layout archive that `skopeo copy oci-archive:…` and
# `ctr images import --base-name <repository>` read:
#
#   dist/image/kubevisor-<version>.oci.tar   tag <version>; entry point /usr/local/bin/kubevisor
#
# Three layers, assembled with umoci:
#   1–2. the Debian root filesystem and Node.js (tools/image/base.sh, cached under
#        ${KUBEVISOR_CACHE:-~/.cache/kubevisor}/image/base-<hash>/)
#   3.   the app: lib/ as `npm run build` compiles it (JavaScript only), the production node_modules (cached under
#        …/image/deps-<hash of package.json and package-lock.json>/), package.json, entrypoint.sh, and
#        /usr/local/bin/kubevisor (tools/image/kubevisor.sh)
#
# The image carries no Cloud Hypervisor (label io.kubevisor.cloud-hypervisor=absent): no registry reachable from
# these machines ships it; operator/Dockerfile downloads the pinned release. tools/image/smoke.sh checks the result.
#
# --test-standin (`npm run image:build-test`) builds the same image, then the TEST image on top of it
# (tools/image/test-standin.sh): dist/image/kubevisor-<version>-test.oci.tar, tag <version>-test, with Debian's
# qemu-system-x86 and a Cloud Hypervisor STAND-IN as /usr/bin/cloud-hypervisor (label
# io.kubevisor.cloud-hypervisor=standin-qemu). Without the flag nothing of it runs.
set -euo pipefail
test_standin=false
case "${1:-}" in
"") ;;
--test-standin) test_standin=true ;;
*)
  echo "usage: tools/image/build.sh [--test-standin]" >&2
  exit 2
  ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
start=$SECONDS
. tools/image/common.sh

tools/system-deps.sh mmdebstrap umoci
version=$(node -p 'require("./package.json").version')
[[ "$(dockerfile_arg VERSION)" == "$version" ]] ||
  fail "operator/Dockerfile's ARG VERSION=$(dockerfile_arg VERSION) differs from package.json's $version"
[[ "$(sed -n 's/^_kv_node_version=//p' tools/node-env.sh)" == "$(dockerfile_arg NODE_VERSION)" ]] ||
  fail "operator/Dockerfile's ARG NODE_VERSION=$(dockerfile_arg NODE_VERSION) differs from tools/node-env.sh's"
out="dist/image/kubevisor-$version.oci.tar"
test_out="dist/image/kubevisor-$version-test.oci.tar"
cache="${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}/image"
mkdir -p "$cache" dist/image
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'remove_tree "$work"; rm -f "$out.partial" "$test_out.partial"' EXIT

base=$(bash tools/image/base.sh "$cache")

# ---- layer 3: the app ---------------------------------------------------------------------------------------------
t=$SECONDS
app="$work/app/usr/lib/kubevisor"
mkdir -p "$app" "$work/app/usr/local/bin"
# `npm run build`'s compile, into the layer's own directory: JavaScript only, nothing left in lib/ by sources since
# removed, and the checkout's lib/ untouched.
npx tsc -p tsconfig.build.json --outDir "$app/lib" --declaration false --sourceMap false
deps="$cache/deps-$(cat package.json package-lock.json | hash_of)"
if [[ ! -d "$deps/node_modules" ]]; then
  mkdir -p "$work/deps"
  cp package.json package-lock.json "$work/deps/"
  # Production dependencies only, as locked (npm install, not npm ci: see tools/run); none needs an install script.
  (cd "$work/deps" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --silent)
  mv -T "$work/deps" "$deps" 2>/dev/null || true # a concurrent build's is the same
fi
cp package.json "$app/"
cp -a "$deps/node_modules" "$app/"
install -m 755 operator/launcher/entrypoint.sh "$app/entrypoint.sh"
install -m 755 tools/image/kubevisor.sh "$work/app/usr/local/bin/kubevisor"
chmod -R u+rwX,go+rX,go-w "$work/app"
layer_tar "$work/app" "$work/app.tar" usr
log "app: kubevisor $version ($(du -sm "$work/app" | cut -f1) MiB: lib, production node_modules) in $((SECONDS - t)) s"

# ---- assemble ------------------------------------------------------------------------------------------------------
oci="$work/oci"
cp -a "$base" "$oci"
umoci raw add-layer --image "$oci:base" --tag "$version" \
  --history.created_by "kubevisor $version: lib, production node_modules, entrypoint.sh" "$work/app.tar"
umoci config --image "$oci:$version" --no-history \
  --config.entrypoint /usr/local/bin/kubevisor --clear config.cmd \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.user 0 --config.workingdir / --architecture amd64 --os linux \
  --config.label org.opencontainers.image.title=kubevisor \
  --config.label "org.opencontainers.image.description=kubevisor operator: controller, node daemon, node setup and \
VM pod launcher. Built from Debian packages by tools/image/build.sh; carries no Cloud Hypervisor binary, because no \
registry reachable from the build ships it (operator/Dockerfile builds the image with it)" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label org.opencontainers.image.source=https://github.com/kubevisor/kubevisor \
  --config.label org.opencontainers.image.licenses=Apache-2.0 \
  --config.label io.kubevisor.cloud-hypervisor=absent
umoci rm --image "$oci:base"
umoci gc --layout "$oci"
layer_tar "$oci" "$out.partial" oci-layout index.json blobs
mv -f "$out.partial" "$out"
log "$out ($(du -m "$out" | cut -f1) MiB) in $((SECONDS - start)) s"

if $test_standin; then
  bash tools/image/test-standin.sh "$oci" "$version" "$cache" "$work" "$test_out"
  log "$test_out ($(du -m "$test_out" | cut -f1) MiB, the test image) in $((SECONDS - start)) s"
fi
