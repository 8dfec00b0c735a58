// The host resources a VM needs at vm.boot, as v53.0 was measured to open them (reference/cloud-hypervisor.md §14):
// missing files fail at once with 500, a missing vhost-user backend blocks the whole VMM ≈60 s, images are locked.
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import { addPodFiles, chError, sampleVmConfig, useStandin, waitUntil } from './standin-fixture';

const ENOENT = 'No such file or directory (os error 2)';
const BOOT = ['Error from API', 'The VM could not boot'];

/** Shared memory, which every vhost-user device needs (reference §6). */
const withSharedMemory = (config: VmConfig): VmConfig => ({ ...config, memory: { size: 1 << 30, shared: true } });

describe('CH stand-in: vm.boot fails at once with 500 when a file of the VM is missing', () => {
  const fixture = useStandin();

  // [what, how the sample config changes, pod files to remove, CH's chain below "The VM could not boot"].
  const cases: [string, (c: VmConfig) => VmConfig, string[], string[]][] = [
    ['the kernel', (c) => c, ['/var/lib/kubevisor/vmlinux'], ['Cannot open kernel file', ENOENT]],
    ['the initramfs', (c) => c, ['/initrd'], ['Cannot open initramfs file', ENOENT]],
    [
      'the firmware',
      (c) => ({ ...c, payload: { firmware: '/fw/CLOUDHV.fd' } }),
      [],
      ['Error manipulating firmware file', ENOENT],
    ],
    [
      'a disk image',
      (c) => c,
      ['/var/lib/kubevisor/disks/root.raw'],
      ['Error from device manager', 'Cannot open disk path', ENOENT],
    ],
    [
      'a vdpa device',
      (c) => ({ ...c, vdpa: [{ id: 'net-vdpa', path: '/dev/vhost-vdpa-0', num_queues: 1 }] }),
      [],
      ['Error from device manager', 'Cannot create vDPA device', ENOENT],
    ],
    [
      'a pmem file',
      (c) => ({ ...c, pmem: [{ file: '/var/lib/kubevisor/pmem.img' }] }),
      [],
      ['Error from device manager', 'Cannot open persistent memory file', ENOENT],
    ],
  ];

  it.each(cases)('missing %s: 500, the VM stays Created', async (_what, change, remove, chain) => {
    const { client, standin, resolvePath } = fixture();
    for (const path of remove) rmSync(resolvePath(path));
    await client.vm.create(change(sampleVmConfig()));
    const error = await chError(client.vm.boot());
    expect([error.statusCode, error.chain]).toEqual([500, [...BOOT, ...chain]]);
    expect(standin.state().vm).toBe('Created');
    expect(standin.events.map((e) => e.event)).not.toContain('booted');
    // Once the file is there, the same config boots.
    addPodFiles(fixture().podRoot, ...remove, '/fw/CLOUDHV.fd', '/dev/vhost-vdpa-0', '/var/lib/kubevisor/pmem.img');
    await client.vm.boot();
    expect(standin.state().vm).toBe('Running');
  });

  it('opens the paths of the pod through resolvePath, not the host`s', async () => {
    const { client } = fixture();
    // /etc/hostname exists on the host, not in the pod.
    await client.vm.create({ ...sampleVmConfig(), payload: { kernel: '/etc/hostname' } });
    expect((await chError(client.vm.boot())).chain.slice(2)).toEqual(['Cannot open kernel file', ENOENT]);
  });

  it('locks disk images: two writable disks on one image fail at boot, read-only ones may share it', async () => {
    const { client, standin } = fixture();
    const root = '/var/lib/kubevisor/disks/root.raw';
    await client.vm.create({
      ...sampleVmConfig(),
      disks: [
        { id: 'a', path: root, image_type: 'Raw' },
        { id: 'b', path: root, image_type: 'Raw' },
      ],
    });
    const error = await chError(client.vm.boot());
    expect([error.statusCode, error.chain]).toEqual([
      500,
      [
        ...BOOT,
        'Error from device manager',
        'Failed to lock the disk image',
        'The image is already locked by another disk (stand-in)',
      ],
    ]);
    expect(standin.state().vm).toBe('Created');

    await client.vm.delete();
    await client.vm.create({
      ...sampleVmConfig(),
      disks: [
        { id: 'a', path: root, image_type: 'Raw', readonly: true },
        { id: 'b', path: root, image_type: 'Raw', readonly: true },
      ],
    });
    await client.vm.boot();
    expect(standin.state().vm).toBe('Running');
  });

  it('accepts a cold add-disk reusing an image under a new id (204); the boot then fails on the lock (§14)', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await expect(
      client.vm.addDisk({ id: 'again', path: '/var/lib/kubevisor/disks/root.raw', image_type: 'Raw' }),
    ).resolves.toBeUndefined();
    const error = await chError(client.vm.boot());
    expect([error.statusCode, error.chain.slice(2, 4)]).toEqual([
      500,
      ['Error from device manager', 'Failed to lock the disk image'],
    ]);
    expect(standin.state().vm).toBe('Created');
  });

  it('fails a hot-plugged disk whose image is missing with 500; the VM runs on', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    const error = await chError(client.vm.addDisk({ id: 'extra', path: '/absent.raw', image_type: 'Raw' }));
    expect([error.statusCode, error.chain]).toEqual([
      500,
      [
        'Error from API',
        'The disk could not be added to the VM',
        'Error from device manager',
        'Cannot open disk path',
        ENOENT,
      ],
    ]);
    expect(standin.state().vm).toBe('Running');
    expect((await client.vm.info()).config.disks?.map((d) => d.id)).not.toContain('extra');
  });
});

