// The CH stand-in driving a real guest (a StandinMachine, as --standin-qemu gives it): which calls reach the guest,
// how what the guest does by itself comes back as CH's transitions, and what is refused. A recording fake stands in
// for QEMU here; test/launch/standin-qemu.launch.test.ts runs the real one.
import type { VmConfig } from '../../../operator/cloudhypervisor/types';
import type {
  StandinMachine,
  StandinMachineEvents,
  StandinMachineStart,
} from '../../standins/cloud-hypervisor-standin-vmm';
import { chError, sampleVmConfig, useStandin } from './standin-fixture';

class FakeMachine implements StandinMachine {
  readonly calls: string[] = [];
  events: StandinMachineEvents | undefined;
  config: VmConfig | undefined;
  failStart: string | undefined;
  failNext: string | undefined;

  start(config: VmConfig, events: StandinMachineEvents): Promise<StandinMachineStart> {
    this.calls.push('start');
    if (this.failStart) return Promise.resolve({ ok: false, chain: [this.failStart] });
    this.config = config;
    this.events = events;
    const call = (name: string) => () => {
      this.calls.push(name);
      const failure = this.failNext;
      this.failNext = undefined;
      return failure ? Promise.reject(new Error(failure)) : Promise.resolve();
    };
    return Promise.resolve({
      ok: true,
      guest: {
        pause: call('pause'),
        resume: call('resume'),
        reboot: call('reboot'),
        powerButton: call('powerButton'),
        stop: () => {
          this.calls.push('stop');
          return Promise.resolve();
        },
      },
    });
  }
}

describe('CH stand-in with a real guest (StandinMachine)', () => {
  const machine = new FakeMachine();
  const lines: string[] = [];
  const fixture = useStandin({ machine, log: (line) => lines.push(line) });
  beforeEach(() => {
    machine.calls.splice(0);
    machine.failStart = undefined;
    lines.splice(0);
  });

  it('starts the guest at boot and has it pause, resume, reboot, press the power button and stop', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    expect(machine.config?.payload.kernel).toBe('/var/lib/kubevisor/vmlinux');
    await client.vm.pause();
    expect((await client.vm.info()).state).toBe('Paused');
    await client.vm.resume();
    await client.vm.pause();
    // A reboot brings a paused VM back running (CH builds a new VM).
    await client.vm.reboot();
    expect((await client.vm.info()).state).toBe('Running');
    await client.vm.powerButton();
    expect((await client.vm.info()).state).toBe('Running'); // the guest decides; its power-off is an event
    await client.vm.shutdown();
    expect((await client.vm.info()).state).toBe('Created');
    expect(machine.calls).toEqual(['start', 'pause', 'resume', 'pause', 'reboot', 'powerButton', 'stop']);
    expect(standin.events.map((e) => e.event).slice(1)).toEqual([
      'booting',
      'booted',
      'pausing',
      'paused',
      'resuming',
      'resumed',
      'pausing',
      'paused',
      'rebooting',
      'rebooted',
      'shutdown',
    ]);
  });

  it('reports the guest`s own reset as a reboot and its power-off as the VMM`s end (exit 0)', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    machine.events?.reset();
    expect(standin.events.slice(-2).map((e) => e.event)).toEqual(['rebooting', 'rebooted']);
    machine.events?.poweredOff();
    await expect(standin.exited).resolves.toEqual({ reason: 'guest powered off', code: 0 });
    expect(machine.calls).toEqual(['start', 'stop']);
    expect(lines).toEqual([]);
  });

  it('reports an emulator that ended by itself as a crash: an ERROR line, then the VMM`s end', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    machine.events?.lost('QEMU ended by itself (signal SIGKILL): no message');
    await expect(standin.exited).resolves.toEqual({ reason: 'guest crashed (QEMU ended)', code: 0 });
    expect(lines).toEqual([expect.stringMatching(/ERROR:stand-in -- QEMU ended by itself \(signal SIGKILL\)/)]);
  });

  it('fails the boot with the machine`s reason, and a failed guest call with 500', async () => {
    const { client } = fixture();
    await client.vm.create(sampleVmConfig());
    machine.failStart = 'stand-in: QEMU could not start the guest';
    expect((await chError(client.vm.boot())).chain).toEqual([
      'Error from API',
      'The VM could not boot',
      'stand-in: QEMU could not start the guest',
    ]);
    expect((await client.vm.info()).state).toBe('Created');
    machine.failStart = undefined;
    await client.vm.boot();
    machine.failNext = 'the QMP connection closed';
    const error = await chError(client.vm.pause());
    expect([error.statusCode, error.chain.at(-1)]).toEqual([500, 'stand-in: QEMU: the QMP connection closed']);
    expect((await client.vm.info()).state).toBe('Running');
  });

  it('refuses what a real guest could not follow: snapshots, migration, changing a booted VM', async () => {
    const { client } = fixture();
    await client.vm.create(sampleVmConfig());
    // Before boot only the stored config changes: that still works.
    await client.vm.addDisk({ path: '/var/lib/kubevisor/disks/root.raw', id: 'again' });
    await client.vm.removeDevice({ id: 'again' });
    await client.vm.boot();
    const calls = [
      () => client.vm.addDisk({ path: '/var/lib/kubevisor/disks/root.raw', id: 'data' }),
      () => client.vm.removeDevice({ id: 'data' }),
      () => client.vm.snapshot({ destination_url: 'file:///tmp' }),
    ];
    for (const call of calls) {
      const error = await chError(call());
      expect([error.statusCode, error.chain.at(-1)]).toEqual([500, 'stand-in: not implemented for the QEMU guest']);
    }
  });
});
