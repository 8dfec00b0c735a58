// The device plugins end to end in one process, against the kubelet registration stand-in on real unix sockets:
// registration, ListAndWatch health, Allocate, kubelet restarts, retries and clean-up. The device nodes are regular
// files in a temp devRoot with the check injected (device-plugin-health.test.ts says why).
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logVerbosity, setLogVerbosity, status } from '@grpc/grpc-js';
import { HEALTHY } from '../../../operator/daemon/device-plugin-api';
import {
  startDevicePlugins,
  type DevicePlugins,
  type DevicePluginsOptions,
  type DevicePluginStatus,
} from '../../../operator/daemon/device-plugin';
import { silentLogger } from '../../../operator/kube/log';
import { KVM_RESOURCE, TUN_RESOURCE } from '../../../operator/pod-layout';
import { allHealthy, allUnhealthy, DeviceListWatch } from '../../support/kubelet-registration-devices';
import { KubeletRegistrationStandin, waitFor } from '../../support/kubelet-registration-standin';

// grpc-js logs failed binds (the tests provoke some) to the console; the plugins report them in status().
setLogVerbosity(logVerbosity.NONE);

let root: string;
let pluginDir: string;
let devRoot: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kubevisor-dp-'));
  pluginDir = path.join(root, 'plugins');
  devRoot = path.join(root, 'dev');
  fs.mkdirSync(path.join(devRoot, 'net'), { recursive: true });
  fs.writeFileSync(path.join(devRoot, 'kvm'), '');
  fs.writeFileSync(path.join(devRoot, 'net', 'tun'), '');
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  fs.rmSync(root, { recursive: true, force: true });
});

const isRegularFile = (p: string) => {
  try {
    return fs.lstatSync(p).isFile();
  } catch {
    return false;
  }
};

async function kubelet(options: { refuseFirst?: number } = {}): Promise<KubeletRegistrationStandin> {
  const standin = await KubeletRegistrationStandin.start({ pluginDir, ...options });
  cleanups.push(() => standin.stop());
  return standin;
}

async function plugins(options: DevicePluginsOptions = {}): Promise<DevicePlugins> {
  const started = await startDevicePlugins({
    pluginDir,
    devRoot,
    logger: silentLogger,
    checkDeviceNode: isRegularFile,
    retry: { initialMs: 20, maxMs: 200 },
    ...options,
  });
  cleanups.push(() => started.stop());
  return started;
}

function watch(standin: KubeletRegistrationStandin, endpoint: string): DeviceListWatch {
  const list = new DeviceListWatch(standin.dial(endpoint));
  cleanups.push(() => list.close());
  return list;
}

/** Waits until status() satisfies `predicate` (re-checked on every change). */
function until(handle: DevicePlugins, predicate: (status: DevicePluginStatus[]) => boolean, what: string) {
  const events = new EventEmitter();
  const off = handle.onChange(() => events.emit('change'));
  return waitFor(
    events,
    () => (predicate(handle.status()) ? true : undefined),
    5000,
    () => what,
  ).finally(off);
}

const socketAt = (name: string) => {
  try {
    return fs.lstatSync(path.join(pluginDir, name)).isSocket();
  } catch {
    return false;
  }
};

test('registers kvm and tun with the kubelet, then serves 1000 healthy devices each', async () => {
  const standin = await kubelet();
  const handle = await plugins();

  const kvm = await standin.waitForRegistration(KVM_RESOURCE);
  const tun = await standin.waitForRegistration(TUN_RESOURCE);
  const options = { pre_start_required: false, get_preferred_allocation_available: false };
  expect(kvm.request).toEqual({
    version: 'v1beta1',
    endpoint: 'kubevisor-kvm.sock',
    resource_name: KVM_RESOURCE,
    options,
  });
  expect(tun.request).toEqual({
    version: 'v1beta1',
    endpoint: 'kubevisor-tun.sock',
    resource_name: TUN_RESOURCE,
    options,
  });
  expect(socketAt('kubevisor-kvm.sock') && socketAt('kubevisor-tun.sock')).toBe(true);

  expect(await standin.dial(kvm.request.endpoint).getDevicePluginOptions()).toEqual(options);
  const kvmList = await watch(standin, kvm.request.endpoint).next(allHealthy(1000));
  expect(kvmList.map((d) => d.ID)).toEqual(Array.from({ length: 1000 }, (_, i) => `kvm-${i}`));
  const tunList = await watch(standin, tun.request.endpoint).next(allHealthy(1000));
  expect(tunList[999]).toEqual({ ID: 'tun-999', health: HEALTHY, topology: null });

  await until(handle, (s) => s.every((p) => p.watchers === 1), 'one watcher each');
  expect(handle.status()).toEqual([
    {
      resourceName: KVM_RESOURCE,
      endpoint: 'kubevisor-kvm.sock',
      hostPath: '/dev/kvm',
      devices: 1000,
      healthy: true,
      serving: true,
      registered: true,
      registrations: 1,
      watchers: 1,
      lastError: undefined,
    },
    expect.objectContaining({ resourceName: TUN_RESOURCE, hostPath: '/dev/net/tun', healthy: true }),
  ]);
});

