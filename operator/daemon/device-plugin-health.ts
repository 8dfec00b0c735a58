// Health of a host device node (/dev/kvm, /dev/net/tun): healthy exactly while the node exists and is a character
// device. Watched, not polled: inotify on the node's directory says when to look again (device-plugin-watch.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../kube/log';
import { watchDirectory, type DirectoryWatch } from './device-plugin-watch';

/** Decides whether the device node at `hostPath` is usable. */
export type DeviceNodeCheck = (hostPath: string) => boolean;

/**
 * The real check: a character device, looked at with lstat. A symlink does not count, because the container
 * runtime reads the DeviceSpec's host path the same way (containerd's DeviceFromPath uses lstat) and would refuse it.
 */
export const isCharacterDevice: DeviceNodeCheck = (hostPath) => {
  try {
    return fs.lstatSync(hostPath).isCharacterDevice();
  } catch {
    return false;
  }
};

/** How a {@link DeviceNodeHealth} looks at the node and whom it tells. */
export interface DeviceNodeHealthOptions {
  /** @default isCharacterDevice */
  check?: DeviceNodeCheck;
  logger: Logger;
  /** Called with the new value each time health flips. */
  onChange: (healthy: boolean) => void;
}

/** Tracks one device node's health from the moment it is constructed until close(). */
export class DeviceNodeHealth {
  private current: boolean;
  private readonly check: DeviceNodeCheck;
  private readonly watch: DirectoryWatch;

  constructor(
    readonly hostPath: string,
    private readonly options: DeviceNodeHealthOptions,
  ) {
    this.check = options.check ?? isCharacterDevice;
    // Watch first, then look: a node created in between is seen by the look or by the watch.
    this.watch = watchDirectory(path.dirname(hostPath), () => this.recheck(), options.logger);
    this.current = this.check(hostPath);
    options.logger.info(this.current ? 'device node present' : 'device node missing; devices unhealthy', {
      hostPath,
    });
  }

  get healthy(): boolean {
    return this.current;
  }

  /** Looks at the node again; notifies when health changed. Returns the current health. */
  recheck(): boolean {
    const healthy = this.check(this.hostPath);
    if (healthy !== this.current) {
      this.current = healthy;
      this.options.logger.info(
        healthy ? 'device node appeared; devices healthy' : 'device node gone; devices unhealthy',
        {
          hostPath: this.hostPath,
        },
      );
      this.options.onChange(healthy);
    }
    return healthy;
  }

  close(): void {
    this.watch.close();
  }
}
