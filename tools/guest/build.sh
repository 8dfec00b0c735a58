#!/usr/bin/env bash
# Builds the launch suite's guest — Debian's cloud kernel and a busybox initramfs whose /init
# (init.sh) reports what the guest sees on the serial console — once, into a cache outside the repo:
#
#   ${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}/guest/linux-<ver>-busybox-<ver>-<hash>/
#     vmlinuz  initramfs.cpio.gz  versions.txt  [dnsmasq/bin/dnsmasq]
#
# The key holds the Debian versions of linux-image-cloud-amd64's kernel and of busybox-static, and
# <hash> covers this script, init.sh and udhcpc.sh, so a new package or a changed script builds a
# new directory. Packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x`:
# nothing is installed as the host's kernel or busybox. The build goes to a temporary sibling
# directory renamed into place when complete, so an interrupted build never leaves a half cache.
#
# It also installs, when missing, the host tools the launch suite runs: qemu-system-x86, cpio,
# genisoimage (cidata ISOs) and dnsmasq-base (the test's DHCP server).
#
# The VM pod runs dnsmasq with CAP_NET_BIND_SERVICE only. dnsmasq starts DHCP without CAP_NET_ADMIN
# only from 2.91 on (with --dhcp-broadcast, which makes ARP-cache injection unnecessary); 2.90 and
# older refuse ("process is missing required capability NET_ADMIN"). When the host's dnsmasq is
# older, the fixture carries Debian 13's dnsmasq-base with Debian 13's C library (which it needs),
# unpacked, run through that library's loader by dnsmasq/bin/dnsmasq; the launch suite puts that
# first on the pod's PATH. Debian 13's package lists are fetched into the build's temporary
# directory, never into the host's apt configuration.
#
# Usage: build.sh              build if needed; the last line of output is the fixture dir
#        build.sh --print-dir  print the fixture dir if it is built, else fail (never builds)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}"
print_only=false
[[ "${1:-}" == "--print-dir" ]] && print_only=true

# Modules the guest needs; the cloud kernel builds all of them as modules (see init.sh). button and evdev make the
# ACPI power button an input device the guest's /init answers.
guest_modules=(virtio_mmio virtio_pci virtio_blk virtio_net isofs button evdev)

candidate() { # <package>: the version apt would install, empty when unknown
  apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2; exit }'
}
resolve_versions() {
  # linux-image-cloud-amd64 is a metapackage; the kernel is the ABI package it depends on.
  kernel_pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')"
  kernel_version=""
  if [[ -n "$kernel_pkg" ]]; then kernel_version="$(candidate "$kernel_pkg")"; fi
  busybox_version="$(candidate busybox-static)"
}

resolve_versions
if [[ -z "$kernel_version" || -z "$busybox_version" ]]; then
  if $print_only; then
    echo "guest: apt knows no linux-image-cloud-amd64 or busybox-static; run tools/guest/build.sh" >&2
    exit 1
  fi
  echo "guest: apt lists lack the packages; running apt-get update" >&2
  apt-get update -qq
  resolve_versions
  [[ -n "$kernel_version" && -n "$busybox_version" ]] || {
    echo "guest: apt offers no linux-image-cloud-amd64 or busybox-static" >&2
    exit 1
  }
fi

inputs_hash="$(cd "$here" && cat build.sh init.sh udhcpc.sh | sha256sum | cut -c1-12)"
# Epochs ("1:") are dropped: the colon is awkward in paths and never distinguishes two builds here.
out_dir="$cache_root/guest/linux-${kernel_version#*:}-busybox-${busybox_version#*:}-${inputs_hash}"

if $print_only; then
  [[ -f "$out_dir/initramfs.cpio.gz" ]] || {
    echo "guest: not built yet ($out_dir); run tools/guest/build.sh" >&2
    exit 1
  }
  echo "$out_dir"
  exit 0
fi

# ---- host tools -------------------------------------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
command -v genisoimage >/dev/null || command -v xorriso >/dev/null || missing+=(genisoimage)
command -v dnsmasq >/dev/null || [[ -x /usr/sbin/dnsmasq ]] || missing+=(dnsmasq-base)
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "guest: missing host packages: ${missing[*]} (install them as root)" >&2
    exit 1
  fi
  echo "guest: installing ${missing[*]}"
  # dnsmasq-base, not dnsmasq: the binary without a system service that would serve DNS on the host.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ -f "$out_dir/initramfs.cpio.gz" ]]; then
  echo "guest: cached at $out_dir"
  echo "$out_dir"
  exit 0
fi

# ---- build ------------------------------------------------------------------------------------
start=$SECONDS
mkdir -p "$cache_root/guest"
tmp_dir="$(mktemp -d "$cache_root/guest/.building-XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT
chmod 755 "$tmp_dir" # mktemp made it private; the fixture is not secret
work="$tmp_dir/.work"
mkdir -p "$work/debs" "$work/kernel" "$work/busybox"

