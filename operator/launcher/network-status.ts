/**
 * The Multus network-status annotation (downward API → env), which tells the launcher the device behind a Multus
 * link: the SR-IOV VF's PCI address, the vDPA character device, the vhost-user socket (NPWG device-info spec).
 */
import { NETWORK_STATUS_ENV } from '../pod-layout';
import { LaunchError } from './failure';

export interface DeviceInfo {
  readonly type?: string;
  readonly pci?: { readonly 'pci-address'?: string };
  readonly vdpa?: { readonly path?: string; readonly driver?: string; readonly 'pci-address'?: string };
  readonly 'vhost-user'?: { readonly mode?: string; readonly path?: string };
}

export interface NetworkStatusEntry {
  readonly name?: string;
  readonly interface?: string;
  readonly 'device-info'?: DeviceInfo;
}

export function readNetworkStatus(env: NodeJS.ProcessEnv = process.env): readonly NetworkStatusEntry[] {
  const raw = env[NETWORK_STATUS_ENV];
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new LaunchError(`${NETWORK_STATUS_ENV} is not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new LaunchError(`${NETWORK_STATUS_ENV} must be a JSON array of network statuses`);
  return parsed as NetworkStatusEntry[];
}

/** The device-info of a pod link, or a failure naming the interface, the link and what is missing. */
export function deviceInfoFor(
  statuses: readonly NetworkStatusEntry[],
  link: string,
  what: string,
  need: string,
): DeviceInfo {
  const entry = statuses.find((s) => s.interface === link);
  if (!entry) {
    throw new LaunchError(
      `${what}: ${NETWORK_STATUS_ENV} has no entry for link ${link}; the ${need} comes from Multus' network-status (is Multus installed and the network attached?)`,
    );
  }
  const info = entry['device-info'];
  if (!info) {
    throw new LaunchError(
      `${what}: network-status of link ${link} (${entry.name ?? 'unnamed network'}) has no device-info; the ${need} must come from the CNI (does the NetworkAttachmentDefinition use a device plugin that reports it?)`,
    );
  }
  return info;
}

/*
 * The annotation is written by the CNI, but anyone who may edit the pod's annotations could forge it, and the paths
 * end up in the VmConfig that CH opens as root. So each value must have the one shape its device has: a PCI address
 * (the launcher builds the sysfs path from it), a vhost-vdpa character device, an absolute socket path with plain
 * components.
 */
const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;
const VDPA_DEVICE = /^\/dev\/vhost-vdpa-\d{1,5}$/;
const PLAIN_COMPONENT = /^[A-Za-z0-9_.@:+-]+$/;

/** The VF's sysfs path from a checked PCI address. */
export function vfioPath(address: string, what: string, link: string): string {
  const a = address.toLowerCase();
  if (!PCI_ADDRESS.test(a))
    throw new LaunchError(`${what}: device-info of link ${link}: ${address} is not a PCI address`);
  return `/sys/bus/pci/devices/${a}`;
}

export function vdpaDevice(path: string, what: string, link: string): string {
  if (!VDPA_DEVICE.test(path)) {
    throw new LaunchError(
      `${what}: device-info of link ${link}: ${path} is not a vhost-vdpa device (/dev/vhost-vdpa-N)`,
    );
  }
  return path;
}

export function vhostUserSocket(path: string, what: string, link: string): string {
  const parts = path.split('/').slice(1);
  const plain =
    path.startsWith('/') &&
    path.length <= 4096 &&
    parts.length > 0 &&
    parts.every((p) => p !== '.' && p !== '..' && PLAIN_COMPONENT.test(p));
  if (!plain) {
    throw new LaunchError(
      `${what}: device-info of link ${link}: vhost-user path ${JSON.stringify(path)} is not an absolute path of plain names`,
    );
  }
  return path;
}
