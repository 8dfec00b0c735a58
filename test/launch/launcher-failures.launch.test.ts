/**
 * The launcher's other paths in a VM pod sandbox (pod-netns.ts), no guest needed: passthrough NICs from Multus'
 * network-status (no node daemon involved), the init containers' disk subcommands, and failures — each must end in one
 * line naming the field, device or command, a non-zero exit, no CH, and nothing the launcher started left running —
 * including a node daemon that does not answer, one that cannot prepare the network, and netprep refusing a namespace
 * that is not a pod's.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { defaultObject } from '../../api';
import { renderVirtualMachine, type VirtualMachineProps } from '../../constructs/virtual-machine';
import type { VmConfig } from '../../operator/cloudhypervisor/types';
import { NETWORK_TIMEOUT_ENV } from '../../operator/launcher/network-handshake';
import type { LaunchVm } from '../../operator/launcher/vm-env';
import { prepareVmNetwork } from '../../operator/netprep';
import { NETWORK_STATUS_ENV } from '../../operator/pod-layout';
import type { NetworkResponder, PodFiles, PodNetwork } from './pod-netns';
import {
  LAUNCHER_FROM_SOURCE,
  createPodFiles,
  createPodNetwork,
  destroyPodNetwork,
  execIn,
  processesIn,
  readTerminationLog,
  removePodFiles,
  runToExit,
  serveNetworkRequests,
  startEntrypoint,
  startInPod,
  waitForChSocket,
} from './pod-netns';

function sh(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

const kernelVm = (name: string, props: VirtualMachineProps) =>
  renderVirtualMachine(name, { kernel: { image: 'example.com/kernel:1', cmdline: 'console=ttyS0' }, ...props });

const multus = (name: string, networkName: string) => ({ name, multus: { networkName } });

/** Multus' network-status for the pod network and two Multus networks attached as net0 and net1. */
const NETWORK_STATUS = [
  { name: 'kindnet', interface: 'eth0', ips: ['10.77.0.2'], default: true },
  {
    name: 'default/sriov-net',
    interface: 'net0',
    'device-info': { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:18:02.5' } },
  },
  {
    name: 'default/vdpa-net',
    interface: 'net1',
    'device-info': {
      type: 'vdpa',
      version: '1.1.0',
      vdpa: { 'parent-device': 'vdpa:0000:65:00.3', driver: 'vhost', path: '/dev/vhost-vdpa-1' },
    },
  },
];

describe('launcher paths without a guest', () => {
  let pod: PodNetwork | undefined;
  let files: PodFiles | undefined;
  let responder: NetworkResponder | undefined;

  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('the launch suite needs root (network namespaces)');
  });

  beforeEach(async () => {
    pod = await createPodNetwork('x', { mtu: 1500, podMac: '0a:58:0a:4d:00:03' });
    files = createPodFiles('nameserver 10.96.0.10\n');
    fs.mkdirSync(path.join(files.mntDir, 'kernel'));
    fs.writeFileSync(path.join(files.mntDir, 'kernel/vmlinux'), 'not a kernel: CH is stood in for');
  }, 60_000);

  afterEach(async () => {
    await responder?.stop();
    responder = undefined;
    await destroyPodNetwork(pod);
    removePodFiles(files);
  }, 60_000);

  it('passes the SR-IOV VF and the vDPA device Multus reported through to CH', async () => {
    const vm = kernelVm('vm-pt', {
      interfaces: [
        { name: 'vf', sriov: {} },
        { name: 'vd', vdpa: { numQueues: 4 } },
      ],
      // Links are named by network index: vf is net0, vd is net1.
      networks: [multus('vf', 'sriov-net'), multus('vd', 'vdpa-net')],
    });
    const entrypoint = startEntrypoint(pod!, files!, vm, { [NETWORK_STATUS_ENV]: JSON.stringify(NETWORK_STATUS) });
    await waitForChSocket(files!, entrypoint, 60_000);
    const config = JSON.parse(fs.readFileSync(path.join(files!.runDir, 'vm-config.json'), 'utf8')) as VmConfig;
    expect(config.devices).toEqual([{ id: 'net-vf', path: '/sys/bus/pci/devices/0000:18:02.5' }]);
    expect(config.vdpa).toEqual([{ id: 'net-vd', path: '/dev/vhost-vdpa-1', num_queues: 4, iommu: false }]);
    expect(config.net).toBeUndefined();
    // Passthrough needs nothing from the node daemon: the launcher never asked.
    expect(fs.existsSync(path.join(files!.runDir, 'network-request'))).toBe(false);
  }, 120_000);

  it('fails with one line when kernel.initrd is set and the kernel image held no /initrd; with it, CH gets the initramfs', async () => {
    const kernel = { image: 'example.com/kernel:1', cmdline: 'console=ttyS0', initrd: true };
    const vm = kernelVm('vm-initrd', { kernel });
    const { code } = await runToExit(startEntrypoint(pod!, files!, vm, {}));
    expect(code).toBe(1);
    expect(readTerminationLog(files!)).toBe(
      'launcher: spec.instance.kernel.initrd: /mnt/kernel/initrd is missing or not a regular file (the kernel image ' +
        'must hold /initrd)\n',
    );
    // The init container copied it: the launcher hands it to CH with the kernel.
    fs.writeFileSync(path.join(files!.mntDir, 'kernel/initrd'), 'not an initramfs: CH is stood in for');
    const entrypoint = startEntrypoint(pod!, files!, kernelVm('vm-initrd-ok', { kernel }), {});
    await waitForChSocket(files!, entrypoint, 60_000);
    const config = JSON.parse(fs.readFileSync(path.join(files!.runDir, 'vm-config.json'), 'utf8')) as VmConfig;
    expect(config.payload).toEqual({
      kernel: '/mnt/kernel/vmlinux',
      cmdline: 'console=ttyS0',
      initramfs: '/mnt/kernel/initrd',
    });
  }, 120_000);

  it('fails with one line naming the interface when network-status lacks the VF, and stops the dnsmasq it started', async () => {
    const vm = kernelVm('vm-nostatus', {
      interfaces: [
        { name: 'pod', bridge: {} },
        { name: 'vf', sriov: {} },
      ],
      networks: [{ name: 'pod', pod: {} }, multus('vf', 'sriov-net')],
    });
    responder = serveNetworkRequests(pod!, files!, vm);
    const { code, log } = await runToExit(startEntrypoint(pod!, files!, vm, {}));
    expect(code).toBe(1);
    const line =
      `launcher: spec.instance.interfaces[1] (vf): ${NETWORK_STATUS_ENV} has no entry for link net1; the PCI address ` +
      "of the SR-IOV VF comes from Multus' network-status (is Multus installed and the network attached?)\n";
    expect(readTerminationLog(files!)).toBe(line);
    expect(log).toContain(line);
    expect(log).toContain('DHCP, sockets bound exclusively to interface br-eth0'); // dnsmasq had started …
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await processesIn(pod!.podNs)).toEqual([]); // … and is gone, with the launcher; CH never started
    expect(fs.existsSync(path.join(files!.runDir, 'ch.sock'))).toBe(false);
    expect(fs.existsSync(path.join(files!.runDir, 'vm-config.json'))).toBe(false);
  }, 120_000);

  it('fails with one line when the node daemon does not answer the network request in time', async () => {
    const vm = kernelVm('vm-nodaemon', {
      interfaces: [{ name: 'pod', bridge: {} }],
      networks: [{ name: 'pod', pod: {} }],
    });
    const { code } = await runToExit(startEntrypoint(pod!, files!, vm, { [NETWORK_TIMEOUT_ENV]: '2' }));
    expect(code).toBe(1);
    expect(readTerminationLog(files!)).toBe(
      'launcher: pod network: the node daemon did not answer /var/run/kubevisor/network-request with ' +
        '/var/run/kubevisor/network-ready.json within 2 s (is the kubevisor daemon running on this node?)\n',
    );
    expect(await processesIn(pod!.podNs)).toEqual([]);
  }, 60_000);

  it('fails with the node daemon’s one line when it cannot prepare the network (a Multus link that is missing)', async () => {
    const vm = kernelVm('vm-nolink', {
      interfaces: [
        { name: 'pod', bridge: {} },
        { name: 'extra', bridge: {} },
      ],
      networks: [{ name: 'pod', pod: {} }, multus('extra', 'extra-net')],
    });
    responder = serveNetworkRequests(pod!, files!, vm);
    const { code } = await runToExit(startEntrypoint(pod!, files!, vm, {}));
    expect(code).toBe(1);
    expect(readTerminationLog(files!)).toBe(
      'launcher: pod network: the node daemon could not prepare it: spec.instance.interfaces[1] (extra): ' +
        'pod link net1 does not exist (is the network attached to the pod?)\n',
    );
    expect(responder.answers).toEqual([expect.objectContaining({ error: expect.stringContaining('net1') })]);
    // Nothing was changed before the failure was known: eth0 still has its address.
    expect(await execIn(pod!.podNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain('10.77.0.2/24');
    expect(await processesIn(pod!.podNs)).toEqual([]);
  }, 60_000);

  it('netprep refuses a namespace that is not a pod’s: the daemon’s own, or a file that is no namespace', async () => {
    const vm = kernelVm('vm-host', { interfaces: [{ name: 'pod', bridge: {} }], networks: [{ name: 'pod', pod: {} }] });
    const stored = defaultObject(vm) as unknown as LaunchVm;
    const own = await prepareVmNetwork({ vm: stored, netnsPath: '/proc/self/ns/net', runDir: files!.runDir });
    expect(own).toEqual({
      version: 1,
      error: "network namespace /proc/self/ns/net: is the node daemon's own namespace",
    });
    const notNs = await prepareVmNetwork({ vm: stored, netnsPath: files!.resolvConf, runDir: files!.runDir });
    expect(notNs).toEqual({ version: 1, error: `network namespace ${files!.resolvConf}: not a namespace file` });
    const mnt = await prepareVmNetwork({ vm: stored, netnsPath: '/proc/self/ns/mnt', runDir: files!.runDir });
    expect(mnt).toEqual({
      version: 1,
      error: 'network namespace /proc/self/ns/mnt: a mnt namespace, not a network namespace',
    });
  }, 60_000);

  it('fails naming the disk and the missing image when the containerDisk was not converted', async () => {
    const vm = renderVirtualMachine('vm-nodisk', {
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
    });
    const { code } = await runToExit(startEntrypoint(pod!, files!, vm));
    expect(code).toBe(1);
    expect(readTerminationLog(files!)).toBe(
      'launcher: spec.instance.disks[0] (root): /mnt/root/disk.raw is missing (the init container convert-root writes it)\n',
    );
  }, 120_000);

  it('prepare-container-rootfs turns the rootfs tar into an ext4 image of the given size', async () => {
    const tree = path.join(files!.dir, 'tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'etc/hostname'), 'rootfs-from-an-image\n');
    fs.mkdirSync(path.join(files!.mntDir, 'rootfs'));
    await sh('tar', ['-C', tree, '-cf', path.join(files!.mntDir, 'rootfs/rootfs.tar'), '.']);

    const ok = await runToExit(
      startInPod(pod!, files!, ['sh', LAUNCHER_FROM_SOURCE, 'prepare-container-rootfs', 'rootfs', '16Mi']),
    );
    expect(ok.code).toBe(0);
    const image = path.join(files!.mntDir, 'rootfs/rootfs.raw');
    expect(fs.statSync(image).size).toBe(16 * 1024 * 1024);
    expect(await sh('debugfs', ['-R', 'cat /etc/hostname', image])).toBe('rootfs-from-an-image\n');
    expect(fs.readdirSync(path.join(files!.mntDir, 'rootfs'))).toEqual(['rootfs.raw']);
  }, 120_000);

  it('prepare-container-disk refuses a qcow2 that points at another file', async () => {
    const source = path.join(files!.mntDir, 'root/source');
    fs.mkdirSync(source, { recursive: true });
    const base = path.join(files!.dir, 'base.raw');
    fs.writeFileSync(base, Buffer.alloc(65536));
    await sh('qemu-img', ['create', '-f', 'qcow2', '-F', 'raw', '-b', base, path.join(source, 'disk.qcow2')]);
    const { code } = await runToExit(
      startInPod(pod!, files!, ['sh', LAUNCHER_FROM_SOURCE, 'prepare-container-disk', 'root']),
    );
    expect(code).toBe(1);
    expect(readTerminationLog(files!)).toBe(
      'launcher: containerDisk root: /mnt/root/source/disk.qcow2 refers to another file (backing or data file); ship a self-contained image\n',
    );
  }, 120_000);
});
