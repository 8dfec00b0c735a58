// The embedded v1beta1 descriptor against api.proto's wire format: bytes built by hand from the upstream field
// numbers (not by protobufjs), so a wrong number, type or nesting in device-plugin-proto.ts fails here.
import {
  apiMethod,
  devicePluginService,
  registrationService,
  type AllocateRequest,
  type AllocateResponse,
  type ListAndWatchResponse,
  type PreferredAllocationRequest,
  type RegisterRequest,
} from '../../../operator/daemon/device-plugin-api';

// --- a minimal protobuf writer: varint and length-delimited fields ------------------------------------------
const varint = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
};
const tag = (field: number, wireType: number) => varint((field << 3) | wireType);
const int = (field: number, n: number) => [...tag(field, 0), ...varint(n)];
const bytes = (field: number, payload: number[]) => [...tag(field, 2), ...varint(payload.length), ...payload];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);
const msg = (field: number, ...parts: number[][]) => bytes(field, parts.flat());
const wire = (...parts: number[][]) => Buffer.from(parts.flat());

test('services and methods have the upstream paths, and ListAndWatch streams its responses', () => {
  expect(registrationService.Register.path).toBe('/v1beta1.Registration/Register');
  expect(Object.values(devicePluginService).map((m) => [m.path, m.requestStream, m.responseStream])).toEqual([
    ['/v1beta1.DevicePlugin/GetDevicePluginOptions', false, false],
    ['/v1beta1.DevicePlugin/ListAndWatch', false, true],
    ['/v1beta1.DevicePlugin/GetPreferredAllocation', false, false],
    ['/v1beta1.DevicePlugin/Allocate', false, false],
    ['/v1beta1.DevicePlugin/PreStartContainer', false, false],
  ]);
});

test('RegisterRequest: version 1, endpoint 2, resource_name 3, options 4 {pre_start_required 1, get_preferred_allocation_available 2}', () => {
  const request: RegisterRequest = {
    version: 'v1beta1',
    endpoint: 'kubevisor-kvm.sock',
    resource_name: 'devices.kubevisor.io/kvm',
    options: { pre_start_required: true, get_preferred_allocation_available: true },
  };
  const register = apiMethod<RegisterRequest, unknown>(registrationService, 'Register');
  expect(register.serialize(request)).toEqual(
    wire(
      str(1, 'v1beta1'),
      str(2, 'kubevisor-kvm.sock'),
      str(3, 'devices.kubevisor.io/kvm'),
      msg(4, int(1, 1), int(2, 1)),
    ),
  );
  expect(registrationService.Register.requestDeserialize(register.serialize(request))).toEqual(request);
});

test('ListAndWatchResponse: devices 1 {ID 1, health 2, topology 3 {nodes 1 {ID 1 (int64)}}}', () => {
  const bytesOnWire = wire(
    msg(1, str(1, 'kvm-0'), str(2, 'Healthy'), msg(3, msg(1, int(1, 1)))),
    msg(1, str(1, 'kvm-1'), str(2, 'Unhealthy')),
  );
  const decoded = apiMethod<unknown, ListAndWatchResponse>(devicePluginService, 'ListAndWatch').deserialize(
    bytesOnWire,
  );
  expect(decoded).toEqual({
    devices: [
      { ID: 'kvm-0', health: 'Healthy', topology: { nodes: [{ ID: '1' }] } },
      { ID: 'kvm-1', health: 'Unhealthy', topology: null },
    ],
  });
});

test('AllocateRequest: container_requests 1 {devices_ids 1}', () => {
  const decoded = devicePluginService.Allocate.requestDeserialize(
    wire(msg(1, str(1, 'kvm-1'), str(1, 'kvm-2')), msg(1, str(1, 'kvm-3'))),
  );
  expect(decoded).toEqual<AllocateRequest>({
    container_requests: [{ devices_ids: ['kvm-1', 'kvm-2'] }, { devices_ids: ['kvm-3'] }],
  });
});

test('AllocateResponse: container_responses 1 {envs 1, mounts 2, devices 3, annotations 4, cdi_devices 5}', () => {
  const response: AllocateResponse = {
    container_responses: [
      {
        envs: { K: 'V' },
        mounts: [{ container_path: '/c', host_path: '/h', read_only: true }],
        devices: [{ container_path: '/dev/kvm', host_path: '/dev/kvm', permissions: 'rw' }],
        annotations: { A: 'B' },
        cdi_devices: [{ name: 'vendor.com/x=y' }],
      },
    ],
  };
  const container = [
    msg(1, str(1, 'K'), str(2, 'V')),
    msg(2, str(1, '/c'), str(2, '/h'), int(3, 1)),
    msg(3, str(1, '/dev/kvm'), str(2, '/dev/kvm'), str(3, 'rw')),
    msg(4, str(1, 'A'), str(2, 'B')),
    msg(5, str(1, 'vendor.com/x=y')),
  ];
  const encoded = devicePluginService.Allocate.responseSerialize(response);
  expect(encoded).toEqual(wire(msg(1, ...container)));
  expect(apiMethod<unknown, AllocateResponse>(devicePluginService, 'Allocate').deserialize(encoded)).toEqual(response);
});

test('PreferredAllocationRequest/Response: available_deviceIDs 1, must_include_deviceIDs 2, allocation_size 3; deviceIDs 1', () => {
  expect(
    devicePluginService.GetPreferredAllocation.requestDeserialize(
      wire(msg(1, str(1, 'a'), str(1, 'b'), str(2, 'b'), int(3, 1))),
    ),
  ).toEqual<PreferredAllocationRequest>({
    container_requests: [{ available_deviceIDs: ['a', 'b'], must_include_deviceIDs: ['b'], allocation_size: 1 }],
  });
  expect(
    devicePluginService.GetPreferredAllocation.responseSerialize({ container_responses: [{ deviceIDs: ['b'] }] }),
  ).toEqual(wire(msg(1, str(1, 'b'))));
});

test('DevicePluginOptions and PreStartContainerRequest: bools 1 and 2; devices_ids 1', () => {
  expect(
    devicePluginService.GetDevicePluginOptions.responseSerialize({
      pre_start_required: true,
      get_preferred_allocation_available: true,
    }),
  ).toEqual(wire(int(1, 1), int(2, 1)));
  expect(devicePluginService.PreStartContainer.requestDeserialize(wire(str(1, 'tun-7')))).toEqual({
    devices_ids: ['tun-7'],
  });
});
