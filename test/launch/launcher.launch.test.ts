/**
 * The launch path inside a VM pod, end to end on real parts: a pod network namespace wired as a CNI would wire it,
 * the entrypoint running the launcher with the pod's capabilities only, then exec'ing the CH stand-in; a real guest
 * (QEMU TCG, tools/guest) on the TAP the launcher made, with the disks the launcher prepared. Per binding it checks
 * what the launcher built (bridge, TAP, addresses, NAT, dnsmasq options, VmConfig, NoCloud ISO), that only CH and
 * dnsmasq are left in the pod, and what the guest sees (lease, routes, MTU, peers, user-data, forwarded ports).
 *
 * Needs root and the guest fixture (tools/guest/build.sh), plus iproute2, nftables, dnsmasq, genisoimage,
 * qemu-utils, qemu-system-x86 and util-linux (setpriv).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { VmInterface } from '../../api';
import { CloudHypervisorClient } from '../../operator/cloudhypervisor/client';
import type { VmConfig } from '../../operator/cloudhypervisor/types';
import { renderVirtualMachine } from '../../constructs/virtual-machine';
import type { GuestResult } from './guest';
import { bootGuest, guestFixture, httpGetInNetns, serialTail } from './guest';
import type { PodFiles, PodNetwork, RunningEntrypoint } from './pod-netns';
import {
  LAUNCHER_FROM_SOURCE,
  createPodFiles,
  createPodNetwork,
  destroyPodNetwork,
  execIn,
  ipJsonIn,
  processesIn,
  removePodFiles,
  runToExit,
  startEntrypoint,
  startInPod,
  waitForChSocket,
} from './pod-netns';

const MTU = 1400;
const POD_MAC = '0a:58:0a:4d:00:02';
const DNS = '10.96.0.10';
const SEARCH = ['default.svc.cluster.local', 'svc.cluster.local'];
const RESOLV_CONF = `nameserver ${DNS}\nnameserver 127.0.0.53\nsearch ${SEARCH.join(' ')}\noptions ndots:5\n`;
const HTTP_PORT = 8080;
const UNLISTED_PORT = 8081;

function sh(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

interface Launched {
  pod: PodNetwork;
  files: PodFiles;
  vm: ReturnType<typeof renderVirtualMachine>;
  entrypoint: RunningEntrypoint;
  config: VmConfig;
  /** The launcher's own run time (its process start to its exit, before the exec of CH), from its log. */
  launcherMs: number;
  /** Entrypoint start to CH's socket accepting calls (includes the Node stand-in's own start-up). */
  socketMs: number;
  /** sha256 of the containerDisk's first 4 KiB, as the guest must see it. */
  diskHead: string;
}

/** The raw disk the containerDisk ships (as qcow2): recognisable content in its first 4 KiB. */
function writeSourceDisk(files: PodFiles, tag: string): { raw: string; head: string } {
  const raw = path.join(files.dir, 'disk.raw');
  const head = Buffer.alloc(4096, `kubevisor containerDisk ${tag}\n`);
  fs.writeFileSync(raw, Buffer.concat([head, Buffer.alloc(1024 * 1024 - 4096)]));
  return { raw, head: createHash('sha256').update(head).digest('hex') };
}

