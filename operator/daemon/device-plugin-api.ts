// Typed access to the kubelet device plugin API v1beta1: the messages as TypeScript types, the two services as gRPC
// definitions, and the constants both sides agree on. The descriptor itself is in device-plugin-proto.ts.
import type { ChannelOptions, ServiceDefinition } from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { devicePluginDescriptor, PROTO_PACKAGE } from './device-plugin-proto';

/** The API version a plugin names in its RegisterRequest; the only one kubelets accept today. */
export const DEVICE_PLUGIN_API_VERSION = 'v1beta1';
/** Where the kubelet looks for device plugin sockets, and where its own registration socket lives. */
export const DEFAULT_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
/** The kubelet's Registration service socket, inside the plugin directory. */
export const KUBELET_SOCKET = 'kubelet.sock';
/** Device health values the kubelet understands (pluginapi.Healthy / pluginapi.Unhealthy). */
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';
/**
 * Upper bound of any message a plugin server receives or sends. The peer is whoever can reach the plugin directory,
 * so nothing it sends may make us buffer more than this; the largest legitimate message (a ListAndWatch list of the
 * maximum device count) is about 250 KiB.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** gRPC channel/server options bounding message sizes both ways. */
export function messageLimits(receiveBytes: number, sendBytes = MAX_MESSAGE_BYTES): ChannelOptions {
  return { 'grpc.max_receive_message_length': receiveBytes, 'grpc.max_send_message_length': sendBytes };
}

// --- messages (field names as in api.proto; repeated and map fields are always present once decoded) -----

/** google.protobuf-style empty message. */
export type Empty = Record<string, never>;

/** What a plugin asks of the kubelet: extra calls before container start and for allocation preferences. */
export interface DevicePluginOptions {
  pre_start_required: boolean;
  get_preferred_allocation_available: boolean;
}

/** A plugin's introduction to the kubelet (Registration/Register). */
export interface RegisterRequest {
  version: string;
  /** Socket file name of the plugin, relative to the plugin directory. */
  endpoint: string;
  resource_name: string;
  options?: DevicePluginOptions | null;
}

/** A NUMA node a device is attached to. */
export interface NUMANode {
  /** int64; decoded as a decimal string so no precision is lost. */
  ID: string | number;
}

/** The NUMA nodes of a device, for the topology manager. */
export interface TopologyInfo {
  nodes: NUMANode[];
}

/** One advertised device: an id the kubelet allocates and its health. */
export interface Device {
  ID: string;
  health: string;
  topology?: TopologyInfo | null;
}

/** The complete device list, sent at once and again on every change. */
export interface ListAndWatchResponse {
  devices: Device[];
}

/** Devices about to be handed to a starting container (only if pre_start_required). */
export interface PreStartContainerRequest {
  devices_ids: string[];
}

/** PreStartContainer's (empty) answer. */
export type PreStartContainerResponse = Empty;

/** One container's choice: `allocation_size` of the available ids, including the must-include ones. */
export interface ContainerPreferredAllocationRequest {
  available_deviceIDs: string[];
  must_include_deviceIDs: string[];
  allocation_size: number;
}

/** GetPreferredAllocation's question, per container. */
export interface PreferredAllocationRequest {
  container_requests: ContainerPreferredAllocationRequest[];
}

/** One container's preferred ids. */
export interface ContainerPreferredAllocationResponse {
  deviceIDs: string[];
}

/** GetPreferredAllocation's answer, per container in request order. */
export interface PreferredAllocationResponse {
  container_responses: ContainerPreferredAllocationResponse[];
}

/** The device ids the kubelet picked for one container. */
export interface ContainerAllocateRequest {
  devices_ids: string[];
}

/** Allocate's question, one entry per container of the pod that requests the resource. */
export interface AllocateRequest {
  container_requests: ContainerAllocateRequest[];
}

/** A host path to mount into the container. */
export interface Mount {
  container_path: string;
  host_path: string;
  read_only: boolean;
}

/** A host device node to make available in the container. */
export interface DeviceSpec {
  container_path: string;
  host_path: string;
  /** cgroup device permissions: some of r, w, m. */
  permissions: string;
}

/** A fully qualified CDI device name (vendor.com/class=name). */
export interface CDIDevice {
  name: string;
}

/** What the runtime must add to one container: environment, mounts, device nodes, annotations, CDI devices. */
export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: Mount[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
  cdi_devices: CDIDevice[];
}

/** Allocate's answer, one entry per container request, in order. */
export interface AllocateResponse {
  container_responses: ContainerAllocateResponse[];
}

// --- services ------------------------------------------------------------------------------------------

// keepCase: field names stay as in api.proto (devices_ids, not devicesIds); defaults/arrays/objects: decoded
// messages always carry every field, so handlers never meet an undefined list; longs as strings: no precision loss.
const packageDefinition = fromJSON(devicePluginDescriptor, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
});

function service(name: string): ServiceDefinition {
  const definition = packageDefinition[`${PROTO_PACKAGE}.${name}`];
  // Message types carry a `format`; services are plain maps of methods.
  if (definition === undefined || 'format' in definition)
    throw new Error(`no service ${name} in the device plugin API`);
  return definition as ServiceDefinition;
}

/** The kubelet's side: `v1beta1.Registration`. */
export const registrationService = service('Registration');
/** The plugin's side: `v1beta1.DevicePlugin`. */
export const devicePluginService = service('DevicePlugin');

/** One method of a service, with its path and (de)serialisers typed by the message types above. */
export interface ApiMethod<Request, Response> {
  readonly path: string;
  serialize(value: Request): Buffer;
  deserialize(bytes: Buffer): Response;
}

/** Looks up a method; the type parameters are the caller's promise that they match api.proto (the tests pin it). */
export function apiMethod<Request, Response>(
  definition: ServiceDefinition,
  name: string,
): ApiMethod<Request, Response> {
  const method = definition[name];
  if (method === undefined) throw new Error(`no method ${name} in the device plugin API`);
  return {
    path: method.path,
    serialize: (value: Request) => method.requestSerialize(value),
    deserialize: (bytes: Buffer) => method.responseDeserialize(bytes) as Response,
  };
}
