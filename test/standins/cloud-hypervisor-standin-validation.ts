/**
 * The semantic checks CH's `VmConfig::validate` runs (at `vm.boot`, and on every `vm.add-*` against the config with
 * the new device added) that a JSON schema cannot express. Only the checks a kubevisor-built config can plausibly
 * trip are modelled; their messages are CH's `ValidationError` texts (vmm/src/config.rs at the reference's
 * baseline). v53.0 answers every one of them with 500 (reference/cloud-hypervisor.md §14).
 *
 * Not checked here, because v53.0 does not reject them at validation: two disks on one image (the image lock
 * fails when the devices are created, see cloud-hypervisor-standin-resources.ts) and a serial port in `File` mode
 * without a file (CH's VMM thread panics, see cloud-hypervisor-standin-vmm.ts).
 */
import type { VmConfig } from '../../operator/cloudhypervisor/types';

function usesSharedMemory(config: VmConfig): boolean {
  return Boolean(config.memory?.shared || config.memory?.hugepages);
}

/** Ids of every device that can carry one, in the order CH's device manager creates them. */
function deviceIds(config: VmConfig): string[] {
  const lists: ({ id?: string } | undefined)[][] = [
    config.disks ?? [],
    config.net ?? [],
    config.fs ?? [],
    config.pmem ?? [],
    config.vdpa ?? [],
    config.devices ?? [],
    config.user_devices ?? [],
    [config.vsock],
  ];
  return lists.flat().flatMap((d) => (d?.id ? [d.id] : []));
}

/** CH's validation error for `config` (e.g. `Identifier _disk1 is not unique`), or `undefined` when it is valid. */
export function validateVmConfig(config: VmConfig): string | undefined {
  // `vm.create` accepts a config without payload (reference §14); it is then not bootable.
  const payload = config.payload ?? {};
  // CH: ValidationError::PayloadError — no kernel, firmware or IGVM, or firmware together with a kernel.
  if (!(payload.kernel || payload.firmware || payload.igvm) || (payload.kernel && payload.firmware)) {
    return 'Payload configuration is not bootable';
  }
  const bootVcpus = config.cpus?.boot_vcpus ?? 1;
  if (config.cpus && config.cpus.max_vcpus < config.cpus.boot_vcpus) return 'Max CPUs lower than boot CPUs';
  if (config.console?.mode === 'File' && !config.console.file) return 'Path missing when using file console mode';
  for (const console of [config.serial, config.console]) {
    if (console?.mode === 'Socket' && !console.socket) return 'Path missing when using socket console mode';
  }
  if (config.memory?.hugepage_size !== undefined && !config.memory.hugepages) {
    return 'Huge page size specified but huge pages not enabled';
  }
  for (const disk of config.disks ?? []) {
    if (disk.vhost_socket && disk.path) return 'Disk path and vhost socket both provided';
    if (disk.vhost_user && !disk.vhost_socket) return 'No socket provided when using vhost-user';
    if (disk.vhost_user && !usesSharedMemory(config)) {
      return 'Using vhost-user requires using shared memory or huge pages';
    }
    if ((disk.num_queues ?? 1) > bootVcpus) return 'Number of vCPUs is insufficient for number of queues';
  }
  for (const net of config.net ?? []) {
    const queues = net.num_queues ?? 2;
    if (queues < 2) return 'Number of queues to virtio_net less than 2';
    if (queues / 2 > bootVcpus) return 'Number of vCPUs is insufficient for number of queues';
    if (net.mtu !== undefined && net.mtu < 1280) {
      return `Provided MTU ${net.mtu} is lower than 1280 (expected by VIRTIO specification)`;
    }
    if ((net.offload_tso ?? true) || (net.offload_ufo ?? true)) {
      if (net.offload_csum === false) return '"offload_tso" and "offload_ufo" depend on "offload_csum"';
    }
    if (net.vhost_user && !net.vhost_socket) return 'No socket provided when using vhost-user';
    if (net.vhost_user && !usesSharedMemory(config)) {
      return 'Using vhost-user requires using shared memory or huge pages';
    }
  }
  // virtio-fs and generic vhost-user devices are vhost-user backends too (reference §6, memory).
  if (((config.fs?.length ?? 0) > 0 || (config.generic_vhost_user?.length ?? 0) > 0) && !usesSharedMemory(config)) {
    return 'Using vhost-user requires using shared memory or huge pages';
  }
  if ((config.user_devices?.length ?? 0) > 0 && !usesSharedMemory(config)) {
    return 'Using user devices requires using shared memory or huge pages';
  }
  if (config.balloon && config.memory && config.balloon.size > config.memory.size) {
    // "Ballon" is CH's own spelling.
    return `Ballon size (${config.balloon.size}) greater than RAM (${config.memory.size})`;
  }
  const seen = new Set<string>();
  for (const id of deviceIds(config)) {
    if (seen.has(id)) return `Identifier ${id} is not unique`;
    seen.add(id);
  }
  return undefined;
}
