/**
 * The Cloud Hypervisor VmConfig of a VM: a pure function of the VirtualMachine and what the launcher prepared in
 * the pod (disk paths, TAPs, passthrough devices, sockets). The node daemon sends it unchanged with `vm.create`.
 *
 * Choices a pod imposes:
 * - serial `Tty`: the guest's ttyS0 goes to CH's stdout, i.e. the container log (`kubectl logs`), with no extra
 *   process or socket to keep; console (virtio hvc0) `Off`, since its default `Tty` would interleave a second
 *   stream into the same log;
 * - every disk says `image_type: Raw`: the launcher only ever hands CH raw images or block devices, and CH's
 *   autodetection is deprecated and blocks writes to sector 0 of images it guessed to be raw;
 * - `boot_vcpus` = `max_vcpus`: guest CPUs are fixed by the spec (no CPU hotplug).
 */
import type { VmInterface } from '../../api';
import { parseQuantity } from '../../api';
import type { DeviceConfig, DiskConfig, FsConfig, NetConfig, VdpaConfig, VmConfig } from '../cloudhypervisor/types';
import { FIRMWARE_PATH, INITRD_PATH, KERNEL_PATH } from '../pod-layout';
import { LaunchError } from './failure';
import type { LaunchVm } from './vm-env';

/** A disk as prepared in the pod. */
export interface PreparedDisk {
  /** Raw image file or block device. */
  readonly path: string;
  /** Attach read-only whatever the spec says (the cloud-init ISO). */
  readonly forceReadOnly?: boolean;
}

/** A guest NIC as prepared in the pod, by binding. */
export type PreparedInterface =
  /** bridge and masquerade: a TAP the node daemon created on a bridge in the pod (operator/netprep); `mtu` is its MTU. */
  | { readonly kind: 'tap'; readonly tap: string; readonly mac: string; readonly mtu: number }
  /** vhostUser: the CNI's socket; `mode` is CH's side of it. */
  | { readonly kind: 'vhostUser'; readonly socket: string; readonly mode: 'Client' | 'Server'; readonly mac: string }
  /** sriov: the VF, passed through with VFIO by its sysfs path. */
  | { readonly kind: 'vfio'; readonly path: string }
  /** vdpa: the vhost-vdpa character device. */
  | { readonly kind: 'vdpa'; readonly path: string };

export interface PreparedVm {
  /** By volume name. */
  readonly disks: Readonly<Record<string, PreparedDisk>>;
  /** By interface name. */
  readonly interfaces: Readonly<Record<string, PreparedInterface>>;
  /** virtiofsd socket by fileSystem (volume) name. */
  readonly fileSystems: Readonly<Record<string, string>>;
  /** With dedicated CPU placement: the host CPU of each vCPU, in vCPU order. */
  readonly vcpuHostCpus?: readonly number[];
}

/** Device ids of interfaces: CH ids are one namespace across device kinds, and volume names may equal network names. */
export const interfaceDeviceId = (name: string) => `net-${name}`;

function bytes(quantity: string, field: string): number {
  const q = parseQuantity(quantity);
  if (q.num % q.den !== 0n) throw new LaunchError(`${field}: ${quantity} is not a whole number of bytes`);
  return Number(q.num / q.den);
}

function prepared<T>(map: Readonly<Record<string, T>>, key: string, field: string, what: string): T {
  const value = map[key];
  if (value === undefined) throw new LaunchError(`${field}: the launcher prepared no ${what} for ${key}`);
  return value;
}

