/**
 * Typed client for Cloud Hypervisor's REST API on its unix API socket (`--api-socket path=…`). One HTTP/1.1
 * request per call over node:http's `socketPath`; the behaviour it relies on is described in
 * reference/cloud-hypervisor.md of the design notes (cited below as "reference §N").
 */
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { CloudHypervisorError, parseErrorChain } from './error';
import type {
  DiskConfig,
  PciDeviceInfo,
  ReceiveMigrationData,
  RestoreConfig,
  SendMigrationData,
  VmConfig,
  VmCounters,
  VmInfo,
  VmRemoveDevice,
  VmSnapshotConfig,
  VmmPingResponse,
} from './types';

/** Path prefix of every route (the spec's `servers[0].url`; a unit test keeps the two equal). */
export const CLOUD_HYPERVISOR_API_ROOT = '/api/v1';

/** Deadline of one call when none is given. Long-running calls (receive-migration, restore) need their own. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The largest answer read. CH's biggest is vm.info (a few KiB); whoever serves the socket may be hostile (it lives in
 * a VM pod), so an answer without end must not grow the caller's memory.
 */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface CloudHypervisorClientOptions {
  /** Path of CH's API socket. */
  readonly socketPath: string;
  /** Deadline for each call, from connecting to the last byte of the answer. @default 10000 */
  readonly timeoutMs?: number;
}

export interface CallOptions {
  /** Overrides the client's deadline for this call. */
  readonly timeoutMs?: number;
}

/** A successful (2xx) answer; `body` is the raw text, empty for CH's 204s. */
export interface CloudHypervisorResponse {
  readonly statusCode: number;
  readonly body: string;
}

export class CloudHypervisorClient {
  readonly socketPath: string;
  readonly timeoutMs: number;

  /** Calls on the VMM process itself. */
  readonly vmm = {
    /** `GET vmm.ping`: the VMM's version; answers whenever the API thread is up (reference §1, §3). */
    ping: (o?: CallOptions) => this.json<VmmPingResponse>('GET', 'vmm.ping', undefined, o),
    /** `PUT vmm.shutdown`: deletes the VM, then the process exits (CH answers 200, the spec says 204). */
    shutdown: (o?: CallOptions) => this.none('PUT', 'vmm.shutdown', undefined, o),
  };

  /** Calls on the one VM the VMM holds. */
  readonly vm = {
    /** `PUT vm.create`: stores the config only; full validation happens at boot (reference §4). */
    create: (config: VmConfig, o?: CallOptions) => this.none('PUT', 'vm.create', config, o),
    boot: (o?: CallOptions) => this.none('PUT', 'vm.boot', undefined, o),
    /** `PUT vm.shutdown`: booted → Created; the process and the stored config stay. */
    shutdown: (o?: CallOptions) => this.none('PUT', 'vm.shutdown', undefined, o),
    reboot: (o?: CallOptions) => this.none('PUT', 'vm.reboot', undefined, o),
    /** `PUT vm.power-button`: ACPI power button; the guest decides what to do. */
    powerButton: (o?: CallOptions) => this.none('PUT', 'vm.power-button', undefined, o),
    pause: (o?: CallOptions) => this.none('PUT', 'vm.pause', undefined, o),
    resume: (o?: CallOptions) => this.none('PUT', 'vm.resume', undefined, o),
    info: (o?: CallOptions) => this.json<VmInfo>('GET', 'vm.info', undefined, o),
    counters: (o?: CallOptions) => this.json<VmCounters>('GET', 'vm.counters', undefined, o),
    /** `PUT vm.delete`: shuts a booted VM down and forgets the config; a no-op when there is none. */
    delete: (o?: CallOptions) => this.none('PUT', 'vm.delete', undefined, o),
    /**
     * `PUT vm.add-disk`: hot-plugs into a booted VM (200 + where it landed) or, before boot, adds the disk to the
     * stored config (204 → `undefined`).
     */
    addDisk: (disk: DiskConfig, o?: CallOptions) => this.optionalJson<PciDeviceInfo>('PUT', 'vm.add-disk', disk, o),
    removeDevice: (device: VmRemoveDevice, o?: CallOptions) => this.none('PUT', 'vm.remove-device', device, o),
    /** `PUT vm.snapshot`: only a Paused VM can be snapshotted (reference §3). */
    snapshot: (config: VmSnapshotConfig, o?: CallOptions) => this.none('PUT', 'vm.snapshot', config, o),
    /** `PUT vm.restore`: only into an empty VMM; the VM comes back Paused unless `resume: true`. */
    restore: (config: RestoreConfig, o?: CallOptions) => this.none('PUT', 'vm.restore', config, o),
    /** `PUT vm.send-migration`: answers at once (since v53); progress arrives as events. */
    sendMigration: (data: SendMigrationData, o?: CallOptions) => this.none('PUT', 'vm.send-migration', data, o),
    /**
     * `PUT vm.receive-migration`: answers only when the migration has finished, and CH serves no other call
     * meanwhile (reference §5) — give it a deadline that covers the whole migration.
     */
    receiveMigration: (data: ReceiveMigrationData, o?: CallOptions) =>
      this.none('PUT', 'vm.receive-migration', data, o),
  };

