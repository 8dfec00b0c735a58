/**
 * The node daemon's netprep in real network namespaces, on what the launcher tests do not reach with a real guest:
 * - the pod's namespace is held by descriptor: the process the daemon found it by (`/proc/<pid>/ns/net`) may end
 *   while netprep runs, and its PID be reused, without sending a single later command anywhere else;
 * - the guest TAP's rate limits: a guest flooding DHCP or ARP gets the excess dropped and counted, and is not cut off.
 * A veth stands in for the TAP in the rate test (frames cannot be written into a TAP without its descriptor); the
 * rules only know the interface by name.
 *
 * Needs root (namespaces, nftables).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultObject } from '../../api';
import { renderVirtualMachine } from '../../constructs/virtual-machine';
import type { LaunchVm } from '../../operator/launcher/vm-env';
import { prepareVmNetwork } from '../../operator/netprep';
import { ip, openPodNetns } from '../../operator/netprep/netns';
import { DROP } from '../../operator/netprep/nft-guest';
import { loadRuleset, podRuleset } from '../../operator/netprep/nftables';
import { deleteNetns, makeNetns, startInNetns, type NetnsProcess } from './guest';
import type { PodFiles, PodNetwork } from './pod-netns';
import {
  createPodFiles,
  createPodNetwork,
  destroyPodNetwork,
  execIn,
  ipIn,
  netnsPath,
  removePodFiles,
  run,
} from './pod-netns';
import { countersIn } from './spoof-watch';

const inode = (file: string) => fs.statSync(file).ino;

/** A process in `ns` whose `/proc/<pid>/ns/net` is the daemon's way to that namespace (as a pod's pause process). */
async function anchorIn(ns: string, log: string): Promise<NetnsProcess> {
  const proc = startInNetns(ns, ['sleep', '300'], log);
  // `ip netns exec` enters the namespace and then execs: wait until it has.
  for (let i = 0; i < 100; i++) {
    try {
      if (inode(`/proc/${proc.pid}/ns/net`) === inode(netnsPath(ns))) return proc;
    } catch {
      // not started yet
    }
    await sleep(20);
  }
  await proc.stop();
  throw new Error(`process ${proc.pid} never entered ${ns}`);
}

/**
 * Whether the guest gets the pod's bridge resolved (its ARP request out, the answer back): one datagram to it from
 * inside the namespace, then the neighbour entry, looked at until it is REACHABLE (the host has no ping).
 */
async function resolvesNeighbour(ns: string, address: string): Promise<boolean> {
  const send = `require('node:dgram').createSocket('udp4').send(Buffer.alloc(1), 9, '${address}', (e) => process.exit(e ? 1 : 0))`;
  await run('ip', ['netns', 'exec', ns, process.execPath, '-e', send]);
  for (let i = 0; i < 30; i++) {
    const [entry] = JSON.parse(await ipIn(ns, '-j', 'neigh', 'show', address)) as { state?: string[] }[];
    if (entry?.state?.includes('REACHABLE')) return true;
    await sleep(100);
  }
  return false;
}

