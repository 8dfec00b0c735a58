#!/usr/bin/env bash
# tools/image/smoke.sh [archive]: runs the operator image's entry points and tools inside the image, with runc (as
# root): the OCI archive (default dist/image/kubevisor-<version>.oci.tar) is unpacked by umoci into a runc bundle in a
# temporary directory; each check is one container, root filesystem read-only with a tmpfs /tmp, uid 0 or the
# controller's 65532, bounded by a timeout; every container and the bundle are removed on any exit.
#
# It checks that `kubevisor --version` answers with package.json's version, that each role's --help answers without a
# cluster, that the tools the launcher, the node daemon and node setup run are present and run (dnsmasq ≥ 2.91), and
# that cloud-hypervisor is absent exactly when the image's io.kubevisor.cloud-hypervisor label says `absent`. One line
# per entry point, then the tools, from inside the image; any failure names the check and exits non-zero.
#
# The test image (`tools/image/build.sh --test-standin`, label `standin-qemu`; pass its archive, e.g.
# dist/image/kubevisor-<version>-test.oci.tar) is checked the same way, and: its cloud-hypervisor says it is the
# stand-in of CH 53.0 and answers CH's vmm.ping on an API socket inside the image, and qemu-system-x86_64 runs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
. tools/image/common.sh
start=$SECONDS
smoke_fail() { fail "smoke FAILED: $*"; }

[[ $EUID -eq 0 ]] || smoke_fail "runc runs containers as root only here; run as root"
tools/system-deps.sh umoci runc
version=$(node -p 'require("./package.json").version')
archive=${1:-dist/image/kubevisor-$version.oci.tar}
[[ -f "$archive" ]] || smoke_fail "$archive not found (npm run image:build makes it)"

work=$(mktemp -d "${TMPDIR:-/tmp}/kubevisor-smoke.XXXXXX")
containers=()
cleanup() {
  for id in "${containers[@]}"; do runc delete --force "$id" >/dev/null 2>&1 || true; done
  remove_tree "$work"
}
trap cleanup EXIT
mkdir "$work/layout"
tar -xf "$archive" -C "$work/layout"
# The archive's one tag: <version>, or <version>-test for the test image.
tag=$(node -p 'require(process.argv[1]).manifests[0].annotations["org.opencontainers.image.ref.name"]' \
  "$work/layout/index.json")
umoci unpack --image "$work/layout:$tag" "$work/bundle" >/dev/null
config="$work/bundle/config.json"
# umoci copies the image's labels into the bundle's annotations.
ch_label=$(node -p 'require(process.argv[1]).annotations["io.kubevisor.cloud-hypervisor"] ?? ""' "$config")
[[ -n "$ch_label" ]] || smoke_fail "the image has no io.kubevisor.cloud-hypervisor label"

# in_image UID COMMAND…: runs COMMAND in the image as UID (its group the same), prints its stdout.
in_image() {
  local uid=$1 id="kv-smoke-$$-${#containers[@]}" status=0
  shift
  node - "$config" "$uid" "$@" <<'JS'
const fs = require('node:fs');
const [file, uid, ...args] = process.argv.slice(2);
const c = JSON.parse(fs.readFileSync(file, 'utf8'));
Object.assign(c.process, { args, terminal: false, user: { uid: Number(uid), gid: Number(uid) } });
c.root.readonly = true; // as readOnlyRootFilesystem: the entry points write nothing into the image
if (!c.mounts.some((m) => m.destination === '/tmp'))
  c.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=64m'] });
fs.writeFileSync(file, JSON.stringify(c));
JS
  containers+=("$id")
  timeout 60 runc run --bundle "$work/bundle" "$id" </dev/null >"$work/stdout" 2>"$work/stderr" || status=$?
  runc delete --force "$id" >/dev/null 2>&1 || true
  if ((status != 0)); then
    echo "image: smoke: \`$*\` as uid $uid exited $status inside the image:" >&2
    sed 's/^/  /' "$work/stderr" "$work/stdout" | tail -n 20 >&2
    return 1
  fi
  cat "$work/stdout"
}