  constructor(options: CloudHypervisorClientOptions) {
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Sends one request and resolves with any 2xx answer; everything else rejects with a
   * {@link CloudHypervisorError}. `body`, when given, is sent as JSON with an explicit `Content-Length`: CH's
   * server does not decode chunked bodies and treats a request without a length as bodiless (reference §5).
   */
  request(
    method: 'GET' | 'PUT',
    endpoint: string,
    body?: unknown,
    options?: CallOptions,
  ): Promise<CloudHypervisorResponse> {
    const path = `${CLOUD_HYPERVISOR_API_ROOT}/${endpoint}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    const headers: OutgoingHttpHeaders = { Accept: 'application/json', 'Content-Length': payload?.length ?? 0 };
    if (payload) headers['Content-Type'] = 'application/json';

    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: CloudHypervisorError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(error);
      };
      // One deadline for the whole exchange: node's own `timeout` option only measures socket idleness.
      const timer = setTimeout(
        () =>
          fail(new CloudHypervisorError({ kind: 'timeout', method, path, detail: `no answer within ${timeoutMs} ms` })),
        timeoutMs,
      );
      // `agent: false`: a fresh connection per call, closed afterwards, so no socket outlives the call.
      const req = httpRequest({ socketPath: this.socketPath, method, path, headers, agent: false });
      req.on('error', (cause) =>
        fail(new CloudHypervisorError({ kind: 'transport', method, path, detail: cause.message, cause })),
      );
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > MAX_RESPONSE_BYTES) {
            fail(
              new CloudHypervisorError({
                kind: 'protocol',
                method,
                path,
                detail: `answer longer than ${MAX_RESPONSE_BYTES} bytes; not read further`,
              }),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (cause) =>
          fail(new CloudHypervisorError({ kind: 'transport', method, path, detail: cause.message, cause })),
        );
        res.on('end', () => {
          if (settled) return;
          const text = Buffer.concat(chunks).toString('utf8');
          const statusCode = res.statusCode ?? 0;
          if (statusCode < 200 || statusCode > 299) {
            const chain = parseErrorChain(text);
            const detail = chain.length === 0 ? res.statusMessage || undefined : undefined;
            fail(new CloudHypervisorError({ kind: 'http', method, path, statusCode, chain, detail }));
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve({ statusCode, body: text });
        });
      });
      req.end(payload);
    });
  }

  private async none(method: 'GET' | 'PUT', endpoint: string, body: unknown, o?: CallOptions): Promise<void> {
    await this.request(method, endpoint, body, o);
  }

  /** JSON only when there is a body: CH's 204s carry none (reference §3). */
  private async optionalJson<T>(
    method: 'GET' | 'PUT',
    endpoint: string,
    body: unknown,
    o?: CallOptions,
  ): Promise<T | undefined> {
    const res = await this.request(method, endpoint, body, o);
    if (res.body.trim() === '') return undefined;
    try {
      return JSON.parse(res.body) as T;
    } catch (cause) {
      const path = `${CLOUD_HYPERVISOR_API_ROOT}/${endpoint}`;
      throw new CloudHypervisorError({
        kind: 'protocol',
        method,
        path,
        statusCode: res.statusCode,
        detail: `answer is not JSON: ${res.body.slice(0, 200)}`,
        cause,
      });
    }
  }

  private async json<T>(method: 'GET' | 'PUT', endpoint: string, body: unknown, o?: CallOptions): Promise<T> {
    const value = await this.optionalJson<T>(method, endpoint, body, o);
    if (value === undefined) {
      const path = `${CLOUD_HYPERVISOR_API_ROOT}/${endpoint}`;
      throw new CloudHypervisorError({ kind: 'protocol', method, path, detail: 'expected a JSON body, got none' });
    }
    return value;
  }
}
