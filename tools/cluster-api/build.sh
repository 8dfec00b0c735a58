#!/usr/bin/env bash
# Builds Cluster API's three managers (core, kubeadm bootstrap, kubeadm control plane) for the e2e
# suite's nested-cluster test (test/e2e/harness/cluster-api.ts) from the pinned Go module next to
# this script, once, into a cache outside the repo:
#
#   ${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}/cluster-api/<version>-<hash>/bin/
#
# <hash> covers go.mod/go.sum and this script, so any pin or flag change builds a new directory.
# The build goes to a temporary sibling directory that is renamed into place only when every
# binary is built, so an interrupted build never leaves a half cache.
#
# Beside bin/ it writes, from the same module version (so CRDs, webhooks and managers never skew):
#   crds/<provider>/*.yaml      the CRD bases (no conversion webhook patch, no kustomize labels)
#   webhooks/<provider>.yaml    the Mutating/ValidatingWebhookConfigurations (service clientConfig)
#   kustomize/<provider>/{crd,default}.yaml  the kustomizations whose `labels` a release puts on the CRDs
#   versions.txt
# where <provider> is core, bootstrap-kubeadm or controlplane-kubeadm.
#
# Usage: build.sh                  build if needed; the last line of output is the bin dir
#        build.sh --print-bin-dir  print the bin dir if it is built, else fail (never builds)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}"

# The version is read from go.mod so it is pinned in exactly one place.
capi_version="$(awk '$1 == "sigs.k8s.io/cluster-api" && $2 ~ /^v/ { print $2; exit }' "$here/go.mod")"
[[ -n "$capi_version" ]] || { echo "cluster-api: cannot read the pinned version from $here/go.mod" >&2; exit 1; }

inputs_hash="$(cd "$here" && cat build.sh go.mod go.sum | sha256sum | cut -c1-12)"
out_dir="$cache_root/cluster-api/${capi_version}-${inputs_hash}"
bin_dir="$out_dir/bin"

if [[ "${1:-}" == "--print-bin-dir" ]]; then
  [[ -d "$bin_dir" ]] || { echo "cluster-api: not built yet; run npm run cluster-api:build" >&2; exit 1; }
  echo "$bin_dir"
  exit 0
fi

if [[ -d "$bin_dir" ]]; then
  echo "cluster-api: cached at $out_dir"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "cluster-api: go is not on PATH" >&2; exit 1; }

# Never download another toolchain: the local Go must satisfy the module's go line.
export GOTOOLCHAIN=local
# -mod=readonly: the committed go.mod/go.sum are the pins; a build never edits them.
export GOFLAGS="-mod=readonly -buildvcs=false"
# Shared with tools/control-plane/build.sh: the Kubernetes libraries both build are compiled once.
export GOCACHE="${GOCACHE:-$cache_root/go-build}"
export CGO_ENABLED=0

mkdir -p "$cache_root/cluster-api"
tmp_dir="$(mktemp -d "$cache_root/cluster-api/.building-XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT
chmod 755 "$tmp_dir" # mktemp made it private; the binaries are not secret
mkdir -p "$tmp_dir/bin" "$tmp_dir/crds" "$tmp_dir/webhooks"

# The version stamps upstream's hack/scripts/release/version.sh sets (the managers log them at
# start and clusterctl compares them); without them they report an empty version.
capi_major="$(echo "${capi_version#v}" | cut -d. -f1)"
capi_minor="$(echo "$capi_version" | cut -d. -f2)"
ldflags=""
for kv in "gitVersion=$capi_version" "gitMajor=$capi_major" "gitMinor=$capi_minor" "gitTreeState=clean"; do
  ldflags+=" -X sigs.k8s.io/cluster-api/version.$kv"
done

build() { # <package> <binary>
  local start=$SECONDS
  # -tags=fieldsv1string: as upstream's release Dockerfile builds the managers.
  (cd "$here" && go build -trimpath -tags=fieldsv1string -ldflags="-s -w $ldflags" -o "$tmp_dir/bin/$2" "$1")
  echo "cluster-api: built $2 $capi_version in $((SECONDS - start)) s"
}

total_start=$SECONDS
# One at a time: each link of these large binaries takes most of the machine's memory and cores.
build sigs.k8s.io/cluster-api/core cluster-api-manager
build sigs.k8s.io/cluster-api/bootstrap/kubeadm kubeadm-bootstrap-manager
build sigs.k8s.io/cluster-api/controlplane/kubeadm kubeadm-control-plane-manager

module_dir="$(cd "$here" && go list -m -f '{{.Dir}}' sigs.k8s.io/cluster-api)"
copy_manifests() { # <provider> <dir in the module>
  mkdir -p "$tmp_dir/crds/$1" "$tmp_dir/kustomize/$1"
  cp "$module_dir/$2/config/crd/bases/"*.yaml "$tmp_dir/crds/$1/"
  cp "$module_dir/$2/config/webhook/manifests.yaml" "$tmp_dir/webhooks/$1.yaml"
  # The labels kustomize puts on the CRDs of a release (the provider label, and the contract labels
  # `cluster.x-k8s.io/<contract>: <versions>` that Cluster API reads to pick a referenced kind's version).
  cp "$module_dir/$2/config/crd/kustomization.yaml" "$tmp_dir/kustomize/$1/crd.yaml"
  cp "$module_dir/$2/config/default/kustomization.yaml" "$tmp_dir/kustomize/$1/default.yaml"
}
copy_manifests core core
copy_manifests bootstrap-kubeadm bootstrap/kubeadm
copy_manifests controlplane-kubeadm controlplane/kubeadm
# Files from the module cache are read-only; the cache dir must stay removable by rm -rf.
chmod -R u+w "$tmp_dir/crds" "$tmp_dir/webhooks" "$tmp_dir/kustomize"

printf 'cluster-api %s\ngo %s\n' "$capi_version" "$(go env GOVERSION)" >"$tmp_dir/versions.txt"
# rename(2) is atomic; if a concurrent build won the race, keep its result and drop ours.
if ! mv -T "$tmp_dir" "$out_dir" 2>/dev/null; then
  echo "cluster-api: another build finished first; using it"
fi
trap - EXIT
rm -rf "$tmp_dir"
echo "cluster-api: built all in $((SECONDS - total_start)) s into $out_dir ($(du -sh "$bin_dir" | cut -f1))"
echo "$bin_dir"
