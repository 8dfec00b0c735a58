#!/bin/sh
# /usr/local/bin/kubevisor in the operator image (both builds install this file): the one entry point — controller,
# daemon, node-setup and the VM pod's launcher (entrypoint.sh runs `kubevisor launcher`). Node by absolute path, so
# a pod that sets its own PATH still gets the image's runtime.
exec /usr/local/bin/node /usr/lib/kubevisor/lib/operator/cli.js "$@"