export function buildVmConfig(vm: LaunchVm, ready: PreparedVm): VmConfig {
  const { instance } = vm.spec;
  const sockets = instance.cpu?.sockets ?? 1;
  const cores = instance.cpu?.coresPerSocket ?? 1;
  const vcpus = sockets * cores;

  const config: VmConfig = {
    payload: instance.kernel
      ? {
          kernel: KERNEL_PATH,
          cmdline: instance.kernel.cmdline,
          ...(instance.kernel.initrd ? { initramfs: INITRD_PATH } : {}),
        }
      : { firmware: FIRMWARE_PATH },
    cpus: {
      boot_vcpus: vcpus,
      max_vcpus: vcpus,
      topology: { packages: sockets, dies_per_package: 1, cores_per_die: cores, threads_per_core: 1 },
    },
    memory: { size: bytes(instance.memory?.size ?? '1Gi', 'spec.instance.memory.size') },
    serial: { mode: 'Tty' },
    console: { mode: 'Off' },
    rng: { src: '/dev/urandom' },
  };

  if (instance.cpu?.dedicatedCPUPlacement) {
    const hostCpus = ready.vcpuHostCpus;
    if (!hostCpus || hostCpus.length !== vcpus) {
      throw new LaunchError(
        `spec.instance.cpu.dedicatedCPUPlacement: ${vcpus} vCPUs need ${vcpus} dedicated host CPUs, the launcher found ${hostCpus?.length ?? 0}`,
      );
    }
    config.cpus!.affinity = hostCpus.map((cpu, vcpu) => ({ vcpu, host_cpus: [cpu] }));
  }

  const hugepages = instance.memory?.hugepages;
  if (hugepages) {
    config.memory!.hugepages = true;
    config.memory!.hugepage_size = bytes(hugepages.pageSize ?? '2Mi', 'spec.instance.memory.hugepages.pageSize');
  }
  // vhost-user backends (virtiofsd, a vhost-user NIC) map guest memory, which therefore must be shared.
  if (instance.fileSystems?.length || instance.interfaces?.some((i) => i.vhostUser)) config.memory!.shared = true;

  const disks: DiskConfig[] = (instance.disks ?? []).map((d, i) => {
    const disk = prepared(ready.disks, d.name, `spec.instance.disks[${i}]`, 'disk');
    return { id: d.name, path: disk.path, image_type: 'Raw', readonly: Boolean(disk.forceReadOnly || d.readOnly) };
  });
  if (disks.length) config.disks = disks;

  const net: NetConfig[] = [];
  const devices: DeviceConfig[] = [];
  const vdpa: VdpaConfig[] = [];
  (instance.interfaces ?? []).forEach((iface: VmInterface, i) => {
    const id = interfaceDeviceId(iface.name);
    const nic = prepared(ready.interfaces, iface.name, `spec.instance.interfaces[${i}]`, 'network device');
    switch (nic.kind) {
      case 'tap':
        // No `mtu`: CH would set it on the TAP (SIOCSIFMTU needs CAP_NET_ADMIN, which the pod lacks). The node daemon
        // made the TAP at the link's MTU, and CH reads it from there and tells the guest (VIRTIO_NET_F_MTU).
        net.push({ id, tap: nic.tap, mac: nic.mac });
        break;
      case 'vhostUser':
        net.push({ id, vhost_user: true, vhost_socket: nic.socket, vhost_mode: nic.mode, mac: nic.mac });
        break;
      case 'vfio':
        devices.push({ id, path: nic.path });
        break;
      case 'vdpa':
        vdpa.push({ id, path: nic.path, num_queues: iface.vdpa?.numQueues ?? 1, iommu: iface.vdpa?.iommu ?? false });
        break;
    }
  });
  if (net.length) config.net = net;
  if (devices.length) config.devices = devices;
  if (vdpa.length) config.vdpa = vdpa;

  const fs: FsConfig[] = (instance.fileSystems ?? []).map((f, i) => ({
    id: f.name,
    tag: f.name,
    socket: prepared(ready.fileSystems, f.name, `spec.instance.fileSystems[${i}]`, 'virtiofsd socket'),
    num_queues: 1,
    queue_size: 1024,
  }));
  if (fs.length) config.fs = fs;
  return config;
}