test('ListAndWatch sends the list again whenever the device node appears or disappears', async () => {
  const standin = await kubelet();
  const handle = await plugins({ deviceCount: 3 });
  const kvm = watch(standin, 'kubevisor-kvm.sock');
  const tun = watch(standin, 'kubevisor-tun.sock');
  await kvm.next(allHealthy(3));
  await tun.next(allHealthy(3));

  fs.rmSync(path.join(devRoot, 'kvm'));
  await kvm.next(allUnhealthy(3), { from: 1 });
  await until(handle, (s) => s[0]?.healthy === false, 'kvm unhealthy');
  fs.writeFileSync(path.join(devRoot, 'kvm'), '');
  await kvm.next(allHealthy(3), { from: 2 });

  // /dev/net goes away with the node in it, then comes back.
  fs.rmSync(path.join(devRoot, 'net'), { recursive: true });
  await tun.next(allUnhealthy(3), { from: 1 });
  fs.mkdirSync(path.join(devRoot, 'net'));
  fs.writeFileSync(path.join(devRoot, 'net', 'tun'), '');
  await tun.next(allHealthy(3), { from: 2 });

  // Nothing but changes: exactly one list per transition.
  expect(kvm.lists).toHaveLength(3);
  expect(tun.lists).toHaveLength(3);
});

test('Allocate answers with the DeviceSpec per container and refuses unknown ids', async () => {
  const standin = await kubelet();
  await plugins();
  const kvm = standin.dial('kubevisor-kvm.sock');
  const tun = standin.dial('kubevisor-tun.sock');
  const rest = { envs: {}, mounts: [], annotations: {}, cdi_devices: [] };

  expect(await kvm.allocate({ container_requests: [{ devices_ids: ['kvm-7'] }, { devices_ids: ['kvm-8'] }] })).toEqual({
    container_responses: [
      { ...rest, devices: [{ container_path: '/dev/kvm', host_path: '/dev/kvm', permissions: 'rw' }] },
      { ...rest, devices: [{ container_path: '/dev/kvm', host_path: '/dev/kvm', permissions: 'rw' }] },
    ],
  });
  expect(await tun.allocate({ container_requests: [{ devices_ids: ['tun-0', 'tun-999'] }] })).toEqual({
    container_responses: [
      {
        ...rest,
        devices: [{ container_path: '/dev/net/tun', host_path: '/dev/net/tun', permissions: 'rw' }],
      },
    ],
  });

  await expect(kvm.allocate({ container_requests: [{ devices_ids: ['kvm-1000'] }] })).rejects.toMatchObject({
    code: status.INVALID_ARGUMENT,
    details: `${KVM_RESOURCE}: unknown device id "kvm-1000" in container request 0 (this plugin serves kvm-0 … kvm-999)`,
  });
  await expect(tun.allocate({ container_requests: [{ devices_ids: ['kvm-1'] }] })).rejects.toMatchObject({
    code: status.INVALID_ARGUMENT,
  });

  // A node that vanished is not handed out, even before the watch reported it.
  fs.rmSync(path.join(devRoot, 'kvm'));
  await expect(kvm.allocate({ container_requests: [{ devices_ids: ['kvm-1'] }] })).rejects.toMatchObject({
    code: status.FAILED_PRECONDITION,
    details: `${KVM_RESOURCE}: host device ${path.join(devRoot, 'kvm')} is missing or not a character device`,
  });

  expect(await kvm.preStartContainer({ devices_ids: ['kvm-1'] })).toEqual({});
  expect(
    await kvm.getPreferredAllocation({
      container_requests: [{ available_deviceIDs: ['kvm-1', 'kvm-2'], must_include_deviceIDs: [], allocation_size: 1 }],
    }),
  ).toEqual({ container_responses: [{ deviceIDs: ['kvm-1'] }] });
});

