// What a device plugin answers, as pure functions of its resource and the request: the device list, Allocate's
// DeviceSpecs, and a preferred allocation. The devices of one resource are interchangeable tokens for the same host
// node (every VM pod on the node shares /dev/kvm), so any id maps to the same DeviceSpec.
import { status } from '@grpc/grpc-js';
import type {
  AllocateRequest,
  AllocateResponse,
  ContainerAllocateResponse,
  Device,
  PreferredAllocationRequest,
  PreferredAllocationResponse,
} from './device-plugin-api';
import { HEALTHY, UNHEALTHY } from './device-plugin-api';

/** One extended resource served by one plugin. */
export interface DeviceResource {
  /** Extended resource name, e.g. devices.kubevisor.io/kvm. */
  readonly resourceName: string;
  /** Short name: prefix of the device ids and of the plugin's socket name. */
  readonly name: string;
  /** The device node on the host, as the container runtime must open it (the host's path, e.g. /dev/kvm). */
  readonly hostPath: string;
  /** The same node as this process sees it (under --dev-root), for the health check. */
  readonly watchPath: string;
  /** Where the node appears inside the container. */
  readonly containerPath: string;
  /** cgroup device permissions granted (r, w, m). */
  readonly permissions: string;
}

/** An error that carries the gRPC status the kubelet should see. */
export class DevicePluginError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'DevicePluginError';
  }

  /** The form grpc-js sends as the call's status. */
  get details(): string {
    return this.message;
  }
}

/** The device ids of a resource: `<name>-0` … `<name>-<count-1>`. */
export function deviceIds(resource: Pick<DeviceResource, 'name'>, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${resource.name}-${i}`);
}

/** The ListAndWatch list: every device with the one health of the host node. */
export function deviceList(ids: readonly string[], healthy: boolean): Device[] {
  const health = healthy ? HEALTHY : UNHEALTHY;
  return ids.map((ID) => ({ ID, health }));
}

/** Shown in errors instead of whatever the peer sent, so a huge or odd id cannot flood a log line. */
const quote = (id: string) => JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}…` : id);

/**
 * Allocate's answer: for each container request, the one DeviceSpec of the resource (several ids of the same node
 * would only repeat it). Unknown ids and empty requests are refused with INVALID_ARGUMENT, naming the first culprit.
 */
export function allocate(
  resource: DeviceResource,
  known: ReadonlySet<string>,
  request: AllocateRequest,
): AllocateResponse {
  const containers = request.container_requests ?? [];
  if (containers.length === 0) {
    throw new DevicePluginError(
      status.INVALID_ARGUMENT,
      `${resource.resourceName}: Allocate without container requests`,
    );
  }
  return {
    container_responses: containers.map((container, index): ContainerAllocateResponse => {
      const ids = container.devices_ids ?? [];
      if (ids.length === 0) {
        throw new DevicePluginError(
          status.INVALID_ARGUMENT,
          `${resource.resourceName}: container request ${index} names no device`,
        );
      }
      const unknown = ids.find((id) => !known.has(id));
      if (unknown !== undefined) {
        throw new DevicePluginError(
          status.INVALID_ARGUMENT,
          `${resource.resourceName}: unknown device id ${quote(unknown)} in container request ${index}` +
            ` (this plugin serves ${resource.name}-0 … ${resource.name}-${known.size - 1})`,
        );
      }
      return {
        envs: {},
        mounts: [],
        devices: [
          { container_path: resource.containerPath, host_path: resource.hostPath, permissions: resource.permissions },
        ],
        annotations: {},
        cdi_devices: [],
      };
    }),
  };
}

/**
 * A preferred allocation (only asked for if a plugin advertises it; ours does not, but answering beats an error):
 * the must-include ids, then available ones in order, up to the requested size.
 */
export function preferredAllocation(request: PreferredAllocationRequest): PreferredAllocationResponse {
  return {
    container_responses: (request.container_requests ?? []).map((container) => {
      const available = container.available_deviceIDs ?? [];
      const size = Math.max(0, Math.min(container.allocation_size, available.length));
      const chosen = new Set<string>();
      for (const id of container.must_include_deviceIDs ?? []) if (chosen.size < size) chosen.add(id);
      for (const id of available) if (chosen.size < size) chosen.add(id);
      return { deviceIDs: [...chosen] };
    }),
  };
}
