// Which calls the CH stand-in accepts in which VM state, with v53.0's status codes (reference/cloud-hypervisor.md §3,
// §4, and §14 where the measured v53.0 binary differs from later upstream: only "VM is not created" / "VM config is
// missing" are 404, every other failure of a well-formed call is 500).
import type { CloudHypervisorClient } from '../../../operator/cloudhypervisor/client';
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import { addPodFiles, chError, sampleVmConfig, useStandin } from './standin-fixture';

type Call = (c: CloudHypervisorClient) => Promise<unknown>;

const calls: Record<string, Call> = {
  create: (c) => c.vm.create(sampleVmConfig()),
  boot: (c) => c.vm.boot(),
  shutdown: (c) => c.vm.shutdown(),
  reboot: (c) => c.vm.reboot(),
  powerButton: (c) => c.vm.powerButton(),
  pause: (c) => c.vm.pause(),
  resume: (c) => c.vm.resume(),
  info: (c) => c.vm.info(),
  counters: (c) => c.vm.counters(),
  addDisk: (c) => c.vm.addDisk({ path: '/extra.raw', image_type: 'Raw' }),
  removeDevice: (c) => c.vm.removeDevice({ id: 'nope' }),
  resizeDisk: (c) => c.request('PUT', 'vm.resize-disk', { id: 'nope', desired_size: 1 << 30 }),
  snapshot: (c) => c.vm.snapshot({ destination_url: 'file:///nonexistent' }),
  restore: (c) => c.vm.restore({ source_url: 'file:///nonexistent' }),
  sendMigration: (c) => c.vm.sendMigration({ destination_url: 'unix:/nonexistent.sock' }),
};

/** [state, call, status, last message of CH's chain]. */
const refused: [string, string, number, string][] = [
  ['NoVM', 'boot', 404, 'VM config is missing'],
  ['NoVM', 'shutdown', 500, 'VM is not running'],
  // §4: no VM gives 500 where the spec documents 404 (issue #8678) — but reboot really is 404.
  ['NoVM', 'reboot', 404, 'VM is not created'],
  ['NoVM', 'powerButton', 500, 'VM is not running'],
  ['NoVM', 'pause', 500, 'VM is not running'],
  ['NoVM', 'resume', 500, 'VM is not running'],
  ['NoVM', 'info', 404, 'VM is not created'],
  ['NoVM', 'counters', 500, 'VM is not running'],
  ['NoVM', 'addDisk', 404, 'VM is not created'],
  ['NoVM', 'removeDevice', 404, 'VM is not created'],
  ['NoVM', 'resizeDisk', 404, 'VM is not created'],
  ['NoVM', 'snapshot', 500, 'VM is not running'],
  ['NoVM', 'sendMigration', 500, 'VM is not running'],
  ['Created', 'create', 500, 'VM is already created'],
  ['Created', 'shutdown', 500, 'VM is not running'],
  // §3: reboot needs a booted VM; a stored config is not enough.
  ['Created', 'reboot', 404, 'VM is not created'],
  ['Created', 'pause', 500, 'VM is not running'],
  ['Created', 'counters', 500, 'VM is not running'],
  // §14: an unknown device id is 500 in v53.0 (later upstream: 404).
  ['Created', 'removeDevice', 500, 'No device with id "nope" to remove'],
  ['Created', 'restore', 500, 'VM is already created'],
  ['Running', 'create', 500, 'VM is already created'],
  ['Running', 'boot', 500, 'VM is already created'],
  ['Running', 'resume', 500, 'Invalid transition: InvalidStateTransition(Running, Running)'],
  // §3: only a Paused VM can be snapshotted.
  ['Running', 'snapshot', 500, 'Trying to snapshot while VM is running'],
  ['Running', 'restore', 500, 'VM is already created'],
  ['Running', 'removeDevice', 500, 'No device with id "nope" to remove'],
  // §14: v53.0's text and 500 for a disk id it does not know (later upstream: 404).
  ['Running', 'resizeDisk', 500, 'Failed to find device corresponding to the given identifier'],
  ['Paused', 'pause', 500, 'Invalid transition: InvalidStateTransition(Paused, Paused)'],
  ['Paused', 'boot', 500, 'VM is already created'],
];

