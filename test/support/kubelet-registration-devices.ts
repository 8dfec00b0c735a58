/**
 * The kubelet's reading of a plugin's ListAndWatch stream, for tests: every list received is kept, and next() waits
 * for one that satisfies a predicate. Belongs with kubelet-registration-standin.ts.
 */
import { EventEmitter } from 'node:events';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { HEALTHY, UNHEALTHY, type Device, type ListAndWatchResponse } from '../../operator/daemon/device-plugin-api';
import type { DevicePluginClient } from '../../operator/daemon/device-plugin-client';
import { waitFor } from './kubelet-registration-standin';

export interface NextListOptions {
  /** Only lists received at this index or later count (0 = the first list). @default 0 */
  from?: number;
  /** @default 10000 */
  timeoutMs?: number;
}

/** One open ListAndWatch stream and everything it sent. */
export class DeviceListWatch {
  /** Every list received, in order. */
  readonly lists: Device[][] = [];
  /** Set once the stream ended: null for a clean end, the error otherwise. */
  ended: Error | null | undefined;
  private readonly stream: ClientReadableStream<ListAndWatchResponse>;
  private readonly events = new EventEmitter();

  constructor(client: DevicePluginClient) {
    this.stream = client.listAndWatch();
    this.stream.on('data', (response: ListAndWatchResponse) => {
      this.lists.push(response.devices);
      this.events.emit('change');
    });
    this.stream.on('error', (error: Error) => this.end(error));
    this.stream.on('end', () => this.end(null));
  }

  /** The first list from `options.from` on that satisfies `predicate`; rejects if the stream ends first. */
  async next(predicate: (devices: Device[]) => boolean, options: NextListOptions = {}): Promise<Device[]> {
    const from = options.from ?? 0;
    const outcome = await waitFor<{ devices: Device[] } | { ended: Error | null }>(
      this.events,
      () => {
        const match = this.lists.slice(from).find(predicate);
        if (match !== undefined) return { devices: match };
        return this.ended === undefined ? undefined : { ended: this.ended };
      },
      options.timeoutMs ?? 10_000,
      () => `a matching device list (received ${this.lists.length}: ${this.lists.map(summary).join('; ')})`,
    );
    if ('devices' in outcome) return outcome.devices;
    throw new Error(`ListAndWatch ended before a matching list: ${outcome.ended?.message ?? 'clean end'}`);
  }

  /** Cancels the stream (as the kubelet does when it drops an endpoint). */
  close(): void {
    this.stream.cancel();
  }

  private end(error: Error | null): void {
    this.ended ??= error;
    this.events.emit('change');
  }
}

/** Predicate: exactly `count` devices, all healthy. */
export const allHealthy =
  (count: number) =>
  (devices: Device[]): boolean =>
    devices.length === count && devices.every((d) => d.health === HEALTHY);

/** Predicate: exactly `count` devices, all unhealthy. */
export const allUnhealthy =
  (count: number) =>
  (devices: Device[]): boolean =>
    devices.length === count && devices.every((d) => d.health === UNHEALTHY);

/** "1000×Healthy", for failure messages. */
export function summary(devices: Device[]): string {
  const counts = new Map<string, number>();
  for (const d of devices) counts.set(d.health, (counts.get(d.health) ?? 0) + 1);
  return [...counts].map(([health, n]) => `${n}×${health}`).join('+') || 'empty';
}