test('ListAndWatch streams are capped: the kubelet needs one, 16 are allowed, more are refused', async () => {
  const standin = await kubelet();
  const handle = await plugins({ deviceCount: 1 });
  const client = standin.dial('kubevisor-kvm.sock');
  const open: DeviceListWatch[] = [];
  for (let i = 0; i < 16; i += 1) {
    const list = new DeviceListWatch(client);
    cleanups.push(() => list.close());
    open.push(list);
  }
  await Promise.all(open.map((list) => list.next(allHealthy(1))));
  const refused = new DeviceListWatch(client);
  cleanups.push(() => refused.close());
  await expect(refused.next(() => true)).rejects.toThrow(/RESOURCE_EXHAUSTED: too many ListAndWatch streams/);
  expect(handle.status()[0]?.watchers).toBe(16);
  // A cancelled stream frees its place.
  open[0]?.close();
  await until(handle, (s) => s[0]?.watchers === 15, 'a place freed');
  await watch(standin, 'kubevisor-kvm.sock').next(allHealthy(1));
});

test('after a kubelet restart (sockets deleted, kubelet.sock recreated) the plugins serve and register again', async () => {
  const standin = await kubelet();
  const handle = await plugins({ deviceCount: 2 });
  await standin.waitForRegistration(KVM_RESOURCE);
  await standin.waitForRegistration(TUN_RESOURCE);
  const before = watch(standin, 'kubevisor-kvm.sock');
  await before.next(allHealthy(2));

  await standin.restart();
  await standin.waitForRegistration(KVM_RESOURCE, { incarnation: 2 });
  await standin.waitForRegistration(TUN_RESOURCE, { incarnation: 2 });
  await until(handle, (s) => s.every((p) => p.registrations === 2 && p.registered && p.serving), 'registered twice');
  expect(socketAt('kubevisor-kvm.sock') && socketAt('kubevisor-tun.sock')).toBe(true);

  // The old stream died with the old server; the new kubelet gets a fresh one.
  await expect(before.next(() => false)).rejects.toThrow(/ended/);
  await watch(standin, 'kubevisor-kvm.sock').next(allHealthy(2));
  await watch(standin, 'kubevisor-tun.sock').next(allHealthy(2));

  // Twice more, back to back: still exactly one registration per resource and kubelet.
  await standin.restart();
  await standin.restart();
  await standin.waitForRegistration(KVM_RESOURCE, { incarnation: 4 });
  await standin.waitForRegistration(TUN_RESOURCE, { incarnation: 4 });
  await until(handle, (s) => s.every((p) => p.registered), 'registered with the fourth kubelet');
  expect(standin.registrations.filter((r) => r.incarnation === 4)).toHaveLength(2);
});

test('a kubelet that is not up yet: serving at once, registered as soon as kubelet.sock appears', async () => {
  fs.mkdirSync(pluginDir);
  const handle = await plugins();
  expect(handle.status().map((p) => [p.serving, p.registered, p.registrations])).toEqual([
    [true, false, 0],
    [true, false, 0],
  ]);
  // No retry timer runs while there is no kubelet: only the directory watch can bring the registration.
  const standin = await kubelet();
  await until(handle, (s) => s.every((p) => p.registered), 'registered once the kubelet came');
  expect(standin.attempts).toBe(2);
});

test('no plugin directory yet: registered once the kubelet creates it', async () => {
  const handle = await plugins();
  expect(handle.status().map((p) => [p.serving, p.registered])).toEqual([
    [false, false],
    [false, false],
  ]);
  expect(handle.status()[0]?.lastError).toMatch(/^serve: /);
  const standin = await kubelet();
  await until(handle, (s) => s.every((p) => p.registered && p.serving), 'registered once the directory came');
  await watch(standin, 'kubevisor-kvm.sock').next(allHealthy(1000));
});

test('a refused Register is retried with backoff, never in a tight loop', async () => {
  const standin = await kubelet({ refuseFirst: Number.MAX_SAFE_INTEGER });
  const started = performance.now();
  const handle = await plugins({ retry: { initialMs: 50, maxMs: 200 } });
  // Four attempts per plugin: the first at once, then after delays of at least 25, 50 and 100 ms (half of 50, 100
  // and 200: the jitter only shortens). A slow machine only makes this take longer, never shorter.
  await standin.waitForAttempts(8);
  expect(performance.now() - started).toBeGreaterThanOrEqual(175);
  expect(handle.status().map((p) => [p.registered, p.lastError])).toEqual([
    [false, expect.stringMatching(/^register: 2 UNKNOWN: refused by the stand-in/)],
    [false, expect.stringMatching(/^register: 2 UNKNOWN: refused by the stand-in/)],
  ]);
  // From now on every delay is 100–200 ms: in the next 300 ms at most three more attempts each.
  const attempts = standin.attempts;
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(standin.attempts - attempts).toBeLessThanOrEqual(6);
});

