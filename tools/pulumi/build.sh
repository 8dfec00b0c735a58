#!/usr/bin/env bash
# Builds a real Pulumi engine for the e2e suite — the Pulumi CLI and the Kubernetes resource provider
# (test/e2e/harness/pulumi-engine.ts) — from the pinned Go modules next to this script, once, into a
# cache outside the repo:
#
#   ${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}/pulumi/<pulumi>-<provider>-<hash>/bin/{pulumi,pulumi-resource-kubernetes}
#
# <hash> covers the wrapper modules (go.mod, go.sum, main.go) and this script, so any pin or flag
# change builds a new directory. The build goes to a temporary sibling directory that is renamed into
# place only when both binaries are built, so an interrupted build never leaves a half cache. Beside
# bin/ it writes versions.txt.
#
# Usage: build.sh                  build if needed; the last line of output is the bin dir
#        build.sh --print-bin-dir  print the bin dir if it is built, else fail (never builds; alias --print-dir)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
cache_root="${KUBEVISOR_CACHE:-$HOME/.cache/kubevisor}"

# Versions are read from the go.mod files so they are pinned in exactly one place.
module_version() { # <dir> <module path>; a require block line or a one-line `require M V`
  awk -v m="$2" '$1 == "require" { $1 = ""; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$here/$1/go.mod"
}
pulumi_version="$(module_version cli github.com/pulumi/pulumi/pkg/v3)"
provider_module_version="$(module_version kubernetes-provider github.com/pulumi/pulumi-kubernetes/provider/v4)"
for v in "$pulumi_version" "$provider_module_version"; do
  [[ -n "$v" ]] || { echo "pulumi: cannot read a pinned version from $here/*/go.mod" >&2; exit 1; }
done

# The provider module is served only at a pseudo-version, so the release it stands for is named
# here. The engine loads the plugin by the version the @pulumi/kubernetes SDK asks for, so the label
# must be that package's version: a bump of the SDK in package.json must move this pin too.
provider_version=4.34.2
sdk_version="$(awk '/"devDependencies"/ { d = 1 } d && /"@pulumi\/kubernetes"/ { gsub(/[",]/, "", $2); print $2; exit }' \
  "$repo_root/package.json")"
if [[ "$sdk_version" != "$provider_version" ]]; then
  echo "pulumi: package.json has @pulumi/kubernetes ${sdk_version:-(none)} but $0 builds the provider" \
    "as $provider_version; move the provider pin (kubernetes-provider/go.mod and provider_version) with it" >&2
  exit 1
fi

inputs_hash="$(cd "$here" && cat build.sh cli/go.mod cli/go.sum kubernetes-provider/go.mod kubernetes-provider/go.sum \
  kubernetes-provider/main.go | sha256sum | cut -c1-12)"
out_dir="$cache_root/pulumi/${pulumi_version}-v${provider_version}-${inputs_hash}"
bin_dir="$out_dir/bin"

if [[ "${1:-}" == "--print-bin-dir" || "${1:-}" == "--print-dir" ]]; then
  [[ -d "$bin_dir" ]] || { echo "pulumi: not built yet; run npm run pulumi:build" >&2; exit 1; }
  echo "$bin_dir"
  exit 0
fi

if [[ -d "$bin_dir" ]]; then
  echo "pulumi: cached at $out_dir"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "pulumi: go is not on PATH" >&2; exit 1; }

# The same Go settings as tools/control-plane/build.sh, and the same compile cache: never download
# another toolchain; the committed go.mod/go.sum are the pins and a build never edits them; Go's
# compile cache lives beside the binaries (one directory for CI to cache) unless the caller chose one.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOCACHE="${GOCACHE:-$cache_root/go-build}"
# Static binaries, as upstream releases both.
export CGO_ENABLED=0

mkdir -p "$cache_root/pulumi"
tmp_dir="$(mktemp -d "$cache_root/pulumi/.building-XXXXXX")"
trap 'rm -rf "$tmp_dir"' EXIT
chmod 755 "$tmp_dir" # mktemp made it private; the binaries are not secret
mkdir -p "$tmp_dir/bin"

build() { # <module dir> <package> <binary> <version> [extra ldflags]
  local start=$SECONDS
  (cd "$1" && go build -trimpath -ldflags="-s -w ${5:-}" -o "$tmp_dir/bin/$3" "$2")
  echo "pulumi: built $3 $4 in $((SECONDS - start)) s ($(du -h "$tmp_dir/bin/$3" | cut -f1))"
}

total_start=$SECONDS

# The Automation API reads the CLI's version and refuses one older than the SDK needs; unstamped,
# the CLI reports none.
build "$here/cli" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi pulumi "$pulumi_version" \
  "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version"

# Upstream's provider main package embeds schema-embed.json and terraform-mapping-embed.json, which
# its generate.go writes from the schema.json and terraform-mapping.json beside it (stamping the
# schema with the release version) and which are therefore not in the module zip. Do what upstream's
# release build does, in a copy of our wrapper module: put those inputs and generate.go beside
# main.go, run generate.go there, build.
provider_src="$tmp_dir/src/kubernetes-provider"
mkdir -p "$provider_src"
cp "$here/kubernetes-provider/go.mod" "$here/kubernetes-provider/go.sum" "$here/kubernetes-provider/main.go" "$provider_src/"
# `go mod download` (not `go list -m`, which names no directory for a module not downloaded yet: a cold cache).
provider_dir="$(cd "$here/kubernetes-provider" && go mod download -json github.com/pulumi/pulumi-kubernetes/provider/v4 |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -n "$provider_dir" && -d "$provider_dir/cmd/pulumi-resource-kubernetes" ]] || {
  echo "pulumi: cannot find the provider module's source (go mod download gave '$provider_dir')" >&2
  exit 1
}
for f in generate.go schema.json terraform-mapping.json; do
  cp "$provider_dir/cmd/pulumi-resource-kubernetes/$f" "$provider_src/"
done
chmod u+w "$provider_src"/* # the module cache is read-only, and so would the copies be
start=$SECONDS
(cd "$provider_src" && VERSION="$provider_version" go run generate.go)
echo "pulumi: generated the provider's embedded schema ($provider_version) in $((SECONDS - start)) s"
build "$provider_src" . pulumi-resource-kubernetes "$provider_version ($provider_module_version)" \
  "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$provider_version"
rm -rf "$tmp_dir/src"

printf 'pulumi %s\nkubernetes %s\nkubernetes-module %s\ngo %s\n' "$pulumi_version" "$provider_version" \
  "$provider_module_version" "$(go env GOVERSION)" >"$tmp_dir/versions.txt"
# rename(2) is atomic; if a concurrent build won the race, keep its result and drop ours.
if ! mv -T "$tmp_dir" "$out_dir" 2>/dev/null; then
  echo "pulumi: another build finished first; using it"
fi
trap - EXIT
rm -rf "$tmp_dir"
echo "pulumi: built all in $((SECONDS - total_start)) s into $out_dir ($(du -sh "$bin_dir" | cut -f1))"
echo "$bin_dir"
