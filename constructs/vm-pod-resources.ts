/**
 * What a VM pod asks of its node: the launcher container's requests and limits (guest memory and the VMM's overhead,
 * hugepages, dedicated CPUs, the KVM and TUN devices, ephemeral storage for its disks) with the user's `resources` on
 * top, the size limit of every emptyDir, and the init containers' bounds.
 */
import type { VirtualMachineSpec, VmVolume } from '../api';
import { parseQuantity } from '../api';
import { formatBytes } from '../api/cel/quantity';
import type { Quantity } from '../api/cel/quantity';
import { KVM_RESOURCE, TUN_RESOURCE } from '../operator/pod-layout';

/** A resource list as it goes into the pod (quantities as strings). */
export type ResourceList = Record<string, string>;

/**
 * The VMM's memory overhead model, documented in the README: what the pod holds beyond guest RAM. Set from
 * measurements (CHANGELOG 0.1.0; the real-node e2e suite prints the pod's figures on every run): a real Cloud
 * Hypervisor v53.0 with a 1 GiB guest holds 9.7 MiB RSS; in a VM pod on a real kubelet dnsmasq holds 2.0 MiB and the
 * pause process 2.1 MiB (file pages counted in full, as a pod may be the first to read them), the cloud-init tmpfs
 * 0.4 MiB (at most its 8 MiB limit, which cannot be reclaimed), kernel memory 5.1 MiB; the launcher leaves nothing
 * (it execs CH). The page cache of what the pod writes (kernel, initramfs, disks: 17 MiB with the test guest) is
 * reclaimed before the pod would be OOM-killed, so it needs no reserve of its own.
 */
export const OVERHEAD = {
  /**
   * Cloud Hypervisor, dnsmasq, the pause process, the cloud-init tmpfs and kernel memory: 27 MiB at worst by the
   * figures above (19 MiB as measured), with the rest as margin.
   */
  baseBytes: 40n * 1024n * 1024n,
  /** Per vCPU thread (stacks, KVM run structures). */
  perVcpuBytes: 4n * 1024n * 1024n,
  /**
   * Page tables grow with guest memory: 4 KiB pages take 2 MiB of page tables per GiB in the VMM's mapping and as
   * much again in KVM's EPT, both charged to the pod: 1/256 of guest memory.
   */
  guestMemoryDivisor: 256n,
  /**
   * The least memory the container gets: before Cloud Hypervisor replaces it, the launcher (Node.js) runs in the
   * same container, beside dnsmasq. Measured on a real kubelet: launcher peak RSS 67 MiB (it logs
   * `launcher: ready in … (peak RSS N MiB)`), dnsmasq 2 MiB, the cloud-init tmpfs at most 8 MiB, kernel memory 5 MiB:
   * 82 MiB, with the rest as margin; the real-node e2e suite checks it. It matters where memory carries only the
   * overhead (hugepages) and for tiny guests.
   */
  minimumBytes: 128n * 1024n * 1024n,
} as const;

/**
 * Size limits of the VM pod's emptyDirs. Disk-backed ones count against the node's ephemeral storage, which the
 * launcher requests in full, so the scheduler places a pod only where its disks fit; past a limit the kubelet evicts
 * the pod rather than let it fill the node.
 */
export const EMPTY_DIR_LIMITS = {
  /** The launcher's files, CH's socket and event monitor (which grows while the guest lives), dnsmasq's leases. */
  run: '64Mi',
  /** A static busybox (about 1 MiB). */
  tools: '16Mi',
  /** The kernel copied out of the kernel image: an uncompressed vmlinux, with room for debug symbols. */
  kernel: '256Mi',
  /** tmpfs for the node daemon's hot-plug bind mounts: holds mount points only. */
  hotplug: '1Mi',
  /**
   * tmpfs for cloud-init: staged user-data and network-config (each at most a 1 MiB Secret) and the ISO made of them.
   * Memory, not disk, so the plaintext never reaches the node's disk.
   */
  cloudInit: '8Mi',
} as const;

const vcpus = (spec: VirtualMachineSpec) =>
  (spec.instance.cpu?.sockets ?? 1) * (spec.instance.cpu?.coresPerSocket ?? 1);
const guestBytes = (spec: VirtualMachineSpec) => parseQuantity(spec.instance.memory?.size ?? '1Gi').num;
const bytes = (q: string) => {
  const { num, den } = parseQuantity(q);
  return num / den;
};

/** Bytes of memory the pod needs besides guest RAM. */
export function overheadBytes(spec: VirtualMachineSpec): bigint {
  return (
    OVERHEAD.baseBytes + OVERHEAD.perVcpuBytes * BigInt(vcpus(spec)) + guestBytes(spec) / OVERHEAD.guestMemoryDivisor
  );
}

/**
 * The emptyDir size limit of a containerDisk or containerRootfs volume. A containerDisk may use its `maxSize` (the
 * copied image, its raw conversion, the guest's writes). A containerRootfs holds the image's files twice while the
 * ext4 image is built (unpacked tree + image; the tar goes first), and the image, up to `size`, afterwards.
 */
export function volumeSizeLimit(v: VmVolume): string | undefined {
  if (v.containerDisk) return v.containerDisk.maxSize ?? '10Gi';
  if (v.containerRootfs) return formatBytes(2n * bytes(v.containerRootfs.size));
  return undefined;
}

