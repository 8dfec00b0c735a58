// What the guest does by itself, and how the VMM ends (reference/cloud-hypervisor.md §2, §14): a guest power-off and
// a guest crash look the same to everything but CH's log; a VMM thread panic ends the process with exit code 1.
import { existsSync } from 'node:fs';
import type { StandinExit } from '../../standins/cloud-hypervisor-standin';
import { chError, sampleVmConfig, useStandin } from './standin-fixture';

/** The vCPU error line v53.0 logged for a guest that died of a KVM internal error (§14), with any timestamp. */
const VCPU_ERROR_LINE =
  /^cloud-hypervisor: \d+\.\d{6}s: <vcpu0> ERROR:vmm\/src\/cpu\.rs:1460 -- VCPU generated error: VcpuRun\(Failed to run vcpu Unexpected exit reason on vcpu run: InternalError\)$/;

/** Whether `exited` has settled by the time pending I/O and timers of this turn ran. */
async function hasExited(exited: Promise<StandinExit>): Promise<boolean> {
  let done = false;
  void exited.then(() => (done = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  return done;
}

describe('CH stand-in: the guest powers off or crashes (reference §14)', () => {
  const lines: string[] = [];
  const fixture = useStandin({ log: (line) => lines.push(line) });
  beforeEach(() => lines.splice(0));

  it.each([
    ['powers off', 'powerOff', 'guest powered off', 0],
    ['crashes', 'crash', 'guest crashed (vCPU error)', 1],
  ] as const)(
    'a guest that %s ends the VMM with exit code 0 and the same events',
    async (_what, act, reason, logged) => {
      const { client, standin, socketPath } = fixture();
      await client.vm.create(sampleVmConfig());
      await client.vm.boot();
      const before = standin.events.length;

      expect(standin.guest[act]()).toEqual({ ok: true });

      await expect(standin.exited).resolves.toEqual({ reason, code: 0 });
      expect(standin.events.slice(before).map((e) => `${e.source}:${e.event}`)).toEqual([
        'vm:shutdown',
        'vm:deleted',
        'vmm:shutdown',
      ]);
      expect(existsSync(socketPath)).toBe(false);
      // Only the log tells them apart: a crash leaves CH's vCPU error, a power-off nothing at the default level.
      expect(lines).toHaveLength(logged);
      for (const line of lines) expect(line).toMatch(VCPU_ERROR_LINE);
    },
  );

  it('a guest reboot rebuilds the VM: Running again, with rebooting/rebooted events', async () => {
    const { client, standin } = fixture();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    expect(standin.guest.reboot()).toEqual({ ok: true });
    expect(standin.events.slice(-2).map((e) => e.event)).toEqual(['rebooting', 'rebooted']);
    expect((await client.vm.info()).state).toBe('Running');
    expect(lines).toEqual([]);
  });

  it('a guest acts only while it runs: not without a VM, not while paused', async () => {
    const { client, standin } = fixture();
    for (const act of ['powerOff', 'crash', 'reboot'] as const) {
      expect(standin.guest[act]()).toEqual({ ok: false, why: 'no VM is running' });
    }
    await client.vm.create(sampleVmConfig());
    expect(standin.guest.crash()).toEqual({ ok: false, why: 'no VM is running' });
    await client.vm.boot();
    await client.vm.pause();
    expect(standin.guest.powerOff()).toEqual({ ok: false, why: 'the VM is paused' });
    expect(standin.state().vm).toBe('Paused');
    expect(await hasExited(standin.exited)).toBe(false);
    expect(lines).toEqual([]);
  });
});

describe('CH stand-in started with --no-shutdown: the guest powers off or crashes', () => {
  const lines: string[] = [];
  const fixture = useStandin({ noShutdown: true, log: (line) => lines.push(line) });
  beforeEach(() => lines.splice(0));

  it.each(['powerOff', 'crash'] as const)(
    '%s: only the VM shuts down; the config stays and vm.boot works again',
    async (act) => {
      const { client, standin } = fixture();
      await client.vm.create(sampleVmConfig());
      await client.vm.boot();
      const before = standin.events.length;
      expect(standin.guest[act]()).toEqual({ ok: true });
      expect(standin.events.slice(before).map((e) => `${e.source}:${e.event}`)).toEqual(['vm:shutdown']);
      expect((await client.vm.info()).state).toBe('Created');
      expect(await hasExited(standin.exited)).toBe(false);
      expect(lines).toHaveLength(act === 'crash' ? 1 : 0);
      await client.vm.boot();
      expect((await client.vm.info()).state).toBe('Running');
    },
  );
});

describe('CH stand-in: serial in File mode without a file panics the VMM thread (reference §14)', () => {
  const lines: string[] = [];
  const fixture = useStandin({ log: (line) => lines.push(line) });
  beforeEach(() => lines.splice(0));

  it('vm.create accepts it; vm.boot answers 500 "receiving on a closed channel" and the VMM exits 1', async () => {
    const { client, standin, socketPath } = fixture();
    await client.vm.create({ ...sampleVmConfig(), serial: { mode: 'File' } });
    const error = await chError(client.vm.boot());
    expect([error.statusCode, error.chain]).toEqual([
      500,
      ['Error from API', 'Error receiving API response', 'receiving on a closed channel'],
    ]);
    await expect(standin.exited).resolves.toEqual({ reason: 'the VMM thread panicked', code: 1 });
    expect(existsSync(socketPath)).toBe(false);
    expect(lines).toEqual([expect.stringMatching(/^thread 'vmm' panicked/)]);
    // Gone: the next call finds no server.
    expect((await chError(client.vmm.ping())).kind).toBe('transport');
  });

  it('boots a serial File with its file', async () => {
    const { client, standin } = fixture();
    await client.vm.create({ ...sampleVmConfig(), serial: { mode: 'File', file: '/var/log/serial.log' } });
    await client.vm.boot();
    expect(standin.state().vm).toBe('Running');
    expect(await hasExited(standin.exited)).toBe(false);
  });
});
