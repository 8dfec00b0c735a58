/**
 * The launch path inside a VM pod, end to end on real parts: a pod network namespace wired as a CNI would wire it,
 * the entrypoint running the launcher with the pod's one capability (NET_BIND_SERVICE), then exec'ing the CH
 * stand-in; the node daemon's netprep, run from the host into the pod's namespace when the launcher asks; a real guest
 * (QEMU TCG, tools/guest, itself holding only NET_BIND_SERVICE, as CH does) on the TAP netprep made, with the disks
 * the launcher prepared. Per binding it checks what was built (bridge, TAP, addresses, rules, dnsmasq options,
 * VmConfig, NoCloud ISO), that only CH and dnsmasq are left in the pod, what the guest sees (lease, routes, MTU, peers,
 * user-data, forwarded ports), and that a guest trying to spoof — another MAC, another source address, forged ARP, the
 * metadata address, an unlisted port — reaches nobody.
 *
 * Needs root and the guest fixture (tools/guest/build.sh), plus iproute2, nftables, dnsmasq, genisoimage,
 * qemu-utils, qemu-system-x86 and util-linux (setpriv).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultObject, type VmInterface } from '../../api';
import { CloudHypervisorClient } from '../../operator/cloudhypervisor/client';
import type { VmConfig } from '../../operator/cloudhypervisor/types';
import { renderVirtualMachine } from '../../constructs/virtual-machine';
import type { LaunchVm } from '../../operator/launcher/vm-env';
import { prepareVmNetwork } from '../../operator/netprep';
import { DROP } from '../../operator/netprep/nft-guest';
import { CLOUD_INIT_ISO, inRunDir } from '../../operator/pod-layout';
import type { GuestResult } from './guest';
import { bootGuest, guestFixture, httpGetInNetns, serialTail } from './guest';
import type { NetworkResponder, PodFiles, PodNetwork, RunningEntrypoint } from './pod-netns';
import {
  LAUNCHER_FROM_SOURCE,
  POD_CAPABILITIES,
  createPodFiles,
  createPodNetwork,
  destroyPodNetwork,
  execIn,
  ipJsonIn,
  netnsPath,
  processesIn,
  removePodFiles,
  runToExit,
  serveNetworkRequests,
  startEntrypoint,
  startInPod,
  waitForChSocket,
} from './pod-netns';
import type { PeerCounts, PeerWatch } from './spoof-watch';
import { PEER_HTTP_PORT, SPOOF, countersIn, watchPeer } from './spoof-watch';

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
  /** The node daemon's netprep, played by this process. */
  responder: NetworkResponder;
  config: VmConfig;
  /** The launcher's own run time (its process start to its exit, before the exec of CH), from its log. */
  launcherMs: number;
  /** From the launcher's network request to the node daemon's answer (netprep's run, plus inotify both ways). */
  networkMs: number;
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
  const responder = serveNetworkRequests(pod, files, vm);
  const entrypoint = startEntrypoint(pod, files, vm);
  const socketMs = await waitForChSocket(files, entrypoint, 90_000);
  const launcherMs = Number(/launcher: ready in (\d+) ms/.exec(entrypoint.log())?.[1]);
  const networkMs = Number(/launcher: pod network prepared by the node daemon in (\d+) ms/.exec(entrypoint.log())?.[1]);
  const config = JSON.parse(fs.readFileSync(path.join(files.runDir, 'vm-config.json'), 'utf8')) as VmConfig;
  return { pod, files, vm, entrypoint, responder, config, launcherMs, networkMs, socketMs, diskHead: head };
}

async function teardown(launched: Launched | undefined): Promise<void> {
  if (!launched) return;
  await launched.responder.stop();
  await destroyPodNetwork(launched.pod);
  removePodFiles(launched.files);
}

/** dnsmasq as the launcher starts it (directly, or through the loader of the fixture's bundled one). */
const isDnsmasq = (cmdline: string) => /(^|[ /])dnsmasq --conf-file=/.test(cmdline);

