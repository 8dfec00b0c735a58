#!/usr/bin/env bash
# Builds the e2e control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd,
# kwok) and the e2e real node's kubelet (test/e2e/harness/real-node.ts) from the pinned Go modules
# next to this script, once, into a cache outside the repo:
#
#   ${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}/control-plane/<k8s>-<etcd>-<kwok>-<hash>/bin/
#
# <hash> covers the go.mod/go.sum files and this script, so any pin or flag change builds a new
# directory. The build goes to a temporary sibling directory that is renamed into place only when
# every binary is built, so an interrupted build never leaves a half cache.
#
# Beside bin/ it writes kwok-stages.yaml (KWOK's upstream stages) and versions.txt.
#
# Usage: build.sh                  build if needed; the last line of output is the bin dir
#        build.sh --print-bin-dir  print the bin dir if it is built, else fail (never builds)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}"

# Versions are read from the go.mod files so they are pinned in exactly one place.
module_version() { # <dir> <module path>
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$here/$1/go.mod"
}
k8s_version="$(module_version kubernetes k8s.io/kubernetes)"
etcd_version="$(module_version etcd go.etcd.io/etcd/server/v3)"
kwok_version="$(module_version kwok sigs.k8s.io/kwok)"
for v in "$k8s_version" "$etcd_version" "$kwok_version"; do
  [[ -n "$v" ]] || { echo "control-plane: cannot read a pinned version from $here/*/go.mod" >&2; exit 1; }
done

inputs_hash="$(cd "$here" && cat build.sh kubernetes/go.mod kubernetes/go.sum etcd/go.mod etcd/go.sum kwok/go.mod kwok/go.sum | sha256sum | cut -c1-12)"
out_dir="$cache_root/control-plane/${k8s_version}-${etcd_version}-${kwok_version}-${inputs_hash}"
bin_dir="$out_dir/bin"

if [[ "${1:-}" == "--print-bin-dir" ]]; then
  [[ -d "$bin_dir" ]] || { echo "control-plane: not built yet; run npm run control-plane:build" >&2; exit 1; }
  echo "$bin_dir"
  exit 0
fi

if [[ -d "$bin_dir" ]]; then
  echo "control-plane: cached at $out_dir"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "control-plane: go is not on PATH" >&2; exit 1; }

# Never download another toolchain: the local Go must satisfy every module's go line.
export GOTOOLCHAIN=local
# -mod=readonly: the committed go.mod/go.sum are the pins; a build never edits them.
export GOFLAGS="-mod=readonly -buildvcs=false"
# Keep Go's compile cache beside the binaries (one directory for CI to cache) unless the caller
# chose one. It makes a rebuild after a pin change reuse every unchanged package.
export GOCACHE="${GOCACHE:-$cache_root/go-build}"
export CGO_ENABLED=0

mkdir -p "$cache_root/control-plane"
tmp_dir="$(mktemp -d "$cache_root/control-plane/.building-XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT
chmod 755 "$tmp_dir" # mktemp made it private; the binaries are not secret
mkdir -p "$tmp_dir/bin"

# Version stamps that upstream's hack/lib/version.sh sets; without them the components report
# v0.0.0-master, which confuses version checks in clients.
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

build() { # <module dir> <package> <binary> <version> [extra ldflags]
  local start=$SECONDS
  (cd "$here/$1" && go build -trimpath -ldflags="-s -w ${5:-}" -o "$tmp_dir/bin/$3" "$2")
  echo "control-plane: built $3 $4 in $((SECONDS - start)) s"
}

total_start=$SECONDS
build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$k8s_version" "$k8s_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$k8s_version" "$k8s_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler "$k8s_version" "$k8s_ldflags"
# The real node's kubelet: same module and pins as the API server it talks to, so the node's version
# never skews from the control plane's. Static (CGO_ENABLED=0), as upstream ships it.
build kubernetes k8s.io/kubernetes/cmd/kubelet kubelet "$k8s_version" "$k8s_ldflags"
build etcd go.etcd.io/etcd/server/v3 etcd "$etcd_version"
build kwok sigs.k8s.io/kwok/cmd/kwok kwok "$kwok_version"

# KWOK ships no default behaviour: it needs Stage objects. Take the upstream stages that match
# this kwok version from its module (nodes become Ready at once and renew their Lease; pods become
# Ready at once, complete when their containers would, and are removed when deleted).
kwok_dir="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  echo "---"
  cat "$kwok_dir/kustomize/stage/$f"
done >"$tmp_dir/kwok-stages.yaml"

printf 'kubernetes %s\netcd %s\nkwok %s\ngo %s\n' "$k8s_version" "$etcd_version" "$kwok_version" \
  "$(go env GOVERSION)" >"$tmp_dir/versions.txt"
# rename(2) is atomic; if a concurrent build won the race, keep its result and drop ours.
if ! mv -T "$tmp_dir" "$out_dir" 2>/dev/null; then
  echo "control-plane: another build finished first; using it"
fi
trap - EXIT
rm -rf "$tmp_dir"
echo "control-plane: built all in $((SECONDS - total_start)) s into $out_dir ($(du -sh "$bin_dir" | cut -f1))"
echo "$bin_dir"