test('after refusals the registration goes through and the error is cleared', async () => {
  const standin = await kubelet({ refuseFirst: 3 });
  const handle = await plugins();
  await until(handle, (s) => s.every((p) => p.registered), 'registered after refusals');
  expect(standin.attempts).toBe(5);
  expect(handle.status().map((p) => [p.registrations, p.lastError])).toEqual([
    [1, undefined],
    [1, undefined],
  ]);
});

test('the plugin directory removed and created again: serving and registered again', async () => {
  const first = await kubelet();
  const handle = await plugins();
  await until(handle, (s) => s.every((p) => p.registered), 'registered');
  await first.stop();
  fs.rmSync(pluginDir, { recursive: true });
  await until(handle, (s) => s.every((p) => !p.registered), 'kubelet gone');

  const second = await kubelet();
  await second.waitForRegistration(KVM_RESOURCE);
  await second.waitForRegistration(TUN_RESOURCE);
  await watch(second, 'kubevisor-tun.sock').next(allHealthy(1000));
});

test('whatever is in the way of its socket is removed, never followed; other entries are left alone', async () => {
  fs.mkdirSync(pluginDir);
  const outside = path.join(root, 'outside.txt');
  fs.writeFileSync(outside, 'keep me');
  fs.symlinkSync(outside, path.join(pluginDir, 'kubevisor-kvm.sock'));
  fs.writeFileSync(path.join(pluginDir, 'kubevisor-tun.sock'), 'stale');
  fs.writeFileSync(path.join(pluginDir, 'other-vendor.sock'), '');
  const standin = await kubelet();
  const handle = await plugins();
  await until(handle, (s) => s.every((p) => p.registered), 'registered');
  expect(socketAt('kubevisor-kvm.sock') && socketAt('kubevisor-tun.sock')).toBe(true);
  expect(fs.readFileSync(outside, 'utf8')).toBe('keep me');
  await watch(standin, 'kubevisor-kvm.sock').next(allHealthy(1000));

  await handle.stop();
  expect(fs.readdirSync(pluginDir).sort()).toEqual(['kubelet.sock', 'other-vendor.sock']);
});

test('a directory named like its socket is reported, not removed, and retried', async () => {
  fs.mkdirSync(path.join(pluginDir, 'kubevisor-kvm.sock'), { recursive: true });
  await kubelet();
  const handle = await plugins();
  expect(handle.status()[0]).toMatchObject({ serving: false, registered: false });
  expect(handle.status()[0]?.lastError).toMatch(/is a directory/);
  expect(handle.status()[1]).toMatchObject({ serving: true, registered: true });
  fs.rmdirSync(path.join(pluginDir, 'kubevisor-kvm.sock'));
  await until(handle, (s) => s[0]?.registered === true, 'kvm registered once the directory is gone');
});

test('stop() ends the streams, removes its sockets, leaves kubelet.sock, and is idempotent', async () => {
  const standin = await kubelet();
  const handle = await plugins();
  const list = watch(standin, 'kubevisor-kvm.sock');
  await list.next(allHealthy(1000));

  await Promise.all([handle.stop(), handle.stop()]);
  await handle.stop();
  await expect(list.next(() => false)).rejects.toThrow(/ended/);
  expect(fs.readdirSync(pluginDir)).toEqual(['kubelet.sock']);
  expect(handle.status().map((p) => [p.serving, p.watchers])).toEqual([
    [false, 0],
    [false, 0],
  ]);
  // Stopped means stopped: a kubelet restart brings nothing back.
  await standin.restart();
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(fs.readdirSync(pluginDir)).toEqual(['kubelet.sock']);
  expect(standin.registrations).toHaveLength(2);
});

test('deviceCount must be an integer from 1 to 10000', async () => {
  for (const deviceCount of [0, 1.5, 10_001, Number.NaN]) {
    await expect(startDevicePlugins({ pluginDir, devRoot, deviceCount })).rejects.toThrow(RangeError);
  }
  expect(fs.existsSync(pluginDir)).toBe(false);
});