# As root, apt drops to the _apt user to download, which cannot write into this private tree.
sandbox=()
[[ $EUID -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
(cd "$work/debs" && apt-get download -qq "${sandbox[@]}" \
  "$kernel_pkg=$kernel_version" "busybox-static=$busybox_version")

# ---- dnsmasq that serves DHCP with CAP_NET_BIND_SERVICE only -----------------------------------
dnsmasq_note="host $(dnsmasq --version 2>/dev/null | awk 'NR == 1 { print $3 }')"
if ! dnsmasq --version 2>/dev/null | awk 'NR == 1 { split($3, v, "."); exit !(v[1] > 2 || (v[1] == 2 && v[2] >= 91)) }'; then
  apt_dir="$work/apt-trixie"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$work/dnsmasq-debs"
  echo "deb http://deb.debian.org/debian trixie main" >"$apt_dir/sources.list"
  apt_private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" "${sandbox[@]}")
  apt-get -qq "${apt_private[@]}" update
  (cd "$work/dnsmasq-debs" && apt-get download -qq "${apt_private[@]}" dnsmasq-base libc6)
  bundle="$tmp_dir/dnsmasq"
  mkdir -p "$bundle/bin" "$work/dnsmasq-x"
  for deb in "$work/dnsmasq-debs/"*.deb; do dpkg-deb -x "$deb" "$work/dnsmasq-x"; done
  install -m 755 "$work/dnsmasq-x/usr/sbin/dnsmasq" "$bundle/dnsmasq"
  cp -a "$work/dnsmasq-x/usr/lib/x86_64-linux-gnu" "$bundle/lib"
  # Debian 13's libc first, then the host's libraries (older builds run on a newer libc).
  cat >"$bundle/bin/dnsmasq" <<'WRAPPER'
#!/bin/sh
# dnsmasq from Debian 13 with Debian 13's C library (tools/guest/build.sh).
here=$(dirname "$(dirname "$(readlink -f "$0")")")
exec "$here/lib/ld-linux-x86-64.so.2" --library-path "$here/lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" \
  "$here/dnsmasq" "$@"
WRAPPER
  chmod 755 "$bundle/bin/dnsmasq"
  dnsmasq_note="bundled $("$bundle/bin/dnsmasq" --version | awk 'NR == 1 { print $3 }') from Debian trixie"
fi
dpkg-deb -x "$work/debs/${kernel_pkg}_"*.deb "$work/kernel"
dpkg-deb -x "$work/debs/busybox-static_"*.deb "$work/busybox"

kernel_release="${kernel_pkg#linux-image-}"
cp "$work/kernel/boot/vmlinuz-$kernel_release" "$tmp_dir/vmlinuz"
modules_dir="$work/kernel/lib/modules/$kernel_release"

root="$work/initramfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,lib/modules,proc,sys,dev,run,tmp,mnt}
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
# One symlink per applet at its usual path (busybox-static is static, so it runs on the host too).
while read -r applet; do
  [[ "$applet" == bin/busybox ]] || ln -sf /bin/busybox "$root/$applet"
done < <("$root/bin/busybox" --list-full)
install -m 755 "$here/init.sh" "$root/init"
install -m 755 "$here/udhcpc.sh" "$root/etc/udhcpc.sh"

# Copy each module with its dependencies (read from the .ko's modinfo "depends=" field, so no
# depmod is needed), dependencies first: that is the insmod order /init follows.
declare -A placed=()
order=()
place_module() { # <name>
  local name="$1" file dep deps
  [[ -n "${placed[$name]:-}" ]] && return
  placed[$name]=1
  file="$(find "$modules_dir/kernel" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) -print -quit)"
  [[ -n "$file" ]] || {
    echo "guest: module $name not found in $kernel_pkg" >&2
    exit 1
  }
  deps="$(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | head -n 1)"
  for dep in ${deps//,/ }; do place_module "$dep"; done
  cp "$file" "$root/lib/modules/$name.ko"
  order+=("$name")
}
for m in "${guest_modules[@]}"; do
  if grep -q "/$m.ko\$" "$modules_dir/modules.builtin" 2>/dev/null; then continue; fi
  place_module "$m"
done
printf '%s\n' "${order[@]}" >"$root/etc/kv-modules"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) |
  gzip -9 >"$tmp_dir/initramfs.cpio.gz"

printf 'kernel-package %s\nkernel-version %s\nkernel-release %s\nbusybox-static %s\nmodules %s\ndnsmasq %s\n' \
  "$kernel_pkg" "$kernel_version" "$kernel_release" "$busybox_version" "${order[*]}" "$dnsmasq_note" \
  >"$tmp_dir/versions.txt"
rm -rf "$work"

# rename(2) is atomic; if a concurrent build won the race, keep its result and drop ours.
if ! mv -T "$tmp_dir" "$out_dir" 2>/dev/null; then
  echo "guest: another build finished first; using it"
fi
trap - EXIT
rm -rf "$tmp_dir"
echo "guest: built $kernel_release ($kernel_version) + busybox $busybox_version, modules: ${order[*]}"
echo "guest: vmlinuz $(du -h "$out_dir/vmlinuz" | cut -f1), initramfs $(du -h "$out_dir/initramfs.cpio.gz" | cut -f1), in $((SECONDS - start)) s"
echo "$out_dir"
