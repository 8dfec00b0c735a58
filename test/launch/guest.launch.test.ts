/**
 * Proves the launch suite's guest fixture on its own, without the launcher: a hand-built "VM pod"
 * namespace (bridge + tap + dnsmasq, as Virtink's bridge binding builds it) and a peer namespace
 * behind a veth. A real guest must get its lease, MTU and classless routes from dnsmasq, read its
 * NoCloud disk, reach the peer, and be reachable from it; a guest nobody answers must say so and
 * still finish. If this suite fails, launcher tests that use the guest cannot be trusted.
 *
 * Needs root (namespaces, taps) and the fixture: tools/guest/build.sh.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GuestResult, NetnsProcess } from './guest';
import {
  bootGuest,
  deleteNetns,
  guestFixture,
  httpGetInNetns,
  makeCidataIso,
  makeNetns,
  runGuest,
  serialTail,
  startInNetns,
} from './guest';

const podNs = `kvg-pod-${process.pid}`;
const peerNs = `kvg-peer-${process.pid}`;
const tap = 'tap0';
const mtu = 1400;
const bridgeIp = '10.99.0.1';
const guestIp = '10.99.0.2';
const podNet = '10.99.0.0/24';
const guestMac = '52:54:00:6b:76:01';
/** No dhcp-host entry and a static-only range: dnsmasq never answers this MAC. */
const strangerMac = '52:54:00:6b:76:02';
const podPeerSideIp = '10.98.0.1';
const peerIp = '10.98.0.2';
const peerNet = '10.98.0.0/24';
const dnsServer = '10.96.0.10';
const searchDomain = 'default.svc.cluster.local';
const httpPort = 8080;

const userData = '#cloud-config\nhostname: kv-guest\nruncmd:\n  - echo hello from user-data\n';
const instanceId = 'iid-kv-guest-0001';
const metaData = `instance-id: ${instanceId}\nlocal-hostname: kv-guest\n`;

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 20_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}
const ipIn = (netns: string, ...args: string[]): Promise<string> => run('ip', ['-n', netns, ...args]);

/** A guest that did not finish, or reported an error, fails with its serial log in the message. */
function expectFinishedCleanly(result: GuestResult): void {
  if (!result.done || result.errors.length > 0) {
    throw new Error(
      `guest did not finish cleanly: done=${result.done} errors=${JSON.stringify(result.errors)}` +
        ` timedOut=${result.timedOut}\n${serialTail(result)}`,
    );
  }
}

async function waitForFile(file: string, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fs.existsSync(file) && pattern.test(fs.readFileSync(file, 'utf8'))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '(missing)';
  throw new Error(`no ${pattern} in ${file} within ${timeoutMs} ms:\n${text}`);
}

