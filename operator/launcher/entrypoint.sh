#!/bin/sh
# The VM pod's main process. It runs the Node launcher, which prepares the pod (network, DHCP, cloud-init,
# disks) and writes the VmConfig, then replaces itself with Cloud Hypervisor holding only its API socket: once
# CH runs, no Node process is left in the pod, only CH and the tiny native helpers the launcher started
# (dnsmasq, virtiofsd). The node daemon then sends vm.create and vm.boot through the socket.
#
# KUBEVISOR_LAUNCHER  command that runs the launcher (default: the operator image's CLI, `kubevisor launcher`)
# KUBEVISOR_CH        the Cloud Hypervisor binary (default: cloud-hypervisor on PATH); tests name a stand-in
set -eu

# Must equal CH_SOCKET in operator/pod-layout.ts (a unit test compares them).
CH_SOCKET=/var/run/kubevisor/ch.sock

if [ -n "${KUBEVISOR_LAUNCHER:-}" ]; then
  "$KUBEVISOR_LAUNCHER"
else
  kubevisor launcher
fi

exec "${KUBEVISOR_CH:-cloud-hypervisor}" --api-socket "path=$CH_SOCKET"