/** Builds the pod, runs the containerDisk init step and the entrypoint, and waits for CH's socket. */
async function launch(
  tag: string,
  iface: VmInterface,
  cloudInit: Record<string, string>,
  secrets: { userdata?: string } = {},
): Promise<Launched> {
  const pod = await createPodNetwork(tag, { mtu: MTU, podMac: POD_MAC });
  const files = createPodFiles(RESOLV_CONF);
  if (secrets.userdata !== undefined) {
    // Mounted as the pod renderer mounts a cloud-init Secret: its key "value" as a file.
    fs.mkdirSync(path.join(files.secretsDir, 'userdata'));
    fs.writeFileSync(path.join(files.secretsDir, 'userdata/value'), secrets.userdata);
  }
  const fixture = guestFixture();
  fs.mkdirSync(path.join(files.mntDir, 'kernel'));
  fs.copyFileSync(fixture.kernel, path.join(files.mntDir, 'kernel/vmlinux'));

  // The disk-root init container copies the image's /disk (here a directory with one qcow2) to /mnt/root/source.
  const { raw, head } = writeSourceDisk(files, tag);
  fs.mkdirSync(path.join(files.mntDir, 'root/source'), { recursive: true });
  await sh('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path.join(files.mntDir, 'root/source/disk.qcow2')]);
  const convert = await runToExit(
    startInPod(pod, files, ['sh', LAUNCHER_FROM_SOURCE, 'prepare-container-disk', 'root']),
  );
  expect(convert).toMatchObject({ code: 0 });
  expect(fs.existsSync(path.join(files.mntDir, 'root/source'))).toBe(false);

  const vm = renderVirtualMachine(`vm-${tag}`, {
    kernel: { image: 'example.com/kernel:1', cmdline: 'console=ttyS0' },
    disks: [{ name: 'root' }, { name: 'cloudinit' }],
    volumes: [
      { name: 'root', containerDisk: { image: 'example.com/disk:1' } },
      { name: 'cloudinit', cloudInit },
    ],
    interfaces: [iface],
    networks: [{ name: 'pod', pod: {} }],
  });
  vm.metadata.uid = `uid-${tag}-0001`;
  const entrypoint = startEntrypoint(pod, files, vm);
  const socketMs = await waitForChSocket(files, entrypoint, 90_000);
  const launcherMs = Number(/launcher: ready in (\d+) ms/.exec(entrypoint.log())?.[1]);
  const config = JSON.parse(fs.readFileSync(path.join(files.runDir, 'vm-config.json'), 'utf8')) as VmConfig;
  return { pod, files, vm, entrypoint, config, launcherMs, socketMs, diskHead: head };
}

async function teardown(launched: Launched | undefined): Promise<void> {
  if (!launched) return;
  await destroyPodNetwork(launched.pod);
  removePodFiles(launched.files);
}

/** The pod after the hand-over holds the CH stand-in and dnsmasq only (and the stand-in's own helpers). */
async function expectOnlyChAndDnsmasq(launched: Launched): Promise<void> {
  const procs = await processesIn(launched.pod.podNs);
  const standin = procs.filter((p) => p.cmdline.includes('cloud-hypervisor-standin-main.ts'));
  expect(standin).toEqual([expect.objectContaining({ pid: launched.entrypoint.pid })]);
  expect(procs.filter((p) => /^(\S*\/)?dnsmasq /.test(p.cmdline))).toHaveLength(1);
  expect(procs.filter((p) => p.cmdline.includes('operator/launcher') || /\bsh\b.*entrypoint/.test(p.cmdline))).toEqual(
    [],
  );
  // tsx, which runs the stand-in from source, may keep an esbuild service as the stand-in's child.
  const parentOf = (pid: number) =>
    Number(/^\d+ \(.*\) \S (\d+)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1]);
  const others = procs.filter((p) => !standin.includes(p) && !/^(\S*\/)?dnsmasq /.test(p.cmdline));
  for (const p of others) {
    expect({ cmdline: p.cmdline, parent: parentOf(p.pid) }).toEqual({
      cmdline: expect.stringMatching(/esbuild/),
      parent: launched.entrypoint.pid,
    });
  }
}

function dnsmasqConf(launched: Launched): string[] {
  return fs.readFileSync(path.join(launched.files.runDir, 'dnsmasq/br-eth0.conf'), 'utf8').split('\n');
}

async function isoFiles(
  iso: string,
): Promise<{ label: string; files: string[]; read: (f: string) => Promise<string> }> {
  const info = await sh('isoinfo', ['-d', '-i', iso]);
  const listing = await sh('isoinfo', ['-R', '-f', '-i', iso]);
  return {
    label: /Volume id: (\S+)/.exec(info)?.[1] ?? '',
    files: listing.split('\n').filter(Boolean).sort(),
    read: (f) => sh('isoinfo', ['-R', '-x', f, '-i', iso]),
  };
}

/** Boots the guest on the launcher's TAP with the launcher's disks and serves HTTP until the test says bye. */
function startGuest(launched: Launched) {
  const net = launched.config.net![0];
  return bootGuest({
    netns: launched.pod.podNs,
    tap: net.tap!,
    mac: net.mac!,
    disks: [path.join(launched.files.mntDir, 'root/disk.raw'), path.join(launched.files.runDir, 'cloud-init.iso')],
    peers: [launched.pod.gateway, launched.pod.remoteIp],
    httpPort: HTTP_PORT,
    holdSeconds: 120,
    timeoutMs: 240_000,
  });
}