/** The pod after the hand-over holds the CH stand-in and dnsmasq only (and the stand-in's own helpers). */
async function expectOnlyChAndDnsmasq(launched: Launched): Promise<void> {
  const procs = await processesIn(launched.pod.podNs);
  const standin = procs.filter((p) => p.cmdline.includes('cloud-hypervisor-standin-main.ts'));
  expect(standin).toEqual([expect.objectContaining({ pid: launched.entrypoint.pid })]);
  expect(procs.filter((p) => isDnsmasq(p.cmdline))).toHaveLength(1);
  expect(procs.filter((p) => p.cmdline.includes('operator/launcher') || /\bsh\b.*entrypoint/.test(p.cmdline))).toEqual(
    [],
  );
  // tsx, which runs the stand-in from source, may keep an esbuild service as the stand-in's child.
  const parentOf = (pid: number) =>
    Number(/^\d+ \(.*\) \S (\d+)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1]);
  const others = procs.filter((p) => !standin.includes(p) && !isDnsmasq(p.cmdline));
  for (const p of others) {
    expect({ cmdline: p.cmdline, parent: parentOf(p.pid) }).toEqual({
      cmdline: expect.stringMatching(/esbuild/),
      parent: launched.entrypoint.pid,
    });
  }
  // CH and dnsmasq hold the pod's one capability, CAP_NET_BIND_SERVICE (bit 10), and nothing more.
  expect(POD_CAPABILITIES).toEqual(['net_bind_service']);
  for (const p of procs) {
    const status = fs.readFileSync(`/proc/${p.pid}/status`, 'utf8');
    expect({ pid: p.pid, bounding: /^CapBnd:\s*(\S+)/m.exec(status)?.[1] }).toEqual({
      pid: p.pid,
      bounding: '0000000000000400',
    });
  }
}

/** What the node daemon answered, as the launcher read it. */
const networkReady = (launched: Launched) =>
  JSON.parse(fs.readFileSync(path.join(launched.files.runDir, 'network-ready.json'), 'utf8')) as Record<
    string,
    unknown
  >;

/** The pod's network as netprep left it, for comparing two runs: links, addresses, routes, rules without counters. */
async function podNetworkState(pod: PodNetwork): Promise<string> {
  const links = await ipJsonIn<{ ifname: string; address: string; mtu: number; master?: string; operstate: string }[]>(
    pod.podNs,
    'link',
    'show',
  );
  const addrs = await execIn(pod.podNs, ['ip', '-4', '-o', 'addr', 'show']);
  // Without `linkdown`: the bridge's carrier follows the tap's, which is state, not configuration netprep left.
  const routes = (await execIn(pod.podNs, ['ip', '-4', 'route', 'show', 'table', 'all'])).replace(/ linkdown/g, '');
  const rules = await execIn(pod.podNs, ['nft', '-s', 'list', 'ruleset']);
  const forward = await execIn(pod.podNs, ['cat', '/proc/sys/net/ipv4/ip_forward']);
  return JSON.stringify({
    links: links.map((l) => [l.ifname, l.address, l.mtu, l.master]),
    addrs,
    routes,
    rules,
    forward,
  });
}

/** A second netprep call for the same pod, as a restarted daemon makes: same answer, pod unchanged. */
async function expectNetprepIdempotent(launched: Launched): Promise<void> {
  const { pod, files, vm } = launched;
  const before = await podNetworkState(pod);
  const first = networkReady(launched);
  const again = await prepareVmNetwork({
    vm: defaultedVm(vm),
    netnsPath: netnsPath(pod.podNs),
    runDir: files.runDir,
  });
  expect(again).toEqual(first);
  expect(networkReady(launched)).toEqual(first);
  expect(await podNetworkState(pod)).toBe(before);
}

const defaultedVm = (vm: Launched['vm']) => defaultObject(structuredClone(vm)) as unknown as LaunchVm;

/** The TAP as CH (or QEMU) without CAP_NET_ADMIN needs it: persistent, owned by the pod's uid, vnet header, up. */
async function expectUnprivilegedTap(pod: PodNetwork): Promise<void> {
  const [tap] = await ipJsonIn<
    { flags: string[]; linkinfo: { info_kind: string; info_data: Record<string, unknown> } }[]
  >(pod.podNs, '-d', 'link', 'show', 'tap-eth0');
  expect(tap.linkinfo).toMatchObject({
    info_kind: 'tun',
    info_data: { type: 'tap', pi: false, vnet_hdr: true, multi_queue: false, persist: true, user: 'root' },
  });
  expect(tap.flags).toContain('UP');
}

/** The pod's drop counters (nft-guest.ts), by reason. */
async function podDrops(pod: PodNetwork): Promise<Record<keyof typeof DROP, number>> {
  const c = await countersIn(pod.podNs, 'bridge', 'kubevisor');
  return Object.fromEntries(Object.entries(DROP).map(([reason, comment]) => [reason, c[comment] ?? 0])) as Record<
    keyof typeof DROP,
    number
  >;
}

