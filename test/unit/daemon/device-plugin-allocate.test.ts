// Allocate's answers and refusals, and the device list, as pure functions.
import { status } from '@grpc/grpc-js';
import {
  allocate,
  deviceIds,
  deviceList,
  DevicePluginError,
  preferredAllocation,
  type DeviceResource,
} from '../../../operator/daemon/device-plugin-allocate';
import { deviceResources } from '../../../operator/daemon/device-plugin';

const [kvm, tun] = deviceResources('/host/dev') as [DeviceResource, DeviceResource];
const known = new Set(deviceIds(kvm, 1000));

function refusal(run: () => unknown): DevicePluginError {
  try {
    run();
  } catch (error) {
    if (error instanceof DevicePluginError) return error;
    throw error;
  }
  throw new Error('expected a DevicePluginError');
}

// The health check looks under devRoot (the host's /dev as mounted in the daemon's container); the DeviceSpec names the
// host's own path, which the container runtime opens on the host.
test('the resources: kvm and tun, checked under devRoot, handed out as the host paths, rw', () => {
  expect(deviceResources('/host/dev')).toEqual([
    {
      resourceName: 'devices.kubevisor.io/kvm',
      name: 'kvm',
      watchPath: '/host/dev/kvm',
      hostPath: '/dev/kvm',
      containerPath: '/dev/kvm',
      permissions: 'rw',
    },
    {
      resourceName: 'devices.kubevisor.io/tun',
      name: 'tun',
      watchPath: '/host/dev/net/tun',
      hostPath: '/dev/net/tun',
      containerPath: '/dev/net/tun',
      permissions: 'rw',
    },
  ]);
  expect(deviceResources()[0]?.watchPath).toBe('/dev/kvm');
});

test('device ids are <name>-0 … <name>-<n-1>, all with the one health of the host node', () => {
  const ids = deviceIds(tun, 3);
  expect(ids).toEqual(['tun-0', 'tun-1', 'tun-2']);
  expect(deviceList(ids, true)).toEqual([
    { ID: 'tun-0', health: 'Healthy' },
    { ID: 'tun-1', health: 'Healthy' },
    { ID: 'tun-2', health: 'Healthy' },
  ]);
  expect(deviceList(ids, false).map((d) => d.health)).toEqual(['Unhealthy', 'Unhealthy', 'Unhealthy']);
});

test('Allocate answers each container request with the one DeviceSpec of the host node', () => {
  const spec = { container_path: '/dev/kvm', host_path: '/dev/kvm', permissions: 'rw' };
  const empty = { envs: {}, mounts: [], annotations: {}, cdi_devices: [] };
  expect(
    allocate(kvm, known, { container_requests: [{ devices_ids: ['kvm-3'] }, { devices_ids: ['kvm-998', 'kvm-999'] }] }),
  ).toEqual({
    container_responses: [
      { ...empty, devices: [spec] },
      { ...empty, devices: [spec] },
    ],
  });
});

test('Allocate refuses unknown ids with INVALID_ARGUMENT, naming the id and what is served', () => {
  const error = refusal(() =>
    allocate(kvm, known, { container_requests: [{ devices_ids: ['kvm-1'] }, { devices_ids: ['kvm-1', 'gpu-0'] }] }),
  );
  expect(error.code).toBe(status.INVALID_ARGUMENT);
  expect(error.message).toBe(
    'devices.kubevisor.io/kvm: unknown device id "gpu-0" in container request 1 (this plugin serves kvm-0 … kvm-999)',
  );
  // Another resource's ids are unknown too, and an overlong id is cut in the message.
  expect(refusal(() => allocate(kvm, known, { container_requests: [{ devices_ids: ['tun-0'] }] })).message).toContain(
    '"tun-0"',
  );
  const long = 'x'.repeat(10_000);
  expect(
    refusal(() => allocate(kvm, known, { container_requests: [{ devices_ids: [long] }] })).message.length,
  ).toBeLessThan(200);
});

test('Allocate refuses requests that name no device', () => {
  expect(refusal(() => allocate(kvm, known, { container_requests: [] })).code).toBe(status.INVALID_ARGUMENT);
  expect(refusal(() => allocate(kvm, known, { container_requests: [{ devices_ids: [] }] })).message).toBe(
    'devices.kubevisor.io/kvm: container request 0 names no device',
  );
});

test('a preferred allocation takes the must-include ids, then available ones, up to the size', () => {
  expect(
    preferredAllocation({
      container_requests: [
        { available_deviceIDs: ['kvm-0', 'kvm-1', 'kvm-2'], must_include_deviceIDs: ['kvm-2'], allocation_size: 2 },
        { available_deviceIDs: ['kvm-5'], must_include_deviceIDs: [], allocation_size: 4 },
      ],
    }),
  ).toEqual({ container_responses: [{ deviceIDs: ['kvm-2', 'kvm-0'] }, { deviceIDs: ['kvm-5'] }] });
});
