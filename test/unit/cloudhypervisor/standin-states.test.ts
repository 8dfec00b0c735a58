// Which calls the CH stand-in accepts in which VM state, with CH's status codes (reference/cloud-hypervisor.md §3, §4).
import type { CloudHypervisorClient } from '../../../operator/cloudhypervisor/client';
import { chError, sampleVmConfig, useStandin } from './standin-fixture';

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
  ['NoVM', 'snapshot', 500, 'VM is not running'],
  ['NoVM', 'sendMigration', 500, 'VM is not running'],
  ['Created', 'create', 500, 'VM is already created'],
  ['Created', 'shutdown', 500, 'VM is not running'],
  // §3: reboot needs a booted VM; a stored config is not enough.
  ['Created', 'reboot', 404, 'VM is not created'],
  ['Created', 'pause', 500, 'VM is not running'],
  ['Created', 'counters', 500, 'VM is not running'],
  ['Created', 'removeDevice', 404, 'No device with id "nope" to remove'],
  ['Created', 'restore', 500, 'VM is already created'],
  ['Running', 'create', 500, 'VM is already created'],
  ['Running', 'boot', 500, 'VM is already created'],
  ['Running', 'resume', 500, 'Invalid transition: InvalidStateTransition(Running, Running)'],
  // §3: only a Paused VM can be snapshotted.
  ['Running', 'snapshot', 500, 'Trying to snapshot while VM is running'],
  ['Running', 'restore', 500, 'VM is already created'],
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
    const { client } = fixture();
    await client.vm.create(sampleVmConfig());
    await expect(client.vm.addDisk({ path: '/data.raw', image_type: 'Raw', readonly: true })).resolves.toBeUndefined();
    await client.vm.boot();
    const disks = (await client.vm.info()).config.disks ?? [];
    expect(disks.map((d) => d.path)).toEqual(['/var/lib/kubevisor/disks/root.raw', '/data.raw']);
    expect(disks.every((d) => d.id?.startsWith('_disk'))).toBe(true);
  });

  it('hot-plugs a disk into a running VM (200 + PciDeviceInfo) and unplugs it again', async () => {
    const { client } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    const info = await client.vm.addDisk({ path: '/data.raw', image_type: 'Qcow2', id: 'data' });
    expect(info).toEqual({ id: 'data', bdf: expect.stringMatching(/^0000:00:[0-9a-f]{2}\.0$/) });
    expect((await client.vm.info()).device_tree?.data?.pci_bdf).toBe(info?.bdf);

    const unnamed = await client.vm.addDisk({ path: '/scratch.raw', image_type: 'Raw' });
    expect(unnamed?.id).toMatch(/^_disk\d+$/);

    // 409 for a duplicate id or path (§4), after validating the config with the device added (§3).
    const sameId = await chError(client.vm.addDisk({ path: '/other.raw', image_type: 'Raw', id: 'data' }));
    expect([sameId.statusCode, sameId.chain.at(-1)]).toEqual([409, 'Identifier data is not unique']);
    const samePath = await chError(client.vm.addDisk({ path: '/data.raw', image_type: 'Raw', id: 'again' }));
    expect([samePath.statusCode, samePath.chain.at(-1)]).toEqual([409, 'Duplicated device path: /data.raw']);

    await client.vm.removeDevice({ id: 'data' });
    expect((await client.vm.info()).config.disks?.map((d) => d.id)).not.toContain('data');
    const gone = await chError(client.vm.removeDevice({ id: 'data' }));
    expect([gone.statusCode, gone.chain.at(-1)]).toEqual([404, 'No device with id "data" to remove']);
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

  it('validates the whole config at boot, not at create (§4): 400 and the VM stays Created', async () => {
    const { client, standin } = fixture();
    await client.vm.create({ ...sampleVmConfig(), payload: { cmdline: 'no kernel' } });
    const error = await chError(client.vm.boot());
    expect(error.statusCode).toBe(400);
    expect(error.chain).toEqual([
      'Error from API',
      'The VM could not boot',
      'Failed to validate config',
      'Payload configuration is not bootable',
    ]);
    expect(standin.state().vm).toBe('Created');
  });

  it('refuses at boot a virtio-fs device without shared memory', async () => {
    const { client } = fixture();
    await client.vm.create({
      ...sampleVmConfig(),
      fs: [{ tag: 'data', socket: '/run/virtiofsd.sock', num_queues: 1, queue_size: 1024 }],
    });
    const error = await chError(client.vm.boot());
    expect([error.statusCode, error.chain.at(-1)]).toEqual([
      400,
      'Using vhost-user requires using shared memory or huge pages',
    ]);
  });
});
