#!/bin/sh
# The VM pod's main process. It runs the Node launcher, which prepares the pod (network, DHCP, cloud-init,
# disks) and writes the VmConfig, then replaces itself with Cloud Hypervisor holding only its API socket: once
# CH runs, no Node process is left in the pod, only CH and the tiny native helpers the launcher started
# (dnsmasq, virtiofsd). The launcher's last act is the marker file launcher-done; on it the node daemon waits for the
# socket and sends vm.create and vm.boot.
#
# KUBEVISOR_LAUNCHER  command that runs the launcher (default: the operator image's CLI, `kubevisor launcher`)
# KUBEVISOR_CH        the Cloud Hypervisor binary (default: cloud-hypervisor on PATH); tests name a stand-in
set -eu

# Must equal CH_SOCKET and CH_EVENTS in operator/pod-layout.ts (a unit test compares them).
CH_SOCKET=/var/run/kubevisor/ch.sock
CH_EVENTS=/var/run/kubevisor/ch-events

if [ -n "${KUBEVISOR_LAUNCHER:-}" ]; then
  "$KUBEVISOR_LAUNCHER"
else
  kubevisor launcher
fi

# The event monitor is how the node daemon follows the VM (booted, paused, rebooted, shut down, migrated) without
# polling; CH's own log stays on stderr, in the container log, where the daemon finds a crash's cause.
exec "${KUBEVISOR_CH:-cloud-hypervisor}" --api-socket "path=$CH_SOCKET" --event-monitor "path=$CH_EVENTS"
