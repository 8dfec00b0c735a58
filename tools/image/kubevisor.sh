#!/bin/sh
# /usr/local/bin/kubevisor in the operator image (both builds install this file): the one entry point — controller,
# daemon, node-setup and the VM pod's launcher (entrypoint.sh runs `kubevisor launcher`). Node by absolute path, so
# a pod that sets its own PATH still gets the image's runtime.
#
# The controller's Node flags (bench/density.ts reads them from this line, so it runs what the image runs). Under a
# burst of 1000 VMs the live heap stays ~30 MB, but V8 sizes the heap from the host's memory, not the container's:
# it grows large semi-spaces (young generation) and lets old space grow lazily. Measured peak RSS at
# `npm run bench:density -- --vms 1000 --nodes 100`: no flags 176 MB; --max-semi-space-size=4 140-150 MB; with
# --max-old-space-size=256 too, 116 MB. 256 MB of old space is ~8x the live heap at that size and well inside the
# Deployment's 512 MiB limit.
CONTROLLER_NODE_FLAGS="--max-semi-space-size=4 --max-old-space-size=256"
if [ "$1" = controller ]; then
  # shellcheck disable=SC2086 # the flags are words
  exec /usr/local/bin/node $CONTROLLER_NODE_FLAGS /usr/lib/kubevisor/lib/operator/cli.js "$@"
fi
exec /usr/local/bin/node /usr/lib/kubevisor/lib/operator/cli.js "$@"
