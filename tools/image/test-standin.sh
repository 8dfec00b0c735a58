#!/usr/bin/env bash
# tools/image/test-standin.sh <oci-layout> <version> <cache-dir> <work-dir> <out.tar>: the operator TEST image, run by
# `tools/image/build.sh --test-standin` (`npm run image:build-test`) once the operator image is assembled in
# <oci-layout> under tag <version>. It is that image plus two layers, tagged <version>-test:
#
#   4. QEMU: Debian's qemu-system-x86 with the packages it needs that the image lacks — their files only (dpkg-deb
#      -x), as `apt-get install --download-only` against the image's own dpkg status resolves them from the image's
#      suite; docs, the i386 binary and the iPXE ROMs (the stand-in gives NICs no option ROM) left out. Cached under
#      <cache-dir>/test-qemu-<hash of the image's package set and this script>/.
#   5. the Cloud Hypervisor STAND-IN as /usr/bin/cloud-hypervisor: test/standins bundled by esbuild into one
#      JavaScript file (with the CH spec it validates requests against) run by the image's Node, with --standin-qemu,
#      so each VM pod's guest really boots under QEMU TCG from its VmConfig. No tsx at run time.
#
# Label io.kubevisor.cloud-hypervisor=standin-qemu; the description says it is a test stand-in. Never publish it as
# the operator image: it carries no Cloud Hypervisor.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
. tools/image/common.sh
oci=${1:?usage: test-standin.sh <oci-layout> <version> <cache-dir> <work-dir> <out.tar>}
version=${2:?} cache=${3:?} work=${4:?} out=${5:?}
tag="$version-test"
suite=$(dockerfile_arg DEBIAN_SUITE)
mirror=${KUBEVISOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${KUBEVISOR_DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}
mkdir -p "$work/test"

# blob_of TAG INDEX: the path of the INDEX-th layer (0 = the Debian root filesystem) of TAG's manifest.
blob_of() {
  node - "$oci" "$1" "$2" <<'JS'
const fs = require('node:fs');
const [dir, tag, index] = process.argv.slice(2);
const blob = (d) => `${dir}/blobs/${d.replace(':', '/')}`;
const ref = JSON.parse(fs.readFileSync(`${dir}/index.json`, 'utf8')).manifests.find(
  (m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
);
if (!ref) throw new Error(`no tag ${tag} in ${dir}`);
console.log(blob(JSON.parse(fs.readFileSync(blob(ref.digest), 'utf8')).layers[Number(index)].digest));
JS
}

# ---- layer 4: QEMU --------------------------------------------------------------------------------------------------
t=$SECONDS
tar -xzf "$(blob_of "$version" 0)" -C "$work/test" ./var/lib/dpkg/status
key=$(cat "$work/test/var/lib/dpkg/status" tools/image/test-standin.sh | hash_of)
qemu_layer="$cache/test-qemu-$key"
if [[ ! -f "$qemu_layer/qemu.tar" ]]; then
  apt_dir="$work/test/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$work/test/qemu"
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$suite" "$mirror" "$suite" "$security" "$suite" >"$apt_dir/sources.list"
  # A private apt: the image's suite, the image's dpkg status (so only what the image lacks is fetched), nothing of
  # the host's configuration touched. As root, apt would drop to _apt, which cannot write this private tree.
  apt_private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::status=$work/test/var/lib/dpkg/status"
    -o APT::Sandbox::User=root -o Debug::NoLocking=1 -o APT::Install-Recommends=false)
  log "test image: resolving qemu-system-x86 against the image's packages (Debian $suite)"
  apt-get -qq "${apt_private[@]}" update
  apt-get -qq -y "${apt_private[@]}" install --download-only qemu-system-x86 >/dev/null
  debs=("$apt_dir/cache/archives/"*.deb)
  for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$work/test/qemu"; done
  q="$work/test/qemu"
  find "$q/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
  rm -rf "$q/usr/share/man" "$q/usr/share/locale" "$q/usr/share/info" "$q/usr/lib/ipxe" "$q/usr/bin/qemu-system-i386"
  chmod -R u+rwX,go+rX,go-w "$q"
  mkdir -p "$work/test/qemu-cache"
  layer_tar "$q" "$work/test/qemu-cache/qemu.tar" .
  basename -a "${debs[@]}" | sed 's/_.*//' | sort >"$work/test/qemu-cache/packages.txt"
  mv -T "$work/test/qemu-cache" "$qemu_layer" 2>/dev/null || true # a concurrent build's is the same
fi
log "test image: QEMU layer: $(wc -l <"$qemu_layer/packages.txt") packages, $(($(stat -c %s "$qemu_layer/qemu.tar") / 1048576)) MiB, in $((SECONDS - t)) s"

# ---- layer 5: the Cloud Hypervisor stand-in -------------------------------------------------------------------------
t=$SECONDS
standin="$work/test/standin"
lib="$standin/usr/lib/kubevisor/standin"
mkdir -p "$lib" "$standin/usr/bin"
esbuild=node_modules/.bin/esbuild
[[ -x "$esbuild" ]] || fail "test image: $esbuild is missing (it comes with tsx's dependencies: run npm ci)"
"$esbuild" test/standins/cloud-hypervisor-standin-main.ts --bundle --platform=node --target=node22 --format=cjs \
  --log-level=warning --legal-comments=inline --outfile="$lib/cloud-hypervisor-standin.js"
# The spec the stand-in validates every request against; operator/cloudhypervisor/spec.ts reads it beside the code.
cp operator/cloudhypervisor/cloud-hypervisor-v53.0.yaml "$lib/"
cat >"$standin/usr/bin/cloud-hypervisor" <<'WRAPPER'
#!/bin/sh
# NOT Cloud Hypervisor: the kubevisor TEST STAND-IN for it (tools/image/test-standin.sh). It serves CH v53.0's REST
# API on --api-socket (every request validated against CH's official spec) and runs each VM's guest under QEMU TCG
# from the VmConfig itself. exec: the VM pod's main process is the stand-in itself, its guest QEMU its child.
exec /usr/local/bin/node /usr/lib/kubevisor/standin/cloud-hypervisor-standin.js \
  --standin-qemu /usr/bin/qemu-system-x86_64 "$@"
WRAPPER
chmod 755 "$standin/usr/bin/cloud-hypervisor"
chmod -R u+rwX,go+rX,go-w "$standin"
layer_tar "$standin" "$work/test/standin.tar" usr
log "test image: stand-in layer ($(($(stat -c %s "$lib/cloud-hypervisor-standin.js") / 1024)) KiB bundle) in $((SECONDS - t)) s"

# ---- assemble -------------------------------------------------------------------------------------------------------
umoci raw add-layer --image "$oci:$version" --tag "$tag" \
  --history.created_by "test image: qemu-system-x86 ($(tr '\n' ' ' <"$qemu_layer/packages.txt"))" "$qemu_layer/qemu.tar"
umoci raw add-layer --image "$oci:$tag" \
  --history.created_by "test image: the Cloud Hypervisor stand-in as /usr/bin/cloud-hypervisor" "$work/test/standin.tar"
umoci config --image "$oci:$tag" --no-history \
  --config.label "org.opencontainers.image.title=kubevisor-test" \
  --config.label "org.opencontainers.image.description=kubevisor operator TEST image: the operator image plus a \
Cloud Hypervisor STAND-IN as /usr/bin/cloud-hypervisor (CH's REST API, guests run under QEMU TCG) and Debian's \
qemu-system-x86. For tests on machines without a usable KVM; it carries no Cloud Hypervisor. Built by \
tools/image/build.sh --test-standin" \
  --config.label "org.opencontainers.image.version=$tag" \
  --config.label io.kubevisor.cloud-hypervisor=standin-qemu
umoci rm --image "$oci:$version"
umoci gc --layout "$oci"
layer_tar "$oci" "$out.partial" oci-layout index.json blobs
mv -f "$out.partial" "$out"