describe('CH stand-in: a missing vhost-user backend blocks vm.boot (reference §14)', () => {
  // CH retries ≈60 s; the tests shorten that.
  const fixture = useStandin({ vhostUserWaitMs: 1000 });
  const servers: Server[] = [];
  const accepted: Socket[] = [];

  afterEach(async () => {
    // Connections stay open while a VM lives; the servers close only once they are gone.
    for (const socket of accepted.splice(0)) socket.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  /** A vhost-user backend that accepts connections and records them. */
  async function backend(path: string): Promise<{ connections: Socket[] }> {
    const connections: Socket[] = [];
    const server = createServer((socket) => {
      connections.push(socket);
      accepted.push(socket);
      socket.on('error', () => undefined);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return { connections };
  }

  const virtiofs = (c: VmConfig): VmConfig =>
    withSharedMemory({
      ...c,
      fs: [{ id: 'data', tag: 'data', socket: '/run/virtiofsd.sock', num_queues: 1, queue_size: 1024 }],
    });
  const vhostUserNet = (c: VmConfig): VmConfig =>
    withSharedMemory({
      ...c,
      net: [{ id: 'net-vu', vhost_user: true, vhost_socket: '/run/vhost-user-net.sock', vhost_mode: 'Client' }],
    });

  it.each([
    ['virtio-fs', virtiofs, 'Cannot create virtio-fs device'],
    ['vhost-user-net (CH is the client)', vhostUserNet, 'Cannot create vhost-user-net device'],
  ] as const)('%s: nothing else is answered meanwhile, then 500', async (_what, change, device) => {
    const { client, standin } = fixture();
    await client.vm.create(change(sampleVmConfig()));
    const boot = chError(client.vm.boot());
    await waitUntil(() => standin.events.some((e) => e.event === 'booting'), 'the boot to start');
    // CH's one control thread is busy: even a ping waits.
    const ping = await chError(client.vmm.ping({ timeoutMs: 100 }));
    expect(ping.kind).toBe('timeout');

    const error = await boot;
    expect([error.statusCode, error.chain]).toEqual([
      500,
      [
        ...BOOT,
        'Error from device manager',
        device,
        `Failed connecting the backend after trying for 1000 ms: ${ENOENT}`,
      ],
    ]);
    expect(standin.state().vm).toBe('Created');
    expect((await client.vmm.ping()).version).toBe('53.0.0');
  });

  it('boots once the backend`s socket appears during the wait, and holds the connection while the VM lives', async () => {
    const { client, standin, resolvePath } = fixture();
    await client.vm.create(virtiofs(sampleVmConfig()));
    const boot = client.vm.boot();
    await waitUntil(() => standin.events.some((e) => e.event === 'booting'), 'the boot to start');
    // The boot is stuck waiting (the VMM answers nothing), and only then does the backend come up.
    expect((await chError(client.vmm.ping({ timeoutMs: 100 }))).kind).toBe('timeout');
    addPodFiles(fixture().podRoot, '/run/.keep');
    const virtiofsd = await backend(resolvePath('/run/virtiofsd.sock'));
    await expect(boot).resolves.toBeUndefined();
    expect(standin.state().vm).toBe('Running');
    expect(virtiofsd.connections).toHaveLength(1);
    const [connection] = virtiofsd.connections;
    const closed = new Promise((resolve) => connection.once('close', resolve));
    expect(connection.destroyed).toBe(false);

    // A virtiofsd ends when CH lets go of it: at shutdown, not before.
    await client.vm.shutdown();
    await closed;
  });

  it('does not wait for a vhost-user-net backend in Server mode (CH listens instead; not modelled)', async () => {
    const { client, standin } = fixture();
    const config = vhostUserNet(sampleVmConfig());
    config.net = [{ ...config.net?.[0], vhost_mode: 'Server' }];
    await client.vm.create(config);
    await client.vm.boot();
    expect(standin.state().vm).toBe('Running');
  });
});
