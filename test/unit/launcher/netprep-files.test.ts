// The network handshake's files between the launcher (in the pod) and the node daemon's netprep: NETWORK_REQUEST,
// NETWORK_READY, and how netprep reads and writes them in a run dir the pod controls. Also which interfaces netprep
// builds, from the VM alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LaunchVm } from '../../../operator/launcher/vm-env';
import { formatNetworkReady, parseNetworkReady, type NetworkReady } from '../../../operator/netprep/network-ready';
import {
  formatNetworkRequest,
  parseNetworkRequest,
  pendingNetworkRequest,
  readNetworkRequest,
} from '../../../operator/netprep/network-request';
import { planTapInterfaces } from '../../../operator/netprep/plan';
import { writeInRunDir } from '../../../operator/netprep/run-dir';

const ID = '0123456789abcdef0123456789abcdef';

const prepared: NetworkReady = {
  version: 1,
  request: ID,
  interfaces: {
    pod: {
      nic: { kind: 'tap', tap: 'tap-eth0', mac: '0a:58:0a:4d:00:02', mtu: 1400 },
      dhcp: {
        bridge: 'br-eth0',
        bridgeAddress: { address: '169.254.200.1', prefix: 30 },
        mac: '0a:58:0a:4d:00:02',
        ip: '10.77.0.2',
        prefix: 24,
        router: '10.77.0.1',
        routes: [{ destination: '0.0.0.0/0', gateway: '10.77.0.1' }, { destination: '10.79.0.0/16' }],
        mtu: 1400,
      },
    },
    l2: { nic: { kind: 'tap', tap: 'tap-net1', mac: '52:54:00:00:00:01', mtu: 9000 } },
  },
};

describe('NETWORK_READY', () => {
  it('round-trips what netprep writes: interfaces with TAP and lease, or one error line', () => {
    expect(parseNetworkReady(formatNetworkReady(prepared))).toEqual(prepared);
    const failed: NetworkReady = { version: 1, request: ID, error: 'interface pod: pod link eth0 does not exist' };
    expect(parseNetworkReady(formatNetworkReady(failed))).toEqual(failed);
    expect(parseNetworkReady('{"version":1,"interfaces":{}}')).toEqual({ version: 1, interfaces: {} });
    expect(parseNetworkReady('{"version":1,"error":"a\\n  b"}')).toEqual({ version: 1, error: 'a | b' });
  });

  it('refuses anything else, naming what is wrong', () => {
    const bad = (patch: (v: Record<string, unknown>) => void) => {
      const v = JSON.parse(formatNetworkReady(prepared)) as Record<string, unknown>;
      patch(v);
      return () => parseNetworkReady(JSON.stringify(v));
    };
    type Iface = { nic: Record<string, unknown>; dhcp: Record<string, unknown> };
    const pod = (v: Record<string, unknown>) => (v.interfaces as Record<string, Iface>).pod;
    expect(() => parseNetworkReady('not json')).toThrow('network-ready.json: not JSON');
    expect(bad((v) => (v.version = 2))).toThrow('network-ready.json: version must be 1');
    expect(bad((v) => (v.error = 'x'))).toThrow('the file has unknown keys interfaces');
    expect(bad((v) => (pod(v).nic.mac = 'zz:58:0a:4d:00:02'))).toThrow('interfaces.pod.nic.mac is not a MAC address');
    expect(bad((v) => (pod(v).nic.tap = 'tap-eth0-much-too-long'))).toThrow(
      'interfaces.pod.nic.tap is not an interface name',
    );
    expect(bad((v) => (pod(v).nic.tap = '../../x'))).toThrow('interfaces.pod.nic.tap is not an interface name');
    expect(bad((v) => (pod(v).nic.kind = 'vfio'))).toThrow('interfaces.pod.nic.kind must be tap');
    expect(bad((v) => (pod(v).dhcp.ip = '10.77.0.256'))).toThrow('interfaces.pod.dhcp.ip/prefix');
    expect(bad((v) => (pod(v).dhcp.routes = [{ destination: '10.0.0.0/33' }]))).toThrow(
      'interfaces.pod.dhcp.routes[0].destination is not an IPv4 CIDR',
    );
    expect(bad((v) => (pod(v).dhcp.routes = 'default'))).toThrow('interfaces.pod.dhcp.routes must be a list');
    expect(bad((v) => (pod(v).dhcp.extra = 1))).toThrow('interfaces.pod.dhcp has unknown keys extra');
    expect(bad((v) => (pod(v).nic.mtu = 10))).toThrow('interfaces.pod.nic.mtu is not an MTU');
  });
});