async function reach(client: CloudHypervisorClient, state: string): Promise<void> {
  if (state === 'NoVM') return;
  await client.vm.create(sampleVmConfig());
  if (state === 'Created') return;
  await client.vm.boot();
  if (state === 'Paused') await client.vm.pause();
}

describe('CH stand-in: calls in the wrong state', () => {
  const fixture = useStandin();

  it.each(refused)('%s: %s is refused with %i (%s)', async (state, call, status, cause) => {
    const { client, standin } = fixture();
    await reach(client, state);
    const error = await chError(calls[call](client));
    expect(error.statusCode).toBe(status);
    expect(error.chain[0]).toBe('Error from API');
    expect(error.chain.at(-1)).toBe(cause);
    // A refused call changes nothing.
    expect(standin.state().vm).toBe(state);
  });
});

describe('CH stand-in: devices', () => {
  const fixture = useStandin();

  it('cold-adds a disk to a created VM (204, no body) and names it at boot', async () => {
    const { client, podRoot } = fixture();
    addPodFiles(podRoot, '/data.raw');
    await client.vm.create(sampleVmConfig());
    await expect(client.vm.addDisk({ path: '/data.raw', image_type: 'Raw', readonly: true })).resolves.toBeUndefined();
    await client.vm.boot();
    const disks = (await client.vm.info()).config.disks ?? [];
    expect(disks.map((d) => d.path)).toEqual(['/var/lib/kubevisor/disks/root.raw', '/data.raw']);
    expect(disks.every((d) => d.id?.startsWith('_disk'))).toBe(true);
  });

  it('hot-plugs a disk into a running VM (200 + PciDeviceInfo) and unplugs it again', async () => {
    const { client, podRoot } = fixture();
    addPodFiles(podRoot, '/data.raw', '/scratch.raw', '/other.raw');
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    const info = await client.vm.addDisk({ path: '/data.raw', image_type: 'Qcow2', id: 'data' });
    expect(info).toEqual({ id: 'data', bdf: expect.stringMatching(/^0000:00:[0-9a-f]{2}\.0$/) });
    // §14: the address sits on the virtio transport node, whose child is the device.
    const tree = (await client.vm.info()).device_tree ?? {};
    expect(tree['_virtio-pci-data']).toMatchObject({ pci_bdf: info?.bdf, children: ['data'] });
    expect(tree.data).toMatchObject({ id: 'data', parent: '_virtio-pci-data' });
    expect(tree.data).not.toHaveProperty('pci_bdf');

    const unnamed = await client.vm.addDisk({ path: '/scratch.raw', image_type: 'Raw' });
    expect(unnamed?.id).toMatch(/^_disk\d+$/);

    // §14: a duplicate id fails the config validation with 500 in v53.0 (later upstream: 409).
    const sameId = await chError(client.vm.addDisk({ path: '/other.raw', image_type: 'Raw', id: 'data' }));
    expect([sameId.statusCode, sameId.chain]).toEqual([
      500,
      [
        'Error from API',
        'The disk could not be added to the VM',
        'Failed to validate config',
        'Identifier data is not unique',
      ],
    ]);
    // Hot-plugged, a second disk on the same image cannot take the image lock (§14).
    const samePath = await chError(client.vm.addDisk({ path: '/data.raw', image_type: 'Raw', id: 'again' }));
    expect([samePath.statusCode, samePath.chain.slice(0, 4)]).toEqual([
      500,
      [
        'Error from API',
        'The disk could not be added to the VM',
        'Error from device manager',
        'Failed to lock the disk image',
      ],
    ]);

    await client.vm.removeDevice({ id: 'data' });
    expect((await client.vm.info()).config.disks?.map((d) => d.id)).not.toContain('data');
    // §14: an unknown id is 500 in v53.0 (later upstream: 404).
    const gone = await chError(client.vm.removeDevice({ id: 'data' }));
    expect([gone.statusCode, gone.chain]).toEqual([
      500,
      ['Error from API', 'The device could not be removed from the VM', 'No device with id "data" to remove'],
    ]);
    // Unplugging released the image lock: the image can be plugged again.
    await expect(client.vm.addDisk({ path: '/data.raw', image_type: 'Raw', id: 'back' })).resolves.toMatchObject({
      id: 'back',
    });
  });

  it('models the other add-* and resize endpoints on the stored config', async () => {
    const { client } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.request('PUT', 'vm.add-net', { tap: 'tap1', num_queues: 2 });
    await client.request('PUT', 'vm.add-vsock', { cid: 3, socket: '/run/vsock.sock' });
    const second = await chError(client.request('PUT', 'vm.add-vsock', { cid: 4, socket: '/run/vsock2.sock' }));
    expect([second.statusCode, second.chain.at(-1)]).toEqual([500, 'Too many virtio-vsock devices']);
    await client.request('PUT', 'vm.resize', { desired_vcpus: 1 });
    const zone = await chError(client.request('PUT', 'vm.resize-zone', { id: 'z', desired_ram: 1 }));
    expect([zone.statusCode, zone.chain.at(-1)]).toEqual([500, 'Failed resizing a memory zone']);
    const config = (await client.vm.info()).config;
    expect(config.net?.map((n) => n.tap)).toEqual(['tap0', 'tap1']);
    expect(config.vsock?.cid).toBe(3);
    expect(config.cpus?.boot_vcpus).toBe(1);
    // Hot-plugged while running, a device answers with where it landed.
    await client.vm.boot();
    const net = await client.request('PUT', 'vm.add-net', { tap: 'tap2', id: 'extra' });
    expect(JSON.parse(net.body)).toEqual({ id: 'extra', bdf: expect.stringMatching(/^0000:00:/) });
    await expect(client.request('PUT', 'vm.nmi')).resolves.toEqual({ statusCode: 204, body: '' });
  });
});

