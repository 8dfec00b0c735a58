/**
 * The host resources a VM's devices and payload need, opened the way Cloud Hypervisor opens them when it creates
 * the VM (reference/cloud-hypervisor.md §14, measured on v53.0):
 * - a missing disk image, pmem file, vdpa device, kernel, initramfs or firmware fails `vm.boot` with 500 at once;
 * - two disks on one image fail too: CH locks every image (a write lock, or a read lock for a read-only disk);
 * - a vhost-user backend CH connects to as the client (virtio-fs, vhost-user-blk, vhost-user-net in `Client`
 *   mode, generic vhost-user) is retried for ≈60 s before the boot fails; CH's single control thread is busy all
 *   that time. Once connected, the connection stays open while the VM lives (a virtiofsd exits when it closes).
 *
 * Paths in a VmConfig are paths inside the VM pod; `resolvePath` turns each into the path the stand-in can open,
 * emulating the container's mount table when the stand-in runs on the host.
 *
 * The texts of the chains are CH's error texts where the failing call is known (`Cannot open kernel file`,
 * `Error from device manager`, Rust's `No such file or directory (os error 2)`); where CH's innermost wording
 * depends on code the stand-in cannot follow (image locks, vhost-user retries) they are the stand-in's own.
 * Not modelled: TAP devices, VFIO and vfio-user devices, vhost-user-net in `Server` mode, serial/console files
 * and sockets.
 */
import { statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmConfig } from '../../operator/cloudhypervisor/types';

export interface HostResourceOptions {
  /** Maps a path inside the VM pod to the path the stand-in opens. */
  readonly resolvePath: (pathInPod: string) => string;
  /** How long a missing vhost-user backend is retried. */
  readonly vhostUserWaitMs: number;
  /** Aborts a wait when the stand-in stops. */
  readonly signal: AbortSignal;
}

/** What one device holds on the host while the VM lives. */
export interface HeldResource {
  /** The image lock of a disk: exclusive for a writable disk, shared for a read-only one. */
  readonly lock?: { readonly path: string; readonly exclusive: boolean };
  /** The open connection to a vhost-user backend. */
  readonly backend?: Socket;
}

/** What a VM holds, by device id (devices are named before they are created). */
export type HeldResources = Map<string, HeldResource>;

/** Either the resources were taken (and added to the holder), or CH's chain below the top-level error. */
export type Opening = { readonly ok: true } | { readonly ok: false; readonly chain: string[] };

/** The device lists whose resources CH opens when it creates a device. */
export type DeviceConfigs = Pick<VmConfig, 'disks' | 'net' | 'fs' | 'pmem' | 'vdpa' | 'generic_vhost_user'>;

const OS_ERRORS: Readonly<Record<string, readonly [number, string]>> = {
  ENOENT: [2, 'No such file or directory'],
  EACCES: [13, 'Permission denied'],
  ENOTDIR: [20, 'Not a directory'],
  ELOOP: [40, 'Too many levels of symbolic links'],
  ECONNREFUSED: [111, 'Connection refused'],
  ENOTSOCK: [88, 'Socket operation on non-socket'],
};

/** An errno as Rust's `io::Error` displays it, e.g. `No such file or directory (os error 2)`. */
function ioError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const known = code ? OS_ERRORS[code] : undefined;
  return known ? `${known[1]} (os error ${known[0]})` : (error as Error).message;
}

/** `undefined` when the path exists, otherwise Rust's text for the error. */
function missing(path: string): string | undefined {
  try {
    statSync(path);
    return undefined;
  } catch (error) {
    return ioError(error);
  }
}

