// One device plugin: serves the DevicePlugin service for one resource on its socket in the kubelet's plugin
// directory, and registers it with the kubelet. Level-triggered: reconcile() compares what is (our socket, the
// kubelet's socket, by identity) with what we last did, and serves or registers again when they differ. So a
// kubelet restart (it deletes every socket in the directory, then creates kubelet.sock anew), a deleted socket or a
// kubelet that was not up yet all take the same path. Failures retry with bounded exponential backoff; only a new
// kubelet (a new kubelet.sock) cuts a backoff short, so no event storm can turn it into a tight loop.
import path from 'node:path';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { backoffDelay, type BackoffOptions } from '../kube/backoff';
import type { Logger } from '../kube/log';
import { allocate, deviceIds, deviceList, DevicePluginError, preferredAllocation } from './device-plugin-allocate';
import type { DeviceResource } from './device-plugin-allocate';
import {
  DEVICE_PLUGIN_API_VERSION,
  devicePluginService,
  KUBELET_SOCKET,
  MAX_MESSAGE_BYTES,
  messageLimits,
} from './device-plugin-api';
import type {
  AllocateRequest,
  AllocateResponse,
  DevicePluginOptions,
  Empty,
  ListAndWatchResponse,
  PreferredAllocationRequest,
  PreferredAllocationResponse,
  PreStartContainerResponse,
} from './device-plugin-api';
import { registerWithKubelet, unixTarget, type PendingRegistration } from './device-plugin-client';
import { DeviceNodeHealth, type DeviceNodeCheck } from './device-plugin-health';
import { removeOwnSocket, removeStaleSocket, socketIdentity } from './device-plugin-socket';

/** What the plugin tells the kubelet about itself: no PreStartContainer, no GetPreferredAllocation. */
export const PLUGIN_OPTIONS: DevicePluginOptions = {
  pre_start_required: false,
  get_preferred_allocation_available: false,
};
/** The kubelet answers Register at once; a socket that does not is not a working kubelet. */
const REGISTER_TIMEOUT_MS = 5_000;
/** The kubelet holds one ListAndWatch stream per plugin; more than this are not a kubelet. */
const MAX_WATCHERS = 16;
/** How long stop() lets open calls finish before cutting them. */
const SHUTDOWN_GRACE_MS = 2_000;

/** A point-in-time view of one plugin, for logs, metrics and tests. */
export interface DevicePluginStatus {
  /** Extended resource name, e.g. devices.kubevisor.io/kvm. */
  readonly resourceName: string;
  /** Socket file name in the plugin directory (the RegisterRequest endpoint). */
  readonly endpoint: string;
  /** The host device node the devices stand for. */
  readonly hostPath: string;
  /** Number of devices advertised. */
  readonly devices: number;
  /** True while the host device node exists and is a character device. */
  readonly healthy: boolean;
  /** True while the gRPC server is bound to the socket. */
  readonly serving: boolean;
  /** True while the current kubelet accepted our registration. */
  readonly registered: boolean;
  /** Successful Register calls since start (1 + one per kubelet restart, normally). */
  readonly registrations: number;
  /** Open ListAndWatch streams. */
  readonly watchers: number;
  /** The last serve or register failure, until the next success. */
  readonly lastError: string | undefined;
}

/** How startDevicePlugins configures each plugin (device-plugin.ts documents the user-facing options). */
export interface DevicePluginServerOptions {
  pluginDir: string;
  deviceCount: number;
  logger: Logger;
  checkDeviceNode?: DeviceNodeCheck;
  retry: BackoffOptions;
  /** Called after anything in status() changed. */
  onChange: () => void;
}

type Watcher = ServerWritableStream<Empty, ListAndWatchResponse>;

/** One resource's device plugin; reconcile() to (re)serve and (re)register, stop() to end it. */
export class DevicePluginServer {
  readonly endpoint: string;
  private readonly socketPath: string;
  private readonly kubeletSocket: string;
  private readonly ids: readonly string[];
  private readonly known: ReadonlySet<string>;
  private readonly health: DeviceNodeHealth;
  private readonly logger: Logger;
  private readonly watchers = new Set<Watcher>();

  private server: Server | undefined;
  /** Identity of the socket our server is bound to. */
  private servedIdentity: string | undefined;
  /** Identity of the kubelet.sock that accepted our registration. */
  private registeredWith: string | undefined;
  private registrations = 0;
  private lastError: string | undefined;