/** The ephemeral storage the VM pod's disk-backed emptyDirs may hold: the sum of their size limits. */
export function ephemeralStorageBytes(spec: VirtualMachineSpec): bigint {
  const limits: string[] = [EMPTY_DIR_LIMITS.run, EMPTY_DIR_LIMITS.tools];
  if (spec.instance.kernel) limits.push(EMPTY_DIR_LIMITS.kernel);
  for (const v of spec.volumes ?? []) {
    const limit = volumeSizeLimit(v);
    if (limit) limits.push(limit);
  }
  return limits.reduce((sum, q) => sum + bytes(q), 0n);
}

/** Resources measured in bytes, written with binary suffixes. */
const isBytes = (resource: string) =>
  resource === 'memory' || resource === 'ephemeral-storage' || resource.startsWith('hugepages-');

/** a + b as a canonical quantity: bytes with binary suffixes, anything else in whole units or milli-units. */
export function addQuantities(resource: string, a: string | number, b: string | number): string {
  const x: Quantity = parseQuantity(a);
  const y: Quantity = parseQuantity(b);
  const num = x.num * y.den + y.num * x.den;
  const den = x.den * y.den;
  if (num % den === 0n) return isBytes(resource) ? formatBytes(num / den) : String(num / den);
  // Kubernetes keeps at most nano precision; a fractional sum is written in milli-units when that is exact.
  if ((num * 1000n) % den === 0n) return `${(num * 1000n) / den}m`;
  return `${(num * 1_000_000_000n) / den}n`;
}

/**
 * The launcher container's resources. kubevisor computes what the VM needs — guest memory plus overhead on `memory`
 * (with hugepages: guest memory on `hugepages-<size>`, only the overhead on `memory`), the KVM and TUN devices, one
 * device per Multus network resource, `ephemeral-storage` for the pod's disks, and with dedicated CPUs whole CPUs —
 * and the user's `resources` are added on top: they can reserve more, never less. A user limit is likewise added to
 * the computed amount, so no limit falls below its request. Two values are exact rather than added, because the API
 * rules make them equal to the computed ones already: `hugepages-<size>` and, with dedicated CPUs, `cpu`. With
 * dedicated CPUs, memory limit = request (Guaranteed QoS, which the static CPU manager needs).
 */
export function vmPodResources(
  spec: VirtualMachineSpec,
  networkResources: readonly string[] = [],
): { requests: ResourceList; limits: ResourceList } {
  const computed: ResourceList = {};
  const exact: ResourceList = {};
  const hugepages = spec.instance.memory?.hugepages;
  const memory = overheadBytes(spec) + (hugepages ? 0n : guestBytes(spec));
  computed.memory = formatBytes(memory > OVERHEAD.minimumBytes ? memory : OVERHEAD.minimumBytes);
  computed['ephemeral-storage'] = formatBytes(ephemeralStorageBytes(spec));
  if (hugepages) exact[`hugepages-${hugepages.pageSize ?? '2Mi'}`] = spec.instance.memory?.size ?? '1Gi';
  const dedicated = spec.instance.cpu?.dedicatedCPUPlacement === true;
  if (dedicated) exact.cpu = String(vcpus(spec));
  for (const r of [KVM_RESOURCE, TUN_RESOURCE, ...networkResources]) {
    computed[r] = String(Number(computed[r] ?? 0) + 1);
  }

  const userRequests = stringify(spec.resources?.requests);
  const userLimits = stringify(spec.resources?.limits);
  const requests: ResourceList = { ...userRequests };
  const limits: ResourceList = { ...userLimits };
  for (const [r, q] of Object.entries(computed)) {
    requests[r] = userRequests[r] !== undefined ? addQuantities(r, q, userRequests[r]) : q;
    if (userLimits[r] !== undefined) limits[r] = addQuantities(r, q, userLimits[r]);
  }
  Object.assign(requests, exact);
  Object.assign(limits, exact);
  // Devices are counted, never shared: their limit is their request.
  for (const r of [KVM_RESOURCE, TUN_RESOURCE, ...networkResources]) limits[r] = requests[r];
  if (dedicated) {
    // Guaranteed QoS needs memory limit = request; a user limit above the request raises both.
    const memory = limits.memory ?? requests.memory;
    requests.memory = memory;
    limits.memory = memory;
  }
  return { requests, limits };
}

function stringify(list: Readonly<Record<string, string | number>> | undefined): ResourceList {
  return Object.fromEntries(Object.entries(list ?? {}).map(([k, v]) => [k, String(v)]));
}

/**
 * Bounds of an init container. They copy and convert images, which takes little memory (the page cache they fill is
 * reclaimable) and at most one CPU. With dedicated CPUs the pod must be Guaranteed, so every container, init
 * containers included, has requests = limits.
 */
export function initContainerResources(spec: VirtualMachineSpec): { requests: ResourceList; limits: ResourceList } {
  const limits = { cpu: '1', memory: '256Mi' };
  const guaranteed = spec.instance.cpu?.dedicatedCPUPlacement === true;
  return { requests: guaranteed ? { ...limits } : { cpu: '100m', memory: '256Mi' }, limits };
}
