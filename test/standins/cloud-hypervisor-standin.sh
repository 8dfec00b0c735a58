#!/bin/sh
# Execs the Cloud Hypervisor stand-in where a VM pod execs the native `cloud-hypervisor` binary (tests set
# KUBEVISOR_CH to this file). The stand-in is a Node process; its command line names
# cloud-hypervisor-standin-main.ts, which is how a process census tells it apart from the launcher.
root=$(cd "$(dirname "$0")/../.." && pwd)
exec node --import "$root/node_modules/tsx/dist/loader.mjs" "$root/test/standins/cloud-hypervisor-standin-main.ts" "$@"
