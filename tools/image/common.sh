# shellcheck shell=bash
# Sourced by tools/image/*.sh: shared helpers.
_kv_dockerfile="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/operator/Dockerfile"

log() { echo "image: $*"; }
fail() {
  echo "image: $*" >&2
  exit 1
}

# dockerfile_arg NAME: the default of `ARG NAME=…` in operator/Dockerfile (quotes removed), so the daemonless build
# takes its suite, packages and versions from the one place that declares them.
dockerfile_arg() {
  local value
  value=$(sed -n "s/^ARG $1=//p" "$_kv_dockerfile" | head -n 1)
  value=${value#\"}
  value=${value%\"}
  [[ -n "$value" ]] || fail "operator/Dockerfile has no ARG $1=…"
  printf '%s\n' "$value"
}

# layer_tar DIR OUT.tar PATH…: an uncompressed layer of PATHs under DIR: sorted, owned by root, every time the last
# commit's (an unchanged tree gives an equal layer).
layer_tar() {
  local dir=$1 tar=$2 epoch
  shift 2
  epoch=$(git -C "$(dirname "$_kv_dockerfile")" log -1 --format=%ct 2>/dev/null || echo 0)
  tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -cf "$tar" "$@"
}

hash_of() { sha256sum | cut -c1-12; }

# remove_tree DIR: removes a build directory even when a killed mmdebstrap left the host's /dev, /proc or /sys mounted
# inside it: unmounts whatever is mounted below DIR (deepest first), then removes only DIR's own file system.
remove_tree() {
  local dir=$1 target
  [[ -d "$dir" ]] || return 0
  dir=$(cd "$dir" && pwd -P)
  while read -r target; do
    umount --lazy "$target" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
  rm -rf --one-file-system "$dir"
}
