/**
 * The device lists of a VmConfig as the CH stand-in handles them: which `vm.add-*` endpoint feeds which list, the
 * id prefix CH gives a device that came without one, and the device tree `vm.info` reports for a booted VM.
 */
import type { DeviceNode, VmConfig } from '../../operator/cloudhypervisor/types';

/** A device entry of any list; only the id matters here. */
export type Device = { id?: string };

/** A VmConfig device list: its key, CH's id prefix, and whether CH puts the device behind a virtio-pci node. */
export interface DeviceList {
  readonly key: keyof VmConfig;
  readonly prefix: string;
  /** VFIO and vfio-user devices are PCI devices themselves; every other kind is a virtio device. */
  readonly virtio: boolean;
}

/** The lists `vm.remove-device` searches, in the order CH's device manager creates them. */
export const DEVICE_LISTS: readonly DeviceList[] = [
  { key: 'disks', prefix: '_disk', virtio: true },
  { key: 'net', prefix: '_net', virtio: true },
  { key: 'fs', prefix: '_fs', virtio: true },
  { key: 'pmem', prefix: '_pmem', virtio: true },
  { key: 'vdpa', prefix: '_vdpa', virtio: true },
  { key: 'devices', prefix: '_vfio', virtio: false },
  { key: 'user_devices', prefix: '_vfio_user', virtio: false },
  { key: 'generic_vhost_user', prefix: '_generic_vhost_user', virtio: true },
  { key: 'vsock', prefix: '_vsock', virtio: true },
];

/** Each `vm.add-*` endpoint: the list it extends and CH's ApiError text. */
export const ADDERS: Readonly<Record<string, { list: DeviceList; what: string }>> = Object.fromEntries(
  (
    [
      ['vm.add-disk', 'disks', 'The disk could not be added to the VM'],
      ['vm.add-net', 'net', 'The network device could not be added to the VM'],
      ['vm.add-fs', 'fs', 'The fs could not be added to the VM'],
      ['vm.add-pmem', 'pmem', 'The pmem device could not be added to the VM'],
      ['vm.add-vdpa', 'vdpa', 'The vDPA device could not be added to the VM'],
      ['vm.add-device', 'devices', 'The device could not be added to the VM'],
      ['vm.add-user-device', 'user_devices', 'The user device could not be added to the VM'],
      ['vm.add-generic-vhost-user', 'generic_vhost_user', 'The generic vhost-user device could not be added to the VM'],
      ['vm.add-vsock', 'vsock', 'The vsock device could not be added to the VM'],
    ] as const
  ).map(([endpoint, key, what]) => [endpoint, { list: DEVICE_LISTS.find((l) => l.key === key) as DeviceList, what }]),
);

/** The devices of one list (`vsock` is a single object in VmConfig). */
export function devicesOf(config: VmConfig, key: keyof VmConfig): Device[] {
  const value = config[key] as Device | Device[] | undefined;
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The list holding device `id`, if any. */
export function listOf(config: VmConfig, id: string): DeviceList | undefined {
  return DEVICE_LISTS.find(({ key }) => devicesOf(config, key).some((d) => d.id === id));
}

/** The node that carries a device's PCI address: `_virtio-pci-<id>` for a virtio device, the device otherwise. */
export function pciNodeId(list: DeviceList, id: string): string {
  return list.virtio ? `_virtio-pci-${id}` : id;
}

/**
 * `vm.info.device_tree` for the devices with a PCI address. CH puts a virtio device's address on its transport
 * node `_virtio-pci-<id>`, whose child is the `<id>` node (measured on v53.0, reference §14).
 */
export function deviceTree(config: VmConfig, bdfs: ReadonlyMap<string, string>): Record<string, DeviceNode> {
  const tree: Record<string, DeviceNode & { parent?: string }> = {};
  for (const [id, bdf] of bdfs) {
    const list = listOf(config, id);
    if (!list) continue;
    const pci = pciNodeId(list, id);
    if (pci === id) {
      tree[id] = { id, resources: [], children: [], pci_bdf: bdf };
      continue;
    }
    tree[pci] = { id: pci, resources: [], children: [id], pci_bdf: bdf };
    tree[id] = { id, resources: [], parent: pci, children: [] };
  }
  return tree;
}
