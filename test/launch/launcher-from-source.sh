#!/bin/sh
# Runs the launcher from its TypeScript source, where the operator image runs `kubevisor launcher` (tests set
# KUBEVISOR_LAUNCHER to this file).
root=$(cd "$(dirname "$0")/../.." && pwd)
exec node --import "$root/node_modules/tsx/dist/loader.mjs" "$root/operator/launcher/main.ts" "$@"
