// The typed client driving the CH stand-in over a real unix socket through a VM's whole life.
import { existsSync } from 'node:fs';
import { chError, sampleVmConfig, useStandin, waitUntil } from './standin-fixture';

describe('CloudHypervisorClient against the CH stand-in: VM lifecycle', () => {
  const fixture = useStandin();

  it('pings, creates, boots, pauses, resumes, reboots, shuts down and deletes', async () => {
    const { client, standin } = fixture();

    const ping = await client.vmm.ping();
    expect(ping.version).toBe('53.0.0');
    expect(ping.build_version).toContain('standin');
    // What the measured v53.0 release build reports (reference §14).
    expect(ping.features).toEqual(['io_uring', 'kvm']);

    // NoVM: vm.info is 404 (reference §2).
    const noVm = await chError(client.vm.info());
    expect(noVm.statusCode).toBe(404);
    expect(noVm.chain).toEqual(['Error from API', 'The VM info is not available', 'VM is not created']);

    await expect(client.vm.create(sampleVmConfig())).resolves.toBeUndefined();
    expect((await client.vm.info()).state).toBe('Created');

    await client.vm.boot();
    const running = await client.vm.info();
    expect(running.state).toBe('Running');
    // CH fills in what was omitted (with its defaults, reference §14) and names devices that came without an id.
    expect(running.config.rng).toEqual({ src: '/dev/urandom', iommu: false });
    expect(running.config.disks?.[0].id).toMatch(/^_disk\d+$/);
    expect(running.config.disks?.[0].image_type).toBe('Raw');

    await client.vm.pause();
    expect((await client.vm.info()).state).toBe('Paused');
    const pausedTwice = await chError(client.vm.pause());
    expect(pausedTwice.kind).toBe('http');
    expect(pausedTwice.statusCode).toBe(500);
    expect(pausedTwice.chain).toEqual([
      'Error from API',
      'The VM could not be paused',
      'Cannot pause VM',
      'Failed to pause migratable component',
      'Invalid transition: InvalidStateTransition(Paused, Paused)',
    ]);
    expect(pausedTwice.message).toBe(
      'PUT /api/v1/vm.pause → 500: Error from API: The VM could not be paused: Cannot pause VM: ' +
        'Failed to pause migratable component: Invalid transition: InvalidStateTransition(Paused, Paused)',
    );
    expect(pausedTwice.mentions('InvalidStateTransition(Paused, Paused)')).toBe(true);

    await client.vm.resume();
    expect((await client.vm.info()).state).toBe('Running');
    const resumedTwice = await chError(client.vm.resume());
    expect(resumedTwice.statusCode).toBe(500);
    expect(resumedTwice.mentions('InvalidStateTransition(Running, Running)')).toBe(true);

    await client.vm.reboot();
    expect((await client.vm.info()).state).toBe('Running');

    // The default stand-in guest ignores the ACPI button, as a guest without acpid does.
    await client.vm.powerButton();
    expect((await client.vm.info()).state).toBe('Running');

    const counters = await client.vm.counters();
    expect(Object.keys(counters)).toContain(running.config.disks?.[0].id);

    // vm.shutdown drops the VM but keeps the config: Created, not "Shutdown" (reference §2).
    await client.vm.shutdown();
    expect((await client.vm.info()).state).toBe('Created');

    await client.vm.delete();
    expect((await chError(client.vm.info())).statusCode).toBe(404);
    // Deleting with nothing there is a no-op.
    await expect(client.vm.delete()).resolves.toBeUndefined();

    expect(standin.events.map((e) => `${e.source}:${e.event}`)).toEqual([
      'vmm:starting',
      'vm:booting',
      'vm:booted',
      'vm:pausing',
      'vm:paused',
      'vm:resuming',
      'vm:resumed',
      'vm:rebooting',
      'vm:rebooted',
      'vm:shutdown',
      'vm:deleted',
    ]);
  });

  it('vmm.shutdown deletes the VM, answers 200 and ends the VMM', async () => {
    const { client, standin, socketPath } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();

    const res = await client.request('PUT', 'vmm.shutdown');
    expect(res).toEqual({ statusCode: 200, body: '' });
    await expect(standin.exited).resolves.toEqual({ reason: 'vmm.shutdown', code: 0 });
    expect(existsSync(socketPath)).toBe(false);
    expect((await chError(client.vmm.ping())).kind).toBe('transport');
  });

  it('a guest power-off ends the VMM (no --no-shutdown)', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    expect(standin.guest.powerOff()).toEqual({ ok: true });
    await expect(standin.exited).resolves.toEqual({ reason: 'guest powered off', code: 0 });
  });
});

describe('CloudHypervisorClient against the CH stand-in started with --no-shutdown', () => {
  const fixture = useStandin({ noShutdown: true, powerButton: 'poweroff' });

  it('a guest that powers off on the ACPI button leaves the config, and vm.boot works again', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    await client.vm.powerButton();
    // The guest acts after the call has returned, as a real one would.
    await waitUntil(() => standin.state().vm === 'Created', 'the guest to power off');
    expect((await client.vm.info()).state).toBe('Created');
    await client.vm.boot();
    expect((await client.vm.info()).state).toBe('Running');
  });
});
