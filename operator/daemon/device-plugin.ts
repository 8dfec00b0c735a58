// The node daemon's kubelet device plugins: devices.kubevisor.io/kvm and devices.kubevisor.io/tun, so a VM pod gets
// /dev/kvm and /dev/net/tun by requesting a resource instead of running privileged. Each resource advertises many
// devices (default 1000) that all stand for the same host node, because every VM pod on the node shares it; the
// count only caps how many such pods the node admits.
//
// Parts: device-plugin-server.ts (one plugin: gRPC server + registration, level-triggered), -health.ts (device node
// watch), -watch.ts (inotify on a directory that may come and go), -allocate.ts (the answers), -socket.ts (the
// untrusted plugin directory), -api.ts / -proto.ts / -client.ts (the v1beta1 API).
import path from 'node:path';
import type { BackoffOptions } from '../kube/backoff';
import { silentLogger, type Logger } from '../kube/log';
import { KVM_RESOURCE, TUN_RESOURCE } from '../pod-layout';
import type { DeviceResource } from './device-plugin-allocate';
import { DEFAULT_PLUGIN_DIR } from './device-plugin-api';
import type { DeviceNodeCheck } from './device-plugin-health';
import { DevicePluginServer, type DevicePluginStatus } from './device-plugin-server';
import { watchDirectory } from './device-plugin-watch';

export type { DevicePluginStatus } from './device-plugin-server';
export type { DeviceNodeCheck } from './device-plugin-health';
export { isCharacterDevice } from './device-plugin-health';
export { DEFAULT_PLUGIN_DIR } from './device-plugin-api';

/** Devices advertised per resource unless told otherwise: how many VM pods one node may run. */
export const DEFAULT_DEVICE_COUNT = 1000;
/** Upper bound of deviceCount, keeping a ListAndWatch list well under the message size limit. */
export const MAX_DEVICE_COUNT = 10_000;
/** Retry of a failed serve or Register: 0.5 s doubling to 30 s, with jitter. */
export const DEFAULT_DEVICE_PLUGIN_RETRY: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

export interface DevicePluginsOptions {
  /** The kubelet's device plugin directory; its registration socket is `<pluginDir>/kubelet.sock`. @default /var/lib/kubelet/device-plugins */
  pluginDir?: string;
  /** Where the host's device nodes are: `<devRoot>/kvm`, `<devRoot>/net/tun`. @default /dev */
  devRoot?: string;
  /** Devices advertised per resource (1 … {@link MAX_DEVICE_COUNT}). @default {@link DEFAULT_DEVICE_COUNT} */
  deviceCount?: number;
  logger?: Logger;
  /**
   * Decides whether a device node is usable. @default {@link isCharacterDevice}. Replaceable because creating a
   * character device needs CAP_MKNOD, which tests do not always have.
   */
  checkDeviceNode?: DeviceNodeCheck;
  /** Backoff of serve/Register retries. @default {@link DEFAULT_DEVICE_PLUGIN_RETRY} */
  retry?: BackoffOptions;
}

/** Running device plugins. */
export interface DevicePlugins {
  /** One entry per resource (kvm, then tun), as of now. */
  status(): DevicePluginStatus[];
  /** Calls `listener` after any status change (health, serving, registration, streams); returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  /** Stops serving, closes every watch and timer, removes our sockets. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The resources the daemon serves. Health is checked on the node as this container sees the host's /dev (`devRoot`,
 * e.g. a hostPath mount at /host/dev); the DeviceSpec's host path is the host's own (/dev/kvm), since the container
 * runtime resolves it on the host, not in this container.
 */
export function deviceResources(devRoot = '/dev'): DeviceResource[] {
  const root = path.resolve(devRoot);
  return [
    {
      resourceName: KVM_RESOURCE,
      name: 'kvm',
      watchPath: path.join(root, 'kvm'),
      hostPath: '/dev/kvm',
      containerPath: '/dev/kvm',
      permissions: 'rw',
    },
    {
      resourceName: TUN_RESOURCE,
      name: 'tun',
      watchPath: path.join(root, 'net', 'tun'),
      hostPath: '/dev/net/tun',
      containerPath: '/dev/net/tun',
      permissions: 'rw',
    },
  ];
}

/**
 * Starts the kvm and tun device plugins: each serves on `<pluginDir>/kubevisor-<name>.sock` and registers with the
 * kubelet, again after every kubelet restart. Resolves once each made its first attempt (successful or not: failures
 * are retried in the background and visible in status()).
 */
export async function startDevicePlugins(options: DevicePluginsOptions = {}): Promise<DevicePlugins> {
  const deviceCount = options.deviceCount ?? DEFAULT_DEVICE_COUNT;
  if (!Number.isInteger(deviceCount) || deviceCount < 1 || deviceCount > MAX_DEVICE_COUNT) {
    throw new RangeError(`deviceCount must be an integer from 1 to ${MAX_DEVICE_COUNT}, got ${deviceCount}`);
  }
  const pluginDir = path.resolve(options.pluginDir ?? DEFAULT_PLUGIN_DIR);
  const logger = (options.logger ?? silentLogger).child({ component: 'device-plugin' });
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        logger.error('device plugin status listener failed', { error });
      }
    }
  };

  const servers = deviceResources(options.devRoot).map(
    (resource) =>
      new DevicePluginServer(resource, {
        pluginDir,
        deviceCount,
        logger,
        checkDeviceNode: options.checkDeviceNode,
        retry: options.retry ?? DEFAULT_DEVICE_PLUGIN_RETRY,
        onChange: changed,
      }),
  );
  // One watch for both: any entry created or removed in the directory (kubelet.sock, our sockets) means "look again".
  const dirWatch = watchDirectory(pluginDir, () => servers.forEach((server) => void server.reconcile()), logger);
  logger.info('device plugins starting', { pluginDir, deviceCount });
  await Promise.all(servers.map((server) => server.reconcile()));

  let stopping: Promise<void> | undefined;
  return {
    status: () => servers.map((server) => server.status()),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopping ??= (async () => {
        dirWatch.close();
        await Promise.all(servers.map((server) => server.stop()));
        listeners.clear();
      })();
      return stopping;
    },
  };
}