describe('netprep in real namespaces', () => {
  let pod: PodNetwork | undefined;
  let files: PodFiles | undefined;

  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('the launch suite needs root (network namespaces)');
  });

  afterEach(async () => {
    await destroyPodNetwork(pod);
    pod = undefined;
    removePodFiles(files);
    files = undefined;
  }, 60_000);

  it('holds the pod namespace by descriptor: the process it was found by ending mid-run changes nothing', async () => {
    pod = await createPodNetwork('fd', { mtu: 1500, podMac: '0a:58:0a:4d:00:05' });
    files = createPodFiles('nameserver 10.96.0.10\n');
    const log = path.join(files.dir, 'anchor.log');

    // The mechanism: opened once, the namespace stays reachable after the process is gone (its path is gone too).
    const first = await anchorIn(pod.podNs, log);
    const ns = openPodNetns(`/proc/${first.pid}/ns/net`, Date.now() + 30_000);
    try {
      await first.stop();
      expect(fs.existsSync(`/proc/${first.pid}/ns/net`)).toBe(false);
      const { stdout } = await ip(ns, ['-4', '-o', 'addr', 'show', 'dev', 'eth0'], 'read eth0');
      expect(stdout).toContain(`${pod.podIp}/${pod.prefix}`);
    } finally {
      ns.close();
    }

    // The whole preparation, its process killed right after netprep opened the namespace and started its first
    // command: every later command still lands in the pod.
    const vm = renderVirtualMachine('vm-fd', {
      kernel: { image: 'example.com/kernel:1', cmdline: 'console=ttyS0' },
      interfaces: [{ name: 'pod', bridge: {} }],
      networks: [{ name: 'pod', pod: {} }],
    });
    const second = await anchorIn(pod.podNs, log);
    const preparing = prepareVmNetwork({
      vm: defaultObject(vm) as unknown as LaunchVm,
      netnsPath: `/proc/${second.pid}/ns/net`,
      runDir: files.runDir,
    });
    process.kill(second.pid, 'SIGKILL');
    await second.exited;
    const ready = await preparing;
    expect(ready).toMatchObject({ interfaces: { pod: { nic: { tap: 'tap-eth0' }, dhcp: { ip: pod.podIp } } } });
    const links = JSON.parse(await ipIn(pod.podNs, '-j', 'link', 'show')) as { ifname: string; master?: string }[];
    expect(links.filter((l) => l.master === 'br-eth0').map((l) => l.ifname)).toEqual(
      expect.arrayContaining(['eth0', 'tap-eth0']),
    );
  }, 60_000);

  it('drops a guest’s DHCP and ARP beyond their rates, counted, and lets it on once it slows down', async () => {
    const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
    const podNs = `kvn-pod-${suffix}`;
    const guestNs = `kvn-guest-${suffix}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvn-'));
    const guest = { tap: 'tap-t', mac: '52:54:00:6b:76:21', ip: '10.99.0.2' };
    try {
      await makeNetns(podNs);
      await makeNetns(guestNs);
      await ipIn(podNs, 'link', 'add', 'br-t', 'type', 'bridge');
      await ipIn(podNs, 'addr', 'add', '10.99.0.1/24', 'dev', 'br-t');
      await ipIn(podNs, 'link', 'add', guest.tap, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs);
      await ipIn(podNs, 'link', 'set', guest.tap, 'master', 'br-t', 'up');
      await ipIn(podNs, 'link', 'set', 'br-t', 'up');
      await ipIn(guestNs, 'link', 'set', 'eth0', 'address', guest.mac, 'up');
      await ipIn(guestNs, 'addr', 'add', `${guest.ip}/24`, 'dev', 'eth0');

      const ns = openPodNetns(netnsPath(podNs), Date.now() + 30_000);
      try {
        await loadRuleset(ns, podRuleset({ records: [], guests: [guest], nats: [] }));
      } finally {
        ns.close();
      }
      // What the guest sent (at the TAP, before the rules) and what the pod's own stack received.
      const counters = path.join(dir, 'counters.nft');
      fs.writeFileSync(
        counters,
        [
          'table netdev kvcount {',
          `  chain sent { type filter hook ingress device "${guest.tap}" priority filter; policy accept;`,
          '    ether type arp counter comment "arp"',
          '    ip protocol udp udp dport 67 counter comment "dhcp"',
          '  }',
          '}',
          'table ip kvcount {',
          '  chain input { type filter hook input priority filter; policy accept;',
          '    iifname "br-t" udp dport 67 counter comment "dhcp"',
          '  }',
          '}',
          '',
        ].join('\n'),
      );
      await execIn(podNs, ['nft', '-f', counters]);
      // Within the rates, the guest is on the network (this also resolves the pod's MAC before the flood).
      expect(await resolvesNeighbour(guestNs, '10.99.0.1')).toBe(true);

      // 400 datagrams to port 67 as fast as they go; then one to each of 250 absent neighbours, each an ARP request.
      const flood = `
        const s = require('node:dgram').createSocket('udp4');
        s.bind({ address: '${guest.ip}', port: 68 }, async () => {
          let sent = 0;
          for (let i = 0; i < 400; i++)
            await new Promise((r) => s.send(Buffer.alloc(300), 67, '10.99.0.1', (e) => { if (!e) sent++; r(); }));
          for (let h = 3; h < 253; h++) s.send(Buffer.alloc(1), 9, '10.99.0.' + h);
          setTimeout(() => { process.stdout.write(String(sent)); s.close(); }, 200);
        });`;
      const sent = Number(await run('ip', ['netns', 'exec', guestNs, process.execPath, '-e', flood], 30_000));
      // The kernel retries each unanswered neighbour twice more, a second apart; then it gives up.
      await sleep(4_000);

      const atTap = await countersIn(podNs, 'netdev', 'kvcount');
      const received = (await countersIn(podNs, 'ip', 'kvcount')).dhcp ?? 0;
      const drops = await countersIn(podNs, 'bridge', 'kubevisor');
      process.stdout.write(
        `rates: dhcp ${atTap.dhcp} sent, ${drops[DROP.dhcpRate]} dropped over the rate; ` +
          `arp ${atTap.arp} sent, ${drops[DROP.arpRate]} dropped over the rate\n`,
      );
      expect(sent).toBe(400);
      expect(atTap.dhcp).toBe(sent);
      // Some passed (the burst at least), the excess was dropped, and every datagram is one or the other.
      expect(drops[DROP.dhcpRate]).toBeGreaterThan(0);
      expect(received).toBeGreaterThanOrEqual(40);
      expect(received + drops[DROP.dhcpRate]).toBe(atTap.dhcp);
      // The ARP was the guest's own (nothing dropped as forged), and what exceeded the rate was dropped.
      expect(drops[DROP.arpRate]).toBeGreaterThan(0);
      expect(drops[DROP.arpRate]).toBeLessThan(atTap.arp);
      expect(drops[DROP.arp] ?? 0).toBe(0);

      // Slowed down, the guest resolves its neighbour and reaches it again.
      await execIn(guestNs, ['ip', 'neigh', 'flush', 'dev', 'eth0']);
      expect(await resolvesNeighbour(guestNs, '10.99.0.1')).toBe(true);
    } finally {
      for (const n of [guestNs, podNs]) await deleteNetns(n);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