describe('launch guest fixture', () => {
  let tmp = '';
  let iso = '';
  let dnsmasq: NetnsProcess | undefined;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('the launch suite needs root (network namespaces and taps)');
    guestFixture(); // fails first, with how to build it
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-guest-test-'));
    iso = makeCidataIso(tmp, { 'user-data': userData, 'meta-data': metaData });

    // The "VM pod": a bridge holding the gateway address, the guest's tap on it, forwarding on.
    await makeNetns(podNs);
    await makeNetns(peerNs);
    await ipIn(podNs, 'link', 'add', 'br0', 'mtu', String(mtu), 'type', 'bridge');
    await ipIn(podNs, 'addr', 'add', `${bridgeIp}/24`, 'dev', 'br0');
    await ipIn(podNs, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    await ipIn(podNs, 'link', 'set', tap, 'mtu', String(mtu), 'master', 'br0', 'up');
    await ipIn(podNs, 'link', 'set', 'br0', 'up');
    await run('ip', ['netns', 'exec', podNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // The peer: another namespace reached only through the pod, on a network the guest can route to
    // only by the classless route dnsmasq hands out (or the default route after it).
    await ipIn(podNs, 'link', 'add', 'vpeer', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peerNs);
    await ipIn(podNs, 'addr', 'add', `${podPeerSideIp}/24`, 'dev', 'vpeer');
    await ipIn(podNs, 'link', 'set', 'vpeer', 'up');
    await ipIn(peerNs, 'addr', 'add', `${peerIp}/24`, 'dev', 'eth0');
    await ipIn(peerNs, 'link', 'set', 'eth0', 'up');
    await ipIn(peerNs, 'route', 'add', podNet, 'via', podPeerSideIp);

    // DHCP as Virtink's bridge binding configures it: DHCP only, one fixed host, router, option 121
    // (specific first, default last), MTU, DNS and search domains.
    const conf = path.join(tmp, 'dnsmasq.conf');
    fs.writeFileSync(
      conf,
      [
        'port=0',
        'interface=br0',
        'bind-interfaces',
        'dhcp-authoritative',
        `dhcp-range=${guestIp},static,255.255.255.0`,
        `dhcp-host=${guestMac},${guestIp},infinite`,
        `dhcp-option=option:router,${bridgeIp}`,
        `dhcp-option=option:classless-static-route,${peerNet},${bridgeIp},0.0.0.0/0,${bridgeIp}`,
        `dhcp-option=option:mtu,${mtu}`,
        `dhcp-option=option:dns-server,${dnsServer}`,
        `dhcp-option=option:domain-search,${searchDomain}`,
        `dhcp-leasefile=${path.join(tmp, 'dnsmasq.leases')}`,
        `pid-file=${path.join(tmp, 'dnsmasq.pid')}`,
        'log-dhcp',
        'log-facility=-',
        '',
      ].join('\n'),
    );
    const log = path.join(tmp, 'dnsmasq.log');
    const binary = fs.existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq';
    dnsmasq = startInNetns(podNs, [binary, `--conf-file=${conf}`, '--no-daemon'], log);
    await waitForFile(log, /sockets bound exclusively to interface br0/, 10_000);
  }, 120_000);

  afterAll(async () => {
    await dnsmasq?.stop();
    await deleteNetns(podNs);
    await deleteNetns(peerNs);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('gets its lease, MTU and routes by DHCP, reads cidata, reaches the peer and is reachable (microvm)', async () => {
    const guest = bootGuest({
      netns: podNs,
      tap,
      mac: guestMac,
      disks: [iso],
      peers: [peerIp],
      httpPort,
      holdSeconds: 120,
      timeoutMs: 240_000,
    });
    try {
      await guest.waitFor('http');
      const body = await httpGetInNetns(peerNs, `http://${guestIp}:${httpPort}/`);
      expect(body).toBe(`kv-guest instance-id=${instanceId} ip=${guestIp}\n`);
      // Lets the guest finish now instead of after holdSeconds.
      expect(await httpGetInNetns(peerNs, `http://${guestIp}:${httpPort}/cgi-bin/bye`)).toBe('bye\n');
      const result = await guest.result;
      expectFinishedCleanly(result);

      expect(result.nic?.mac).toBe(guestMac);
      expect(result.dhcp).toMatchObject({
        ip: guestIp,
        prefixLength: 24,
        router: bridgeIp,
        mtu,
        dns: [dnsServer],
        search: [searchDomain],
      });
      expect(result.linkMtu).toBe(mtu);
      expect(result.routes).toEqual(
        expect.arrayContaining([
          expect.stringMatching(new RegExp(`^${peerNet.replace(/\./g, '\\.')} via ${bridgeIp} dev eth0`)),
          expect.stringMatching(new RegExp(`^default via ${bridgeIp} dev eth0`)),
        ]),
      );

      expect(result.disks).toEqual([
        expect.objectContaining({ name: 'vda', readOnly: true, fs: 'iso9660', label: 'cidata' }),
      ]);
      expect(result.cidata).toEqual({ device: 'vda', files: ['meta-data', 'user-data'] });
      expect(result.userdata).toEqual({
        sha256: createHash('sha256').update(userData).digest('hex'),
        bytes: Buffer.byteLength(userData),
        firstLine: '#cloud-config',
      });
      expect(result.metadata).toEqual({ instanceId, localHostname: 'kv-guest' });

      expect(result.peers).toEqual([{ ip: peerIp, ok: true }]);
      expect(result.http).toEqual({ port: httpPort, closed: 'bye' });
      expect(result.exit?.code).toBe(0);
    } finally {
      await guest.stop();
    }
  }, 300_000);

  it('sees the same network and disk on q35 (virtio-pci, as Cloud Hypervisor exposes them)', async () => {
    const result = await runGuest({
      netns: podNs,
      tap,
      mac: guestMac,
      disks: [iso],
      machine: 'q35',
      timeoutMs: 240_000,
    });
    expectFinishedCleanly(result);
    expect(result.dhcp).toMatchObject({ ip: guestIp, router: bridgeIp, mtu });
    expect(result.linkMtu).toBe(mtu);
    expect(result.userdata?.sha256).toBe(createHash('sha256').update(userData).digest('hex'));
    expect(result.metadata?.instanceId).toBe(instanceId);
  }, 300_000);

  it('reports a missing lease and a missing cidata disk, and still finishes', async () => {
    const result = await runGuest({ netns: podNs, tap, mac: strangerMac, peers: [peerIp], timeoutMs: 240_000 });
    if (!result.done) throw new Error(`guest did not finish\n${serialTail(result)}`);
    expect(result.dhcp).toBeUndefined();
    expect(result.errors).toEqual([expect.stringMatching(/^dhcp/), 'no-cidata']);
    expect(result.disks).toEqual([]);
    expect(result.peers).toEqual([{ ip: peerIp, ok: false }]);
  }, 300_000);
});