describe('NETWORK_REQUEST', () => {
  let runDir = '';
  beforeEach(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-netprep-'));
  });
  afterEach(() => fs.rmSync(runDir, { recursive: true, force: true }));

  it('carries only a random id', () => {
    expect(parseNetworkRequest(formatNetworkRequest(ID))).toBe(ID);
    expect(parseNetworkRequest('{"request":"short"}')).toBeUndefined();
    expect(parseNetworkRequest(`{"request":"${ID}","vm":{}}`)).toBeUndefined();
    expect(parseNetworkRequest('[]')).toBeUndefined();
  });

  it('is pending until NETWORK_READY answers that very request', () => {
    expect(pendingNetworkRequest(runDir)).toBeUndefined();
    fs.writeFileSync(path.join(runDir, 'network-request'), formatNetworkRequest(ID));
    expect(pendingNetworkRequest(runDir)).toBe(ID);
    fs.writeFileSync(
      path.join(runDir, 'network-ready.json'),
      formatNetworkReady({ ...prepared, request: 'f'.repeat(32) }),
    );
    expect(pendingNetworkRequest(runDir)).toBe(ID);
    writeInRunDir(runDir, 'network-ready.json', formatNetworkReady(prepared));
    expect(pendingNetworkRequest(runDir)).toBeUndefined();
  });

  it('is not read through a symlink the pod planted, nor when oversized', () => {
    const elsewhere = path.join(runDir, '..', `${path.basename(runDir)}-elsewhere`);
    fs.writeFileSync(elsewhere, formatNetworkRequest(ID));
    try {
      fs.symlinkSync(elsewhere, path.join(runDir, 'network-request'));
      expect(readNetworkRequest(runDir)).toBeUndefined();
    } finally {
      fs.rmSync(elsewhere, { force: true });
    }
    fs.rmSync(path.join(runDir, 'network-request'));
    fs.writeFileSync(path.join(runDir, 'network-request'), `{"request":"${ID}"}${' '.repeat(2000)}`);
    expect(readNetworkRequest(runDir)).toBeUndefined();
  });

  it('netprep writes its answer atomically and replaces a planted symlink instead of writing through it', () => {
    const target = path.join(runDir, '..', `${path.basename(runDir)}-host-file`);
    fs.writeFileSync(target, 'host data\n');
    try {
      fs.symlinkSync(target, path.join(runDir, 'network-ready.json'));
      writeInRunDir(runDir, 'network-ready.json', formatNetworkReady(prepared));
      expect(fs.readFileSync(target, 'utf8')).toBe('host data\n');
      expect(fs.lstatSync(path.join(runDir, 'network-ready.json')).isFile()).toBe(true);
      expect(parseNetworkReady(fs.readFileSync(path.join(runDir, 'network-ready.json'), 'utf8'))).toEqual(prepared);
      expect(fs.readdirSync(runDir)).toEqual(['network-ready.json']);
    } finally {
      fs.rmSync(target, { force: true });
    }
    expect(() => writeInRunDir(runDir, '../escape', 'x')).toThrow('not a plain file name');
  });
});

describe('netprep plan', () => {
  const vm = (interfaces: unknown[], networks: unknown[]): LaunchVm =>
    ({ metadata: { name: 'vm1' }, spec: { instance: { interfaces }, networks } }) as unknown as LaunchVm;

  it('builds bridge and masquerade interfaces only, named after their pod links', () => {
    const plans = planTapInterfaces(
      vm(
        [
          { name: 'pod', masquerade: { ports: [{ port: 80 }] } },
          { name: 'l2', bridge: {} },
          { name: 'vf', sriov: {} },
        ],
        [
          { name: 'pod', pod: {} },
          { name: 'l2', multus: { networkName: 'l2' } },
          { name: 'vf', multus: { networkName: 'vf' } },
        ],
      ),
    );
    expect(plans).toEqual([
      expect.objectContaining({
        binding: 'masquerade',
        name: 'pod',
        link: 'eth0',
        bridge: 'br-eth0',
        tap: 'tap-eth0',
        cidr: { network: '10.0.2.0', prefix: 30 },
        ports: [{ port: 80 }],
        mac: expect.stringMatching(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/),
      }),
      expect.objectContaining({ binding: 'bridge', name: 'l2', link: 'net1', networkIndex: 1, tap: 'tap-net1' }),
    ]);
  });

  it('forwards no port when masquerade lists none, and refuses what it cannot build', () => {
    const [plan] = planTapInterfaces(vm([{ name: 'pod', masquerade: {} }], [{ name: 'pod', pod: {} }]));
    expect(plan).toMatchObject({ binding: 'masquerade', ports: [] });
    expect(() =>
      planTapInterfaces(vm([{ name: 'pod', masquerade: { cidr: '10.0.2.0/31' } }], [{ name: 'pod', pod: {} }])),
    ).toThrow('spec.instance.interfaces[0] (pod): masquerade.cidr 10.0.2.0/31 is smaller than a /30');
    expect(() => planTapInterfaces(vm([{ name: 'x' }], []))).toThrow(
      'spec.instance.interfaces[0] (x): no network named x in spec.networks',
    );
  });
});
