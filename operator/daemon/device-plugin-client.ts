// Clients of the device plugin API: the plugin's Register call to the kubelet, and the kubelet's view of a plugin
// (used by the tests' kubelet stand-in, and handy for checking a node by hand).
import { Client, credentials } from '@grpc/grpc-js';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import {
  apiMethod,
  devicePluginService,
  MAX_MESSAGE_BYTES,
  messageLimits,
  registrationService,
  type AllocateRequest,
  type AllocateResponse,
  type DevicePluginOptions,
  type Empty,
  type ListAndWatchResponse,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
  type PreStartContainerRequest,
  type PreStartContainerResponse,
  type RegisterRequest,
} from './device-plugin-api';

/** The kubelet answers Register with Empty; anything bigger from whoever listens on kubelet.sock is refused. */
const REGISTER_REPLY_BYTES = 4096;

const register = apiMethod<RegisterRequest, Empty>(registrationService, 'Register');

/** A Register call in flight. */
export interface PendingRegistration {
  /** Resolves when the kubelet accepted the registration; rejects with its gRPC error otherwise. */
  readonly done: Promise<void>;
  /** Abandons the call (done then rejects with CANCELLED). */
  cancel(): void;
}

/** gRPC target for a unix socket path. */
export const unixTarget = (socketPath: string) => `unix:${socketPath}`;

/** Calls Registration/Register on the kubelet's socket, within `timeoutMs`. */
export function registerWithKubelet(
  kubeletSocket: string,
  request: RegisterRequest,
  timeoutMs: number,
): PendingRegistration {
  // A private subchannel pool: each attempt really dials the socket path again (a restarted kubelet is a new
  // listener), and closing the client leaves no shared connection behind.
  const client = new Client(unixTarget(kubeletSocket), credentials.createInsecure(), {
    ...messageLimits(REGISTER_REPLY_BYTES),
    'grpc.use_local_subchannel_pool': 1,
  });
  let cancel: () => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    const call = client.makeUnaryRequest(
      register.path,
      register.serialize,
      register.deserialize,
      request,
      { deadline: Date.now() + timeoutMs },
      (error: ServiceError | null) => {
        client.close();
        if (error) reject(error);
        else resolve();
      },
    );
    cancel = () => call.cancel();
  });
  return { done, cancel: () => cancel() };
}

const getOptions = apiMethod<Empty, DevicePluginOptions>(devicePluginService, 'GetDevicePluginOptions');
const listAndWatch = apiMethod<Empty, ListAndWatchResponse>(devicePluginService, 'ListAndWatch');
const preferred = apiMethod<PreferredAllocationRequest, PreferredAllocationResponse>(
  devicePluginService,
  'GetPreferredAllocation',
);
const allocate = apiMethod<AllocateRequest, AllocateResponse>(devicePluginService, 'Allocate');
const preStart = apiMethod<PreStartContainerRequest, PreStartContainerResponse>(
  devicePluginService,
  'PreStartContainer',
);

/** The kubelet's side of one plugin's DevicePlugin service, on the plugin's socket. */
export class DevicePluginClient {
  private readonly client: Client;

  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.client = new Client(unixTarget(socketPath), credentials.createInsecure(), {
      ...messageLimits(MAX_MESSAGE_BYTES),
      'grpc.use_local_subchannel_pool': 1,
    });
  }

  /** The options the plugin registered with. */
  getDevicePluginOptions(): Promise<DevicePluginOptions> {
    return this.unary(getOptions.path, getOptions.serialize, getOptions.deserialize, {});
  }

  /** The device list stream: the full list at once, then again on every change. Cancel it to stop. */
  listAndWatch(): ClientReadableStream<ListAndWatchResponse> {
    return this.client.makeServerStreamRequest(listAndWatch.path, listAndWatch.serialize, listAndWatch.deserialize, {});
  }

  /** The plugin's preferred ids, per container. */
  getPreferredAllocation(request: PreferredAllocationRequest): Promise<PreferredAllocationResponse> {
    return this.unary(preferred.path, preferred.serialize, preferred.deserialize, request);
  }

  /** What each container needs for the given device ids; rejects with the plugin's gRPC error. */
  allocate(request: AllocateRequest): Promise<AllocateResponse> {
    return this.unary(allocate.path, allocate.serialize, allocate.deserialize, request);
  }

  /** The hook before container start (called by the kubelet only if pre_start_required). */
  preStartContainer(request: PreStartContainerRequest): Promise<PreStartContainerResponse> {
    return this.unary(preStart.path, preStart.serialize, preStart.deserialize, request);
  }

  /** Closes the channel; open streams are cancelled. */
  close(): void {
    this.client.close();
  }

  private unary<Request, Response>(
    path: string,
    serialize: (value: Request) => Buffer,
    deserialize: (bytes: Buffer) => Response,
    request: Request,
  ): Promise<Response> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        request,
        { deadline: Date.now() + this.timeoutMs },
        (error: ServiceError | null, response?: Response) => {
          if (error) reject(error);
          else if (response === undefined) reject(new Error(`${path}: empty response`));
          else resolve(response);
        },
      );
    });
  }
}