function connectOnce(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      // The backend may talk or hang up; neither concerns the stand-in, but an unhandled error would crash it.
      socket.on('error', () => undefined);
      socket.resume();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function describeWait(ms: number): string {
  return ms === 60_000 ? '1 minute' : `${ms} ms`;
}

/** Connects to a vhost-user backend, retrying every 100 ms for `vhostUserWaitMs` as CH does. */
async function connectBackend(path: string, options: HostResourceOptions): Promise<Socket | string> {
  const deadline = Date.now() + options.vhostUserWaitMs;
  for (;;) {
    if (options.signal.aborted) return 'stand-in stopped';
    let failure: string;
    try {
      return await connectOnce(path);
    } catch (error) {
      failure = ioError(error);
    }
    const left = deadline - Date.now();
    if (left <= 0)
      return `Failed connecting the backend after trying for ${describeWait(options.vhostUserWaitMs)}: ${failure}`;
    await sleep(Math.min(100, left), undefined, { signal: options.signal }).catch(() => undefined);
  }
}

/**
 * Opens the resources of `devices` (every device named) in CH's device-creation order and adds them to `held`;
 * on failure releases what this call took and answers the chain. When hot-plugging, `held` already holds the VM's
 * other devices, whose image locks a new disk must respect.
 */
export async function openDevices(
  devices: DeviceConfigs,
  held: HeldResources,
  options: HostResourceOptions,
): Promise<Opening> {
  const taken = new Map<string, HeldResource>();
  const fail = (chain: string[]): Opening => {
    for (const { backend } of taken.values()) backend?.destroy();
    return { ok: false, chain: ['Error from device manager', ...chain] };
  };
  const backend = async (id: string | undefined, path: string, what: string): Promise<string[] | undefined> => {
    const connected = await connectBackend(options.resolvePath(path), options);
    if (typeof connected === 'string') return [what, connected];
    taken.set(id ?? '', { backend: connected });
    return undefined;
  };

  for (const disk of devices.disks ?? []) {
    if (disk.vhost_user) {
      const failed = await backend(disk.id, disk.vhost_socket ?? '', 'Cannot create vhost-user-blk device');
      if (failed) return fail(failed);
      continue;
    }
    if (disk.path === undefined) continue;
    const path = options.resolvePath(disk.path);
    const absent = missing(path);
    if (absent) return fail(['Cannot open disk path', absent]);
    const exclusive = !disk.readonly;
    for (const { lock } of [...held.values(), ...taken.values()]) {
      if (lock?.path === path && (lock.exclusive || exclusive)) {
        return fail(['Failed to lock the disk image', 'The image is already locked by another disk (stand-in)']);
      }
    }
    taken.set(disk.id ?? '', { lock: { path, exclusive } });
  }
  for (const net of devices.net ?? []) {
    // In Server mode CH listens for the backend instead; not modelled.
    if (!net.vhost_user || (net.vhost_mode ?? 'Client') !== 'Client') continue;
    const failed = await backend(net.id, net.vhost_socket ?? '', 'Cannot create vhost-user-net device');
    if (failed) return fail(failed);
  }
  for (const fs of devices.fs ?? []) {
    const failed = await backend(fs.id, fs.socket, 'Cannot create virtio-fs device');
    if (failed) return fail(failed);
  }
  for (const pmem of devices.pmem ?? []) {
    const absent = missing(options.resolvePath(pmem.file));
    if (absent) return fail(['Cannot open persistent memory file', absent]);
  }
  for (const vdpa of devices.vdpa ?? []) {
    const absent = missing(options.resolvePath(vdpa.path));
    if (absent) return fail(['Cannot create vDPA device', absent]);
  }
  for (const device of devices.generic_vhost_user ?? []) {
    const id = (device as { id?: string }).id;
    const failed = await backend(id, device.socket, 'Cannot create generic vhost-user device');
    if (failed) return fail(failed);
  }
  for (const [id, resource] of taken) held.set(id, resource);
  return { ok: true };
}

/**
 * The boot payload's files, loaded after the devices are created (CH joins its payload-loading thread at boot):
 * `undefined` when all exist, otherwise CH's chain below "The VM could not boot".
 */
export function missingPayload(
  config: VmConfig,
  options: Pick<HostResourceOptions, 'resolvePath'>,
): string[] | undefined {
  const payload = config.payload ?? {};
  const files: [string | undefined, string][] = [
    [payload.firmware, 'Error manipulating firmware file'],
    [payload.kernel, 'Cannot open kernel file'],
    [payload.igvm, 'Cannot open igvm file'],
    // CH drops initramfs and cmdline when booting firmware (reference §8).
    [payload.firmware ? undefined : payload.initramfs, 'Cannot open initramfs file'],
  ];
  for (const [path, what] of files) {
    if (path === undefined) continue;
    const absent = missing(options.resolvePath(path));
    if (absent) return [what, absent];
  }
  return undefined;
}

/** Gives back what one device held (hot-unplug). */
export function releaseDevice(held: HeldResources, id: string): void {
  held.get(id)?.backend?.destroy();
  held.delete(id);
}

/** Gives back what a VM held (VM shut down, deleted, migrated away, or the VMM exits). */
export function releaseResources(held: HeldResources): void {
  for (const id of [...held.keys()]) releaseDevice(held, id);
}