describe('CH stand-in: config validation at boot answers 500 in v53.0 (reference §14)', () => {
  const fixture = useStandin();
  const shared = { ...sampleVmConfig().memory, size: 1 << 30, shared: true };

  // [case, config, CH's validation message]; later upstream answers these with 400 or 409 (§4), v53.0 with 500.
  const invalid: [string, VmConfig, string][] = [
    [
      'max below boot vCPUs',
      { ...sampleVmConfig(), cpus: { boot_vcpus: 2, max_vcpus: 1 } },
      'Max CPUs lower than boot CPUs',
    ],
    [
      'a hugepage size without hugepages',
      { ...sampleVmConfig(), memory: { size: 1 << 30, hugepage_size: 2 << 20 } },
      'Huge page size specified but huge pages not enabled',
    ],
    [
      'an MTU below the minimum',
      { ...sampleVmConfig(), net: [{ tap: 'tap0', mtu: 1000 }] },
      'Provided MTU 1000 is lower than 1280 (expected by VIRTIO specification)',
    ],
    [
      'vhost-user without shared memory',
      { ...sampleVmConfig(), fs: [{ tag: 'data', socket: '/run/virtiofsd.sock', num_queues: 1, queue_size: 1024 }] },
      'Using vhost-user requires using shared memory or huge pages',
    ],
    [
      'a kernel together with firmware',
      { ...sampleVmConfig(), payload: { kernel: '/var/lib/kubevisor/vmlinux', firmware: '/fw' } },
      'Payload configuration is not bootable',
    ],
    [
      'no boot item',
      { ...sampleVmConfig(), payload: { cmdline: 'no kernel' } },
      'Payload configuration is not bootable',
    ],
    [
      'a duplicate device id',
      {
        ...sampleVmConfig(),
        memory: shared,
        disks: [{ id: 'dup', path: '/var/lib/kubevisor/disks/root.raw', image_type: 'Raw' }],
        net: [{ id: 'dup', tap: 'tap0' }],
      },
      'Identifier dup is not unique',
    ],
  ];

  it.each(invalid)(
    'refuses %s with 500 at boot, not at create; the VM stays Created',
    async (_name, config, message) => {
      const { client, standin } = fixture();
      await client.vm.create(config);
      const error = await chError(client.vm.boot());
      expect([error.statusCode, error.chain]).toEqual([
        500,
        ['Error from API', 'The VM could not boot', 'Failed to validate config', message],
      ]);
      expect(standin.state().vm).toBe('Created');
      expect(standin.events.map((e) => e.event)).not.toContain('booted');
    },
  );
});