# ---- entry points -------------------------------------------------------------------------------------------------
answer=$(in_image 0 kubevisor --version) || smoke_fail "kubevisor --version"
[[ "$answer" == "kubevisor $version" ]] || smoke_fail "kubevisor --version answered '$answer', not 'kubevisor $version'"
answer=$(in_image 65532 kubevisor --version) || smoke_fail "kubevisor --version as uid 65532"
[[ "$answer" == "kubevisor $version" ]] || smoke_fail "kubevisor --version as 65532 answered '$answer'"
log "smoke: kubevisor --version → $answer (uid 0 and 65532)"
# The controller as the platform runs it (65532); the others as root, as their pods run them.
for role in controller:65532 daemon:0 node-setup:0 launcher:0; do
  name=${role%:*} uid=${role#*:}
  usage=$(in_image "$uid" kubevisor "$name" --help) || smoke_fail "kubevisor $name --help"
  [[ "$(head -n 1 <<<"$usage")" == "Usage: kubevisor $name "* ]] ||
    smoke_fail "kubevisor $name --help answered '$(head -n 1 <<<"$usage")'"
  log "smoke: kubevisor $name --help → $(head -n 1 <<<"$usage" | cut -c1-50)… (uid $uid)"
done

# ---- tools --------------------------------------------------------------------------------------------------------
# One container prints `name version` per tool it runs (the first dotted number its version output shows), `name present`
# or `name missing`.
# shellcheck disable=SC2016 # the script runs inside the image, where its variables expand
probe=$(in_image 0 sh -c '
  v() { printf "%s %s\n" "$1" "$(grep -oE "[0-9]+(\.[0-9]+)+" | head -n 1)"; }
  dnsmasq --version | v dnsmasq
  virtiofsd --version | v virtiofsd
  nft --version | v nft
  ip -V | v ip
  qemu-img --version | v qemu-img
  genisoimage --version 2>&1 | v genisoimage
  mkfs.ext4 -V 2>&1 | v mkfs.ext4
  mkfs.ext4 -q -F /tmp/probe.img 8M && dumpe2fs -h /tmp/probe.img 2>/dev/null | sed -n "s/^Filesystem features: */ext4-features /p"
  /usr/lib/kubevisor/busybox 2>&1 | v busybox
  test -x /usr/lib/kubevisor/entrypoint.sh && echo "entrypoint.sh executable"
  for t in nsenter setpriv prlimit sysctl mount tar modprobe; do command -v "$t" >/dev/null && echo "$t present" || echo "$t missing"; done
  command -v cloud-hypervisor >/dev/null && cloud-hypervisor --version | v cloud-hypervisor || echo "cloud-hypervisor missing"
  test -f /usr/share/cloud-hypervisor/hypervisor-fw && echo "hypervisor-fw present" || echo "hypervisor-fw missing"
') || smoke_fail "the tools probe"
have() { awk -v t="$1" '$1 == t { print $2; exit }' <<<"$probe"; }
for t in dnsmasq virtiofsd nft ip qemu-img genisoimage mkfs.ext4 busybox; do
  [[ "$(have "$t")" =~ ^[0-9] ]] || smoke_fail "$t did not run in the image: $(grep "^$t " <<<"$probe" || echo 'no output')"
done
for t in nsenter setpriv prlimit sysctl mount tar modprobe; do
  [[ "$(have "$t")" == present ]] || smoke_fail "$t is not on the image's PATH"
done
[[ "$(have entrypoint.sh)" == executable ]] || smoke_fail "/usr/lib/kubevisor/entrypoint.sh is missing or not executable"
# dnsmasq serves DHCP without CAP_NET_ADMIN (the VM pod has only NET_BIND_SERVICE) from 2.91 on.
IFS=. read -r major minor _ <<<"$(have dnsmasq)"
((major > 2 || (major == 2 && minor >= 91))) || smoke_fail "dnsmasq $(have dnsmasq) is older than 2.91"
grep -Eq '^ext4-features .*(orphan_file|metadata_csum_seed)' <<<"$probe" &&
  smoke_fail "mkfs.ext4 makes orphan_file or metadata_csum_seed filesystems (tools/image/customize.sh)"
if [[ "$ch_label" == standin-qemu ]]; then
  # The test image: the stand-in must say what it is, serve CH's API from the bundled code, and have its QEMU.
  # shellcheck disable=SC2016 # the script runs inside the image, where its variables expand
  standin=$(in_image 0 sh -c '
    cloud-hypervisor --version
    qemu-system-x86_64 --version | head -n 1
    # The machine the stand-in runs, with its firmware and devices: still running after 2 s means it came up.
    timeout 2 qemu-system-x86_64 -M q35 -accel tcg -nodefaults -no-user-config -display none -S \
      -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= -device virtio-blk-pci,drive=d0 \
      -drive if=none,id=d0,format=raw,file=/usr/lib/kubevisor/busybox,readonly=on >/tmp/qemu.log 2>&1
    echo "qemu-q35 $?"; cat /tmp/qemu.log
    cloud-hypervisor --api-socket /tmp/ch.sock >/tmp/ch.log 2>&1 &
    node -e "
      const http = require(\"node:http\");
      const ask = (n) => http.get({ socketPath: \"/tmp/ch.sock\", path: \"/api/v1/vmm.ping\" }, (r) => {
        let b = \"\"; r.on(\"data\", (c) => (b += c)); r.on(\"end\", () => console.log(\"ping \" + b));
      }).on(\"error\", () => (n > 0 ? setTimeout(() => ask(n - 1), 100) : console.log(\"ping failed\")));
      ask(100);"
    kill $! 2>/dev/null; wait $! 2>/dev/null; true
  ') || smoke_fail "the Cloud Hypervisor stand-in probe"
  grep -q '^cloud-hypervisor-standin v53\.0 (kubevisor test stand-in' <<<"$standin" ||
    smoke_fail "cloud-hypervisor --version does not name the stand-in: $(head -n 1 <<<"$standin")"
  grep -q '^QEMU emulator version [0-9]' <<<"$standin" || smoke_fail "qemu-system-x86_64 did not run: $standin"
  grep -q '^qemu-q35 124$' <<<"$standin" || smoke_fail "QEMU could not start a q35 machine: $standin"
  grep -q '^ping {"version":"53.0.0"' <<<"$standin" || smoke_fail "the stand-in did not answer vmm.ping: $standin"
  ch_note="cloud-hypervisor is the stand-in (label standin-qemu): $(head -n 1 <<<"$standin" | cut -d' ' -f1-2), \
answers vmm.ping; $(grep '^QEMU emulator' <<<"$standin" | cut -d' ' -f1,4) runs"
elif [[ "$ch_label" == absent ]]; then
  [[ "$(have cloud-hypervisor)" == missing && "$(have hypervisor-fw)" == missing ]] ||
    smoke_fail "the label says Cloud Hypervisor is absent, but the image has it"
  ch_note="cloud-hypervisor absent (label io.kubevisor.cloud-hypervisor=absent)"
else
  [[ "v$(have cloud-hypervisor)" == "$ch_label" ]] ||
    smoke_fail "the label says Cloud Hypervisor $ch_label, the image runs '$(have cloud-hypervisor)'"
  [[ "$(have hypervisor-fw)" == present ]] || smoke_fail "hypervisor-fw is missing"
  ch_note="cloud-hypervisor $ch_label and hypervisor-fw present (label)"
fi
log "smoke: dnsmasq $(have dnsmasq), virtiofsd $(have virtiofsd), nft $(have nft), ip $(have ip), qemu-img $(have qemu-img),\
 genisoimage $(have genisoimage), mkfs.ext4 $(have mkfs.ext4), busybox $(have busybox) run; nsenter, setpriv, prlimit,\
 sysctl, mount, tar, modprobe, entrypoint.sh present"
log "kubevisor $tag — controller, daemon, node-setup, launcher answer; $ch_note; smoke test passed in $((SECONDS - start)) s"
