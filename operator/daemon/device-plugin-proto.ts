// The kubelet device plugin API, v1beta1 (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto), as a protobufjs
// JSON descriptor. It lives in TypeScript rather than a .proto file so the compiled lib/ needs no copied asset, and
// in JSON rather than proto text so nothing has to parse it at start-up and protobufjs (only a transitive
// dependency) is never imported directly. Message, field and method names and field numbers are the upstream ones:
// the kubelet only sees the wire format, but exact names keep this readable side by side with api.proto, and the
// golden-bytes test (test/unit/daemon/device-plugin-api.test.ts) pins the numbers.
import type { fromJSON } from '@grpc/proto-loader';

type Descriptor = Parameters<typeof fromJSON>[0];

const scalar = (type: string, id: number) => ({ type, id });
const repeated = (type: string, id: number) => ({ rule: 'repeated', type, id });
const map = (id: number) => ({ keyType: 'string', type: 'string', id });
// protobufjs's type insists on a comment; the definitions carry none.
const rpc = (requestType: string, responseType: string, responseStream = false) => ({
  requestType,
  responseType,
  responseStream,
  comment: '',
});

/** The package name the kubelet dials (`/v1beta1.DevicePlugin/Allocate` …). */
export const PROTO_PACKAGE = 'v1beta1';

/** api.proto of the v1beta1 device plugin API, field for field. */
export const devicePluginDescriptor: Descriptor = {
  nested: {
    [PROTO_PACKAGE]: {
      nested: {
        DevicePluginOptions: {
          fields: {
            pre_start_required: scalar('bool', 1),
            get_preferred_allocation_available: scalar('bool', 2),
          },
        },
        RegisterRequest: {
          fields: {
            version: scalar('string', 1),
            endpoint: scalar('string', 2),
            resource_name: scalar('string', 3),
            options: scalar('DevicePluginOptions', 4),
          },
        },
        Empty: { fields: {} },
        ListAndWatchResponse: { fields: { devices: repeated('Device', 1) } },
        TopologyInfo: { fields: { nodes: repeated('NUMANode', 1) } },
        NUMANode: { fields: { ID: scalar('int64', 1) } },
        Device: {
          fields: {
            ID: scalar('string', 1),
            health: scalar('string', 2),
            topology: scalar('TopologyInfo', 3),
          },
        },
        PreStartContainerRequest: { fields: { devices_ids: repeated('string', 1) } },
        PreStartContainerResponse: { fields: {} },
        PreferredAllocationRequest: {
          fields: { container_requests: repeated('ContainerPreferredAllocationRequest', 1) },
        },
        ContainerPreferredAllocationRequest: {
          fields: {
            available_deviceIDs: repeated('string', 1),
            must_include_deviceIDs: repeated('string', 2),
            allocation_size: scalar('int32', 3),
          },
        },
        PreferredAllocationResponse: {
          fields: { container_responses: repeated('ContainerPreferredAllocationResponse', 1) },
        },
        ContainerPreferredAllocationResponse: { fields: { deviceIDs: repeated('string', 1) } },
        AllocateRequest: { fields: { container_requests: repeated('ContainerAllocateRequest', 1) } },
        ContainerAllocateRequest: { fields: { devices_ids: repeated('string', 1) } },
        AllocateResponse: { fields: { container_responses: repeated('ContainerAllocateResponse', 1) } },
        ContainerAllocateResponse: {
          fields: {
            envs: map(1),
            mounts: repeated('Mount', 2),
            devices: repeated('DeviceSpec', 3),
            annotations: map(4),
            cdi_devices: repeated('CDIDevice', 5),
          },
        },
        CDIDevice: { fields: { name: scalar('string', 1) } },
        Mount: {
          fields: {
            container_path: scalar('string', 1),
            host_path: scalar('string', 2),
            read_only: scalar('bool', 3),
          },
        },
        DeviceSpec: {
          fields: {
            container_path: scalar('string', 1),
            host_path: scalar('string', 2),
            permissions: scalar('string', 3),
          },
        },
        Registration: {
          methods: { Register: rpc('RegisterRequest', 'Empty') },
        },
        DevicePlugin: {
          methods: {
            GetDevicePluginOptions: rpc('Empty', 'DevicePluginOptions'),
            ListAndWatch: rpc('Empty', 'ListAndWatchResponse', true),
            GetPreferredAllocation: rpc('PreferredAllocationRequest', 'PreferredAllocationResponse'),
            Allocate: rpc('AllocateRequest', 'AllocateResponse'),
            PreStartContainer: rpc('PreStartContainerRequest', 'PreStartContainerResponse'),
          },
        },
      },
    },
  },
};