/** Nothing the spoofing guest sent reached the peer; its control ping did. */
function expectNothingSpoofedArrived(counts: PeerCounts): void {
  expect(counts).toEqual({
    control: expect.any(Number),
    macTarget: 0,
    forgedMac: 0,
    ipTarget: 0,
    forgedIp: 0,
    arp: 0,
    metadata: 0,
  });
  expect(counts.control).toBeGreaterThan(0);
}

/** The guest tried each attempt (and got no answer), and reached the peer as itself. */
function expectGuestTriedToSpoof(result: GuestResult): void {
  expect(result.spoofs).toEqual([
    { kind: 'control', sent: true, reply: true },
    { kind: 'mac', sent: true, reply: false },
    { kind: 'ip', sent: true, reply: false },
    { kind: 'arp', sent: true, reply: false },
  ]);
  expect(result.probes).toEqual([
    { target: `${SPOOF.metadata}:${PEER_HTTP_PORT}`, ok: false },
    { target: `10.78.0.1:${PEER_HTTP_PORT}`, ok: true },
  ]);
}

/** Verdicts for the one summary line the suite prints. */
const verdicts = { bridge: false, masquerade: false, unlistedPort: false, metadata: false };

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
    disks: [
      path.join(launched.files.mntDir, 'root/disk.raw'),
      path.join(launched.files.runDir, inRunDir(CLOUD_INIT_ISO)),
    ],
    peers: [launched.pod.gateway, launched.pod.remoteIp],
    httpPort: HTTP_PORT,
    extraHttpPorts: [UNLISTED_PORT],
    spoof: { targets: [SPOOF.control, SPOOF.macTarget, SPOOF.ipTarget], mac: SPOOF.mac, ip: SPOOF.ip },
    probes: [`${SPOOF.metadata}:${PEER_HTTP_PORT}`, `10.78.0.1:${PEER_HTTP_PORT}`],
    // As Cloud Hypervisor in the VM pod: it opens the TAP netprep made without CAP_NET_ADMIN.
    capabilities: POD_CAPABILITIES,
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
        `launcher: bridge ready in ${launched.launcherMs} ms (launcher process; node daemon's netprep answered in ${launched.networkMs} ms), CH socket ${launched.socketMs} ms after the entrypoint started\n`,
      );
    }, 180_000);
    afterAll(() => teardown(launched), 60_000);

    it('asked the node daemon once, which moved the pod IP and MAC to the guest: bridge, TAP, MTU, no address on eth0', async () => {
      const { pod, responder } = launched!;
      expect(responder.answers).toHaveLength(1);
      expect(networkReady(launched!)).toEqual({
        version: 1,
        request: expect.stringMatching(/^[0-9a-f]{32}$/),
        interfaces: {
          pod: {
            nic: { kind: 'tap', tap: 'tap-eth0', mac: POD_MAC, mtu: MTU },
            dhcp: {
              bridge: 'br-eth0',
              bridgeAddress: { address: '169.254.200.1', prefix: 30 },
              mac: POD_MAC,
              ip: pod.podIp,
              prefix: 24,
              router: pod.gateway,
              routes: expect.arrayContaining([
                { destination: '0.0.0.0/0', gateway: pod.gateway },
                { destination: pod.route, gateway: pod.gateway },
              ]),
              mtu: MTU,
            },
          },
        },
      });
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
      await expectUnprivilegedTap(pod);
    });

    it('guards the TAP: only the pod MAC and IP leave it, DHCP stays on the guest side, metadata is dropped', async () => {
      const ruleset = (
        await execIn(launched!.pod.podNs, ['nft', '-s', 'list', 'table', 'bridge', 'kubevisor'])
      ).replace(/\s+/g, ' ');
      expect(ruleset).toContain('iifname "tap-eth0" jump guest-tap-eth0');
      expect(ruleset).toContain(`ether saddr != ${POD_MAC} counter drop comment "${DROP.mac}"`);
      expect(ruleset).toContain(`arp saddr ether ${POD_MAC} arp saddr ip { 0.0.0.0, 10.77.0.2 } accept`);
      expect(ruleset).toContain('ip saddr 10.77.0.2 accept');
      expect(ruleset).toContain(`ip daddr 169.254.169.254 counter drop comment "${DROP.metadata}"`);
      expect(ruleset).toContain(
        `ether type arp limit rate over 50/second burst 100 packets counter drop comment "${DROP.arpRate}"`,
      );
      expect(ruleset).toContain(
        `udp dport 67 limit rate over 20/second burst 40 packets counter drop comment "${DROP.dhcpRate}"`,
      );
      expect(ruleset).toContain('iifname "eth0" udp dport 67 drop');
      expect(ruleset).toContain('oifname "eth0" udp sport 67 drop');
      // The record netprep keeps of what eth0 was, for a second run.
      expect(ruleset).toContain(`continue comment "link mac=${POD_MAC} mtu=${MTU} ipv4=10.77.0.2/24"`);
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
          'dhcp-ignore=tag:!known',
          'dhcp-broadcast',
          'no-ping',
          'shared-network=br-eth0,10.77.0.2',
          'dhcp-option=option:router,10.77.0.1',
          'dhcp-option=option:classless-static-route,10.78.0.0/16,10.77.0.1,0.0.0.0/0,10.77.0.1',
          `dhcp-option=option:mtu,${MTU}`,
          // The pod's loopback resolver is not reachable from the guest, so only the cluster DNS is handed out.
          `dhcp-option=option:dns-server,${DNS}`,
          `dhcp-option=option:domain-search,${SEARCH.join(',')}`,
          'dhcp-leasefile=/var/run/kubevisor/dnsmasq/br-eth0.leases',
          'log-facility=-',
        ]),
      );
      expect(conf).not.toContain('log-dhcp');
    });

    it('writes a VmConfig with the TAP and the pod MAC (the MTU is the TAP’s), raw disks and the kernel, which CH accepts', async () => {
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
          { id: 'cloudinit', path: CLOUD_INIT_ISO, image_type: 'Raw', readonly: true },
        ],
        net: [{ id: 'net-pod', tap: 'tap-eth0', mac: POD_MAC }],
      });
      // What the node daemon does next, through the host path of the pod's run dir.
      const client = new CloudHypervisorClient({ socketPath: path.join(files.runDir, 'ch.sock') });
      await client.vm.create(config);
      expect((await client.vm.info()).state).toBe('Created');
    });

    it('builds the NoCloud ISO: label cidata, meta-data with the VM UID and name, the user-data', async () => {
      const iso = await isoFiles(path.join(launched!.files.runDir, inRunDir(CLOUD_INIT_ISO)));
      expect(iso.label).toBe('cidata');
      expect(iso.files).toEqual(['/meta-data', '/user-data']);
      expect(await iso.read('/meta-data')).toBe('instance-id: "uid-br-0001"\nlocal-hostname: "vm-br"\n');
      expect(await iso.read('/user-data')).toBe(userData);
    });

    it('leaves only CH and dnsmasq in the pod, with CAP_NET_BIND_SERVICE only: no launcher process after the hand-over', async () => {
      await expectOnlyChAndDnsmasq(launched!);
    });

    it('answers a second netprep call (a restarted daemon) the same, leaving the pod as it is', async () => {
      await expectNetprepIdempotent(launched!);
    }, 60_000);

    it('gives a real guest the pod IP by DHCP; it reaches the peers, the peer reaches it, its spoofing reaches no one', async () => {
      const l = launched!;
      const peer: PeerWatch = await watchPeer(l.pod, l.files.dir);
      const guest = startGuest(l);
      try {
        await guest.waitFor('http');
        const body = await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/`);
        expect(body).toBe(`kv-guest instance-id=${l.vm.metadata.uid} ip=${l.pod.podIp}\n`);
        const counts = await peer.counts();
        const drops = await podDrops(l.pod);
        await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/cgi-bin/bye`);
        const result = await guest.result;
        if (!result.probes.every((p) => p.ok === p.target.startsWith('10.78.')))
          process.stdout.write(serialTail(result, 80));
        expectGuestBasics(result, l, userData);
        expect(result.nic?.mac).toBe(POD_MAC);
        // dnsmasq logged the lease to the container log, but none of the option text the guest sent (udhcpc sends a
        // vendor class), which `log-dhcp` would have copied there.
        const podLog = fs.readFileSync(l.files.log, 'utf8');
        expect(podLog).toMatch(/DHCPACK\(br-eth0\) 10\.77\.0\.2 /);
        expect(podLog).not.toContain('vendor class');
        expect(result.dhcp).toMatchObject({ ip: l.pod.podIp, prefixLength: 24, router: l.pod.gateway });
        expect(result.routes).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/^default via 10\.77\.0\.1 dev eth0/),
            expect.stringMatching(/^10\.78\.0\.0\/16 via 10\.77\.0\.1 dev eth0/),
          ]),
        );
        expectGuestTriedToSpoof(result);
        expectNothingSpoofedArrived(counts);
        // … because the pod's rules dropped it, each for its reason.
        expect(drops.mac).toBeGreaterThan(0);
        expect(drops.ip).toBeGreaterThan(0);
        expect(drops.arp).toBeGreaterThan(0);
        expect(drops.metadata).toBeGreaterThan(0);
        // Its lease and its ARP stayed within the rates (a flood is netprep.launch.test.ts's).
        expect(drops.arpRate).toBe(0);
        expect(drops.dhcpRate).toBe(0);
        verdicts.bridge = true;
        process.stdout.write(
          `guest: dhcp lease in ${result.timings.dhcpMs} ms, user-data read (bridge); spoofing dropped in the pod: ${JSON.stringify(drops)}\n`,
        );
      } finally {
        await guest.stop();
        await peer.stop();
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
        `launcher: masquerade ready in ${launched.launcherMs} ms (launcher process; node daemon's netprep answered in ${launched.networkMs} ms), CH socket ${launched.socketMs} ms after the entrypoint started\n`,
      );
    }, 180_000);
    afterAll(() => teardown(launched), 60_000);

    it('puts the guest behind a gateway bridge; eth0 keeps the pod IP; the daemon made the pod forward IPv4', async () => {
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
      await expectUnprivilegedTap(pod);
      expect((await execIn(pod.podNs, ['cat', '/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('1');
    });

    it('DNATs only the listed port to the guest, lets only the guest out (masqueraded), drops the rest', async () => {
      const ruleset = (await execIn(launched!.pod.podNs, ['nft', '-s', 'list', 'table', 'ip', 'kubevisor'])).replace(
        /\s+/g,
        ' ',
      );
      expect(ruleset).toContain(`iifname "eth0" ip daddr 10.77.0.2 tcp dport ${HTTP_PORT} dnat to 10.0.2.2`);
      expect(ruleset.match(/dnat to/g)).toHaveLength(1);
      expect(ruleset).toContain('ip saddr 10.0.2.2 oifname "eth0" masquerade');
      expect(ruleset).toContain('type filter hook forward priority filter; policy drop;');
      expect(ruleset).toContain('iifname "br-eth0" oifname "eth0" ip saddr 10.0.2.2 accept');
      expect(ruleset).toContain('iifname "eth0" oifname "br-eth0" ip daddr 10.0.2.2 ct status dnat accept');
      expect(ruleset).toContain('iifname "br-eth0" ip daddr 169.254.0.0/16 counter drop');
      const guard = (await execIn(launched!.pod.podNs, ['nft', '-s', 'list', 'table', 'bridge', 'kubevisor'])).replace(
        /\s+/g,
        ' ',
      );
      expect(guard).toContain(`ether saddr != ${mac} counter drop`);
      expect(guard).toContain('ip saddr 10.0.2.2 accept');
    });

    it('serves the second address of the CIDR with the bridge as gateway, MTU and DNS by DHCP', () => {
      expect(dnsmasqConf(launched!)).toEqual(
        expect.arrayContaining([
          'dhcp-range=10.0.2.2,static,255.255.255.252,infinite',
          `dhcp-host=${mac},10.0.2.2,vm-mq,infinite`,
          'dhcp-broadcast',
          'dhcp-option=option:router,10.0.2.1',
          'dhcp-option=option:classless-static-route,0.0.0.0/0,10.0.2.1',
          `dhcp-option=option:mtu,${MTU}`,
          `dhcp-option=option:dns-server,${DNS}`,
        ]),
      );
      expect(dnsmasqConf(launched!).some((l) => l.startsWith('shared-network='))).toBe(false);
      expect(launched!.config.net).toEqual([{ id: 'net-pod', tap: 'tap-eth0', mac }]);
    });

    it('builds the NoCloud ISO with the user-data from the Secret', async () => {
      const iso = await isoFiles(path.join(launched!.files.runDir, inRunDir(CLOUD_INIT_ISO)));
      expect(iso.label).toBe('cidata');
      expect(await iso.read('/user-data')).toBe(userData);
    });

    it('leaves only CH and dnsmasq in the pod, with CAP_NET_BIND_SERVICE only: no launcher process after the hand-over', async () => {
      await expectOnlyChAndDnsmasq(launched!);
    });

    it('answers a second netprep call (a restarted daemon) the same, leaving the pod as it is', async () => {
      await expectNetprepIdempotent(launched!);
    }, 60_000);

    it('gives a real guest the private address; the listed port reaches it, unlisted ports, spoofing and metadata do not', async () => {
      const l = launched!;
      // Counts what arrives for the unlisted port: delivered to the pod itself (input) or forwarded to the guest.
      const counters = path.join(l.files.dir, 'counters.nft');
      fs.writeFileSync(
        counters,
        [
          'table ip kvtest {',
          `  chain input { type filter hook input priority filter; policy accept; tcp dport ${UNLISTED_PORT} counter; }`,
          // After kubevisor's forward chain (priority filter): it counts only what that chain let through.
          `  chain forward { type filter hook forward priority filter + 10; policy accept; tcp dport ${UNLISTED_PORT} counter; }`,
          '}',
          '',
        ].join('\n'),
      );
      await execIn(l.pod.podNs, ['nft', '-f', counters]);
      // A neighbour that routes the guest network through the pod must not get around the port list.
      await execIn(l.pod.peerNs, ['ip', 'route', 'add', '10.0.2.0/30', 'via', l.pod.podIp]);
      const peer = await watchPeer(l.pod, l.files.dir);

      const guest = startGuest(l);
      try {
        await guest.waitFor('http');
        const body = await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/`);
        expect(body).toBe(`kv-guest instance-id=${l.vm.metadata.uid} ip=10.0.2.2\n`);
        // The guest serves the unlisted port too: only the rules keep the peer out.
        await expect(httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${UNLISTED_PORT}/`, 3_000)).rejects.toThrow();
        await expect(httpGetInNetns(l.pod.peerNs, `http://10.0.2.2:${HTTP_PORT}/`, 3_000)).rejects.toThrow();
        await expect(httpGetInNetns(l.pod.peerNs, `http://10.0.2.2:${UNLISTED_PORT}/`, 3_000)).rejects.toThrow();
        const table = await execIn(l.pod.podNs, ['nft', 'list', 'table', 'ip', 'kvtest']);
        const packets = (chain: string) =>
          Number(new RegExp(`chain ${chain} \\{[^}]*counter packets (\\d+)`).exec(table)?.[1]);
        expect(packets('input')).toBeGreaterThan(0);
        expect(packets('forward')).toBe(0);
        const counts = await peer.counts();
        const drops = await podDrops(l.pod);
        await httpGetInNetns(l.pod.peerNs, `http://${l.pod.podIp}:${HTTP_PORT}/cgi-bin/bye`);

        const result = await guest.result;
        expectGuestBasics(result, l, userData);
        expect(result.nic?.mac).toBe(mac);
        expect(result.dhcp).toMatchObject({ ip: '10.0.2.2', prefixLength: 30, router: '10.0.2.1' });
        expect(result.routes).toEqual(
          expect.arrayContaining([expect.stringMatching(/^default via 10\.0\.2\.1 dev eth0/)]),
        );
        expectGuestTriedToSpoof(result);
        expectNothingSpoofedArrived(counts);
        expect(drops.mac).toBeGreaterThan(0);
        expect(drops.ip).toBeGreaterThan(0);
        expect(drops.arp).toBeGreaterThan(0);
        expect(drops.metadata).toBeGreaterThan(0);
        // Its lease and its ARP stayed within the rates (a flood is netprep.launch.test.ts's).
        expect(drops.arpRate).toBe(0);
        expect(drops.dhcpRate).toBe(0);
        verdicts.masquerade = true;
        verdicts.unlistedPort = true;
        verdicts.metadata = true;
        process.stdout.write(
          `guest: dhcp lease in ${result.timings.dhcpMs} ms, user-data read (masquerade); spoofing dropped in the pod: ${JSON.stringify(drops)}\n`,
        );
      } finally {
        await guest.stop();
        await peer.stop();
      }
    }, 300_000);
  });

  // A describe of its own: Jest runs a block's own tests before its nested blocks.
  describe('spoofing summary', () => {
    it('sums up what the spoofing guests could not do', () => {
      expect(verdicts).toEqual({ bridge: true, masquerade: true, unlistedPort: true, metadata: true });
      process.stdout.write('spoofing: bridge dropped, masquerade dropped, unlisted port refused, metadata refused\n');
    });
  });
});
