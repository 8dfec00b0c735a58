/**
 * A stand-in for the kubelet's side of the device plugin API: a real gRPC `v1beta1.Registration` server on
 * `<pluginDir>/kubelet.sock` that validates RegisterRequests as the kubelet's device manager does (API version,
 * extended resource name, endpoint as a file name in the plugin directory), plus what the kubelet does next: dial
 * the plugin's endpoint, read ListAndWatch, call Allocate (see kubelet-registration-devices.ts). restart() behaves
 * like a kubelet restart: every socket in the directory is deleted and kubelet.sock is created anew.
 *
 * Works against the device plugins in-process (unit and e2e tests) or against a daemon process sharing the
 * directory.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import {
  DEVICE_PLUGIN_API_VERSION,
  KUBELET_SOCKET,
  messageLimits,
  registrationService,
  type Empty,
  type RegisterRequest,
} from '../../operator/daemon/device-plugin-api';
import { DevicePluginClient, unixTarget } from '../../operator/daemon/device-plugin-client';

/** One accepted registration. */
export interface KubeletRegistrationRecord {
  readonly request: RegisterRequest;
  /** Which kubelet "incarnation" accepted it: 1, then +1 per restart(). */
  readonly incarnation: number;
}

export interface KubeletRegistrationOptions {
  /** The device plugin directory; created if missing. */
  pluginDir: string;
  /** Refuse this many Register calls (with the kubelet's error code, UNKNOWN) before accepting any. @default 0 */
  refuseFirst?: number;
}

export interface WaitOptions {
  /** Only registrations accepted by this incarnation or a later one count. @default 1 */
  incarnation?: number;
  /** @default 10000 */
  timeoutMs?: number;
}

// Extended resource names as the kubelet accepts them: a domain prefix outside kubernetes.io, and a name.
const EXTENDED_RESOURCE =
  /^(?!(?:[a-z0-9.-]*\.)?kubernetes\.io\/)[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/** The kubelet's registration endpoint, stood in for. */
export class KubeletRegistrationStandin {
  readonly socketPath: string;
  /** Every accepted registration, in order. */
  readonly registrations: KubeletRegistrationRecord[] = [];
  /** Every Register call received, accepted or not. */
  attempts = 0;
  private incarnationNumber = 0;
  private server: Server | undefined;
  private refuseLeft: number;
  private readonly events = new EventEmitter();
  private readonly clients = new Set<DevicePluginClient>();

  private constructor(
    readonly pluginDir: string,
    refuseFirst: number,
  ) {
    this.socketPath = path.join(pluginDir, KUBELET_SOCKET);
    this.refuseLeft = refuseFirst;
  }

  static async start(options: KubeletRegistrationOptions): Promise<KubeletRegistrationStandin> {
    fs.mkdirSync(options.pluginDir, { recursive: true });
    const standin = new KubeletRegistrationStandin(path.resolve(options.pluginDir), options.refuseFirst ?? 0);
    await standin.listen();
    return standin;
  }

  /** The current incarnation (1 after start, +1 per restart). */
  get incarnation(): number {
    return this.incarnationNumber;
  }

  /** Resolves with the first registration of `resourceName` accepted by `incarnation` or later. */
  waitForRegistration(resourceName: string, options: WaitOptions = {}): Promise<KubeletRegistrationRecord> {
    const incarnation = options.incarnation ?? 1;
    const find = () =>
      this.registrations.find((r) => r.request.resource_name === resourceName && r.incarnation >= incarnation);
    return waitFor(this.events, find, options.timeoutMs ?? 10_000, () => `a registration of ${resourceName}`);
  }

  /** Resolves once `count` Register calls arrived (accepted or not). */
  waitForAttempts(count: number, timeoutMs = 10_000): Promise<number> {
    return waitFor(
      this.events,
      () => (this.attempts >= count ? this.attempts : undefined),
      timeoutMs,
      () => `${count} Register calls (got ${this.attempts})`,
    );
  }

  /** A client of the plugin behind `endpoint`, as the kubelet dials it; closed by stop(). */
  dial(endpoint: string): DevicePluginClient {
    const client = new DevicePluginClient(path.join(this.pluginDir, endpoint));
    this.clients.add(client);
    return client;
  }

  /**
   * A kubelet restart: the registration server goes away, every socket in the plugin directory is removed (the
   * device manager clears the directory on start) and kubelet.sock is served anew.
   */
  async restart(): Promise<void> {
    await this.close();
    for (const entry of fs.readdirSync(this.pluginDir, { withFileTypes: true })) {
      if (entry.isSocket()) fs.rmSync(path.join(this.pluginDir, entry.name), { force: true });
    }
    await this.listen();
  }

  /** Stops serving and removes kubelet.sock; closes the clients dial() made. */
  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    this.clients.clear();
    await this.close();
    fs.rmSync(this.socketPath, { force: true });
  }

  private async listen(): Promise<void> {
    const server = new Server(messageLimits(64 * 1024));
    server.addService(registrationService, {
      Register: (call: ServerUnaryCall<RegisterRequest, Empty>, reply: sendUnaryData<Empty>) =>
        this.register(call.request, reply),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(unixTarget(this.socketPath), ServerCredentials.createInsecure(), (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    this.server = server;
    this.incarnationNumber += 1;
  }

  private async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  private register(request: RegisterRequest, reply: sendUnaryData<Empty>): void {
    this.attempts += 1;
    const problem = this.validate(request);
    if (problem !== undefined) {
      reply({ code: status.UNKNOWN, details: problem });
      this.events.emit('change');
      return;
    }
    this.registrations.push({ request, incarnation: this.incarnationNumber });
    reply(null, {});
    this.events.emit('change');
  }

  private validate(request: RegisterRequest): string | undefined {
    if (this.refuseLeft > 0) {
      this.refuseLeft -= 1;
      return 'refused by the stand-in (refuseFirst)';
    }
    if (request.version !== DEVICE_PLUGIN_API_VERSION) return `invalid version ${JSON.stringify(request.version)}`;
    if (!EXTENDED_RESOURCE.test(request.resource_name)) {
      return `invalid resource name ${JSON.stringify(request.resource_name)}`;
    }
    if (request.endpoint === '' || path.basename(request.endpoint) !== request.endpoint) {
      return `endpoint ${JSON.stringify(request.endpoint)} is not a file name in the plugin directory`;
    }
    return undefined;
  }
}

/** Resolves with find()'s first defined value, re-evaluated on every 'change' of `events`; rejects after timeoutMs. */
export function waitFor<T>(
  events: EventEmitter,
  find: () => T | undefined,
  timeoutMs: number,
  describe: () => string,
): Promise<T> {
  const found = find();
  if (found !== undefined) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const onChange = () => {
      const value = find();
      if (value === undefined) return;
      done();
      resolve(value);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      events.off('change', onChange);
    };
    events.on('change', onChange);
  });
}