  private failures = 0;
  /** Identity of kubelet.sock when the last attempt failed: only a different one cuts the backoff short. */
  private failedWith: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pending: PendingRegistration | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly resource: DeviceResource,
    private readonly options: DevicePluginServerOptions,
  ) {
    this.endpoint = `kubevisor-${resource.name}.sock`;
    this.socketPath = path.join(options.pluginDir, this.endpoint);
    this.kubeletSocket = path.join(options.pluginDir, KUBELET_SOCKET);
    this.ids = deviceIds(resource, options.deviceCount);
    this.known = new Set(this.ids);
    this.logger = options.logger.child({ resource: resource.resourceName });
    this.health = new DeviceNodeHealth(resource.watchPath, {
      check: options.checkDeviceNode,
      logger: this.logger,
      onChange: () => {
        this.broadcast();
        options.onChange();
      },
    });
  }

  status(): DevicePluginStatus {
    return {
      resourceName: this.resource.resourceName,
      endpoint: this.endpoint,
      hostPath: this.resource.hostPath,
      devices: this.ids.length,
      healthy: this.health.healthy,
      serving: this.server !== undefined,
      registered: this.registeredWith !== undefined,
      registrations: this.registrations,
      watchers: this.watchers.size,
      lastError: this.lastError,
    };
  }

  /** Asks for a reconcile; calls coalesce, one runs at a time. Resolves when no reconcile is left to run. */
  reconcile(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops serving, cancels any registration or retry, removes our socket. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.pending?.cancel();
    this.health.close();
    await this.running;
    await this.closeServer();
    this.logger.info('device plugin stopped');
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      await this.reconcileOnce();
    } while (this.again && !this.stopping);
  }

  private async reconcileOnce(): Promise<void> {
    if (this.retryTimer !== undefined) {
      // Backing off. Only a new kubelet is a reason to try before the timer fires.
      const kubelet = socketIdentity(this.kubeletSocket);
      if (kubelet === undefined || kubelet === this.failedWith) return;
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.failures = 0;
    }

    const own = socketIdentity(this.socketPath);
    if (this.server === undefined || own === undefined || own !== this.servedIdentity) {
      if (this.server)
        this.logger.info('plugin socket removed or replaced; serving again', { socket: this.socketPath });
      try {
        await this.serve();
      } catch (error) {
        this.failed('serve', error);
        return;
      }
    }
    if (this.stopping) return;

    // Read after serving: the kubelet may have come (or gone) meanwhile.
    const kubelet = socketIdentity(this.kubeletSocket);
    if (kubelet === undefined) {
      if (this.registeredWith !== undefined) {
        this.logger.info('kubelet socket gone; waiting for the kubelet to come back', { socket: this.kubeletSocket });
        this.registeredWith = undefined;
        this.options.onChange();
      }
      return;
    }
    if (kubelet === this.registeredWith) return;
    try {
      await this.register();
    } catch (error) {
      this.failed('register', error);
      return;
    }
    this.registeredWith = kubelet;
    this.registrations += 1;
    this.failures = 0;
    this.failedWith = undefined;
    this.lastError = undefined;
    this.logger.info('registered with the kubelet', { endpoint: this.endpoint, registrations: this.registrations });
    this.options.onChange();
  }

  /** (Re)binds the gRPC server to a fresh socket; any registration is void once the socket changed. */
  private async serve(): Promise<void> {
    await this.closeServer();
    removeStaleSocket(this.socketPath);
    const server = new Server(messageLimits(MAX_MESSAGE_BYTES));
    server.addService(devicePluginService, this.handlers());
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(unixTarget(this.socketPath), ServerCredentials.createInsecure(), (error) =>
        error ? reject(error) : resolve(),
      );
    }).catch((error: unknown) => {
      server.forceShutdown();
      throw error;
    });
    this.server = server;
    this.servedIdentity = socketIdentity(this.socketPath);
    this.registeredWith = undefined;
    this.logger.info('serving device plugin', { socket: this.socketPath, devices: this.ids.length });
    this.options.onChange();
  }

  private async register(): Promise<void> {
    this.pending = registerWithKubelet(
      this.kubeletSocket,
      {
        version: DEVICE_PLUGIN_API_VERSION,
        endpoint: this.endpoint,
        resource_name: this.resource.resourceName,
        options: PLUGIN_OPTIONS,
      },
      REGISTER_TIMEOUT_MS,
    );
    try {
      await this.pending.done;
    } finally {
      this.pending = undefined;
    }
  }

  private failed(step: 'serve' | 'register', error: unknown): void {
    if (this.stopping) return;
    this.failures += 1;
    this.failedWith = socketIdentity(this.kubeletSocket);
    this.lastError = `${step}: ${error instanceof Error ? error.message : String(error)}`;
    const delayMs = backoffDelay(this.failures, this.options.retry);
    this.logger.warn(`device plugin ${step} failed; retrying`, { error, failures: this.failures, delayMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.reconcile();
    }, delayMs);
    this.options.onChange();
  }

  /** Ends every stream and shuts the server down (gracefully, then by force); removes our socket. */
  private async closeServer(): Promise<void> {
    const server = this.server;
    const identity = this.servedIdentity;
    if (server === undefined) return;
    this.server = undefined;
    this.servedIdentity = undefined;
    for (const watcher of this.watchers) watcher.end();
    this.watchers.clear();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    // Closing a unix listener already unlinks its path; this covers the case where it did not, and never touches a
    // socket someone else bound there since.
    removeOwnSocket(this.socketPath, identity);
    this.options.onChange();
  }

  /** Sends the current list to every open ListAndWatch stream. */
  private broadcast(): void {
    const response: ListAndWatchResponse = { devices: deviceList(this.ids, this.health.healthy) };
    for (const watcher of this.watchers) watcher.write(response);
  }

  private handlers(): UntypedServiceImplementation {
    return {
      GetDevicePluginOptions: (
        _call: ServerUnaryCall<Empty, DevicePluginOptions>,
        reply: sendUnaryData<DevicePluginOptions>,
      ) => reply(null, PLUGIN_OPTIONS),
      ListAndWatch: (call: Watcher) => this.listAndWatch(call),
      GetPreferredAllocation: (
        call: ServerUnaryCall<PreferredAllocationRequest, PreferredAllocationResponse>,
        reply: sendUnaryData<PreferredAllocationResponse>,
      ) => reply(null, preferredAllocation(call.request)),
      Allocate: (call: ServerUnaryCall<AllocateRequest, AllocateResponse>, reply: sendUnaryData<AllocateResponse>) =>
        this.allocate(call, reply),
      PreStartContainer: (
        _call: ServerUnaryCall<unknown, PreStartContainerResponse>,
        reply: sendUnaryData<PreStartContainerResponse>,
      ) => reply(null, {}),
    };
  }

  private listAndWatch(call: Watcher): void {
    if (this.stopping || this.watchers.size >= MAX_WATCHERS) {
      call.emit('error', new DevicePluginError(status.RESOURCE_EXHAUSTED, 'too many ListAndWatch streams'));
      return;
    }
    // Look again rather than trust the last event: the kubelet acts on this first list. (Before joining the
    // watchers, so a flip found here is not sent to this stream twice.)
    this.health.recheck();
    this.watchers.add(call);
    const forget = () => {
      if (this.watchers.delete(call)) this.options.onChange();
    };
    call.on('cancelled', forget);
    call.on('close', forget);
    call.on('error', forget);
    call.write({ devices: deviceList(this.ids, this.health.healthy) });
    this.logger.debug('ListAndWatch opened', { watchers: this.watchers.size });
    this.options.onChange();
  }

  private allocate(
    call: ServerUnaryCall<AllocateRequest, AllocateResponse>,
    reply: sendUnaryData<AllocateResponse>,
  ): void {
    try {
      const response = allocate(this.resource, this.known, call.request);
      // A fresh look, not the cached value: handing out a node that just vanished would fail later and obscurely.
      if (!this.health.recheck()) {
        throw new DevicePluginError(
          status.FAILED_PRECONDITION,
          `${this.resource.resourceName}: host device ${this.resource.watchPath} is missing or not a character device`,
        );
      }
      this.logger.debug('Allocate', { containers: response.container_responses.length });
      reply(null, response);
    } catch (error) {
      // Never throw out of a handler: an unexpected error is the call's INTERNAL status, not the daemon's crash.
      const refusal =
        error instanceof DevicePluginError
          ? error
          : new DevicePluginError(status.INTERNAL, `${this.resource.resourceName}: Allocate failed: ${String(error)}`);
      this.logger.warn('Allocate refused', { error: refusal.message });
      reply(refusal);
    }
  }
}