function expectGuestBasics(result: GuestResult, launched: Launched, userData: string): void {
  if (!result.done || result.errors.length) {
    throw new Error(`guest errors ${JSON.stringify(result.errors)} done=${result.done}\n${serialTail(result)}`);
  }
  expect(result.linkMtu).toBe(MTU);
  expect(result.dhcp).toMatchObject({ mtu: MTU, dns: [DNS] });
  expect(result.peers).toEqual([
    { ip: launched.pod.gateway, ok: true },
    { ip: launched.pod.remoteIp, ok: true },
  ]);
  expect(result.disks).toEqual([
    expect.objectContaining({ name: 'vda', headSha256: launched.diskHead }),
    expect.objectContaining({ name: 'vdb', fs: 'iso9660', label: 'cidata' }),
  ]);
  expect(result.userdata).toEqual({
    sha256: createHash('sha256').update(userData).digest('hex'),
    bytes: Buffer.byteLength(userData),
    firstLine: '#cloud-config',
  });
  expect(result.metadata).toEqual({ instanceId: launched.vm.metadata.uid, localHostname: launched.vm.metadata.name });
}

describe('launcher in a VM pod', () => {
  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('the launch suite needs root (network namespaces and taps)');
    guestFixture();
  });

  describe('bridge binding', () => {
    const userData = '#cloud-config\nruncmd:\n  - echo bridge\n';
    let launched: Launched | undefined;

    beforeAll(async () => {
      launched = await launch('br', { name: 'pod', bridge: {} }, { userData });
      process.stdout.write(
        `launcher: bridge ready in ${launched.launcherMs} ms (launcher process), CH socket ${launched.socketMs} ms after the entrypoint started\n`,
      );
    }, 180_000);
    afterAll(() => teardown(launched), 60_000);

    it('moves the pod IP and MAC to the guest: bridge, TAP, MTU, no address left on eth0', async () => {
      const { pod } = launched!;
      const links = await ipJsonIn<{ ifname: string; mtu: number; master?: string; address: string }[]>(
        pod.podNs,
        'link',
        'show',
      );
      const link = (name: string) => links.find((l) => l.ifname === name);
      expect(link('br-eth0')).toMatchObject({ mtu: MTU });
      expect(link('tap-eth0')).toMatchObject({ mtu: MTU, master: 'br-eth0' });
      expect(link('eth0')).toMatchObject({ mtu: MTU, master: 'br-eth0' });
      expect(link('eth0')!.address).not.toBe(POD_MAC);
      const addrs = await ipJsonIn<{ ifname: string; addr_info: { local: string; prefixlen: number }[] }[]>(
        pod.podNs,
        '-4',
        'addr',
        'show',
      );
      expect(addrs.find((a) => a.ifname === 'eth0')?.addr_info ?? []).toEqual([]);
      expect(addrs.find((a) => a.ifname === 'br-eth0')?.addr_info).toEqual([
        expect.objectContaining({ local: '169.254.200.1', prefixlen: 30 }),
      ]);
    });

    it('serves the pod IP, routes (specific first, default last), MTU and DNS by DHCP to the pod MAC only', () => {
      const conf = dnsmasqConf(launched!);
      expect(conf).toEqual(
        expect.arrayContaining([
          'port=0',
          'interface=br-eth0',
          'bind-interfaces',
          'dhcp-range=10.77.0.2,static,255.255.255.0,infinite',
          `dhcp-host=${POD_MAC},10.77.0.2,vm-br,infinite`,
          'shared-network=br-eth0,10.77.0.2',
          'dhcp-option=option:router,10.77.0.1',
          'dhcp-option=option:classless-static-route,10.78.0.0/16,10.77.0.1,0.0.0.0/0,10.77.0.1',
          `dhcp-option=option:mtu,${MTU}`,
          // The pod's loopback resolver is not reachable from the guest, so only the cluster DNS is handed out.
          `dhcp-option=option:dns-server,${DNS}`,
          `dhcp-option=option:domain-search,${SEARCH.join(',')}`,
          'dhcp-leasefile=/var/run/kubevisor/dnsmasq/br-eth0.leases',
        ]),
      );
    });

    it('writes a VmConfig with the TAP, the pod MAC, raw disks and the kernel, which CH accepts', async () => {
      const { config, files } = launched!;
      expect(config).toEqual({
        payload: { kernel: '/mnt/kernel/vmlinux', cmdline: 'console=ttyS0' },
        cpus: {
          boot_vcpus: 1,
          max_vcpus: 1,
          topology: { packages: 1, dies_per_package: 1, cores_per_die: 1, threads_per_core: 1 },
        },
        memory: { size: 1024 ** 3 },
        serial: { mode: 'Tty' },
        console: { mode: 'Off' },
        rng: { src: '/dev/urandom' },
        disks: [
          { id: 'root', path: '/mnt/root/disk.raw', image_type: 'Raw', readonly: false },
          { id: 'cloudinit', path: '/var/run/kubevisor/cloud-init.iso', image_type: 'Raw', readonly: true },
        ],
        net: [{ id: 'net-pod', tap: 'tap-eth0', mac: POD_MAC, mtu: MTU }],
      });
      // What the node daemon does next, through the host path of the pod's run dir.
      const client = new CloudHypervisorClient({ socketPath: path.join(files.runDir, 'ch.sock') });
      await client.vm.create(config);
      expect((await client.vm.info()).state).toBe('Created');
    });

    it('builds the NoCloud ISO: label cidata, meta-data with the VM UID and name, the user-data', async () => {
      const iso = await isoFiles(path.join(launched!.files.runDir, 'cloud-init.iso'));
      expect(iso.label).toBe('cidata');
      expect(iso.files).toEqual(['/meta-data', '/user-data']);
      expect(await iso.read('/meta-data')).toBe('instance-id: "uid-br-0001"\nlocal-hostname: "vm-br"\n');
      expect(await iso.read('/user-data')).toBe(userData);
    });

    it('leaves only CH and dnsmasq in the pod: no launcher process after the hand-over', async () => {
      await expectOnlyChAndDnsmasq(launched!);
    });

    it('gives a real guest the pod IP by DHCP; it reaches the peers and the peer reaches it', async () => {
      const l = launched!;
      const guest = startGuest(l);
      try {
        await guest.waitFor('http');
        const body = await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/`);
        expect(body).toBe(`kv-guest instance-id=${l.vm.metadata.uid} ip=${l.pod.podIp}\n`);
        await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/cgi-bin/bye`);
        const result = await guest.result;
        expectGuestBasics(result, l, userData);
        expect(result.nic?.mac).toBe(POD_MAC);
        expect(result.dhcp).toMatchObject({ ip: l.pod.podIp, prefixLength: 24, router: l.pod.gateway });
        expect(result.routes).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/^default via 10\.77\.0\.1 dev eth0/),
            expect.stringMatching(/^10\.78\.0\.0\/16 via 10\.77\.0\.1 dev eth0/),
          ]),
        );
        process.stdout.write(`guest: dhcp lease in ${result.timings.dhcpMs} ms, user-data read (bridge)\n`);
      } finally {
        await guest.stop();
      }
    }, 300_000);
  });

  describe('masquerade binding with a port list', () => {
    const userData = '#cloud-config\nruncmd:\n  - echo masquerade\n';
    const mac = '52:54:00:6b:76:10';
    let launched: Launched | undefined;

    beforeAll(async () => {
      launched = await launch(
        'mq',
        { name: 'pod', mac, masquerade: { ports: [{ port: HTTP_PORT, protocol: 'TCP' }] } },
        { userDataSecretName: 'vm-mq-userdata' },
        { userdata: userData },
      );
      process.stdout.write(
        `launcher: masquerade ready in ${launched.launcherMs} ms (launcher process), CH socket ${launched.socketMs} ms after the entrypoint started\n`,
      );
    }, 180_000);
    afterAll(() => teardown(launched), 60_000);

    it('puts the guest behind a gateway bridge; eth0 keeps the pod IP; the pod forwards IPv4', async () => {
      const { pod } = launched!;
      const addrs = await ipJsonIn<
        { ifname: string; mtu: number; addr_info: { local: string; prefixlen: number }[] }[]
      >(pod.podNs, '-4', 'addr', 'show');
      const addr = (name: string) => addrs.find((a) => a.ifname === name);
      expect(addr('eth0')?.addr_info).toEqual([expect.objectContaining({ local: pod.podIp, prefixlen: 24 })]);
      expect(addr('br-eth0')).toMatchObject({
        mtu: MTU,
        addr_info: [expect.objectContaining({ local: '10.0.2.1', prefixlen: 30 })],
      });
      const tap = (await ipJsonIn<{ master?: string; mtu: number }[]>(pod.podNs, 'link', 'show', 'tap-eth0'))[0];
      expect(tap).toMatchObject({ master: 'br-eth0', mtu: MTU });
      expect((await execIn(pod.podNs, ['cat', '/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('1');
    });

    it('DNATs only the listed port to the guest and masquerades the guest out of eth0', async () => {
      const ruleset = (await execIn(launched!.pod.podNs, ['nft', 'list', 'table', 'ip', 'kubevisor'])).replace(
        /\s+/g,
        ' ',
      );
      expect(ruleset).toContain(`iifname "eth0" ip daddr 10.77.0.2 tcp dport ${HTTP_PORT} dnat to 10.0.2.2`);
      expect(ruleset.match(/dnat to/g)).toHaveLength(1);
      expect(ruleset).toContain('ip saddr 10.0.2.0/30 oifname "eth0" masquerade');
      expect(ruleset).toContain('iifname "eth0" oifname "br-eth0" drop');
    });

    it('serves the second address of the CIDR with the bridge as gateway, MTU and DNS by DHCP', () => {
      expect(dnsmasqConf(launched!)).toEqual(
        expect.arrayContaining([
          'dhcp-range=10.0.2.2,static,255.255.255.252,infinite',
          `dhcp-host=${mac},10.0.2.2,vm-mq,infinite`,
          'dhcp-option=option:router,10.0.2.1',
          'dhcp-option=option:classless-static-route,0.0.0.0/0,10.0.2.1',
          `dhcp-option=option:mtu,${MTU}`,
          `dhcp-option=option:dns-server,${DNS}`,
        ]),
      );
      expect(dnsmasqConf(launched!).some((l) => l.startsWith('shared-network='))).toBe(false);
      expect(launched!.config.net).toEqual([{ id: 'net-pod', tap: 'tap-eth0', mac, mtu: MTU }]);
    });

    it('builds the NoCloud ISO with the user-data from the Secret', async () => {
      const iso = await isoFiles(path.join(launched!.files.runDir, 'cloud-init.iso'));
      expect(iso.label).toBe('cidata');
      expect(await iso.read('/user-data')).toBe(userData);
    });

    it('leaves only CH and dnsmasq in the pod: no launcher process after the hand-over', async () => {
      await expectOnlyChAndDnsmasq(launched!);
    });

    it('gives a real guest the private address; the listed port reaches it from the peer, others do not', async () => {
      const l = launched!;
      // Counts what arrives for the unlisted port: delivered to the pod itself (input) or forwarded to the guest.
      const counters = path.join(l.files.dir, 'counters.nft');
      fs.writeFileSync(
        counters,
        [
          'table ip kvtest {',
          `  chain input { type filter hook input priority filter; policy accept; tcp dport ${UNLISTED_PORT} counter; }`,
          `  chain forward { type filter hook forward priority filter - 10; policy accept; tcp dport ${UNLISTED_PORT} counter; }`,
          '}',
          '',
        ].join('\n'),
      );
      await execIn(l.pod.podNs, ['nft', '-f', counters]);
      // A neighbour that routes the guest network through the pod must not get around the port list.
      await execIn(l.pod.peerNs, ['ip', 'route', 'add', '10.0.2.0/30', 'via', l.pod.podIp]);

      const guest = startGuest(l);
      try {
        await guest.waitFor('http');
        const body = await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/`);
        expect(body).toBe(`kv-guest instance-id=${l.vm.metadata.uid} ip=10.0.2.2\n`);
        await expect(httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${UNLISTED_PORT}/`, 3_000)).rejects.toThrow();
        await expect(httpGetInNetns(l.pod.peerNs, `http://10.0.2.2:${HTTP_PORT}/`, 3_000)).rejects.toThrow();
        const table = await execIn(l.pod.podNs, ['nft', 'list', 'table', 'ip', 'kvtest']);
        const packets = (chain: string) =>
          Number(new RegExp(`chain ${chain} \\{[^}]*counter packets (\\d+)`).exec(table)?.[1]);
        expect(packets('input')).toBeGreaterThan(0);
        expect(packets('forward')).toBe(0);
        await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/cgi-bin/bye`);

        const result = await guest.result;
        expectGuestBasics(result, l, userData);
        expect(result.nic?.mac).toBe(mac);
        expect(result.dhcp).toMatchObject({ ip: '10.0.2.2', prefixLength: 30, router: '10.0.2.1' });
        expect(result.routes).toEqual(
          expect.arrayContaining([expect.stringMatching(/^default via 10\.0\.2\.1 dev eth0/)]),
        );
        process.stdout.write(`guest: dhcp lease in ${result.timings.dhcpMs} ms, user-data read (masquerade)\n`);
      } finally {
        await guest.stop();
      }
    }, 300_000);
  });
});
