// The executable CH stand-in, which launcher and daemon tests exec in place of `cloud-hypervisor`: its command line,
// and the process it runs (driven in-process through runStandin, with the guest played over --standin-control).
import { existsSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { CloudHypervisorClient } from '../../../operator/cloudhypervisor/client';
import { parseStandinArgs, runStandin, type StandinArgs } from '../../standins/cloud-hypervisor-standin-main';
import { addPodFiles, chError, SAMPLE_POD_FILES, sampleVmConfig, tempDir, waitUntil } from './standin-fixture';

describe('cloud-hypervisor-standin command line', () => {
  it.each([
    [['--api-socket', '/run/ch.sock']],
    [['--api-socket', 'path=/run/ch.sock']],
    [['--api-socket=path=/run/ch.sock']],
    [['--api-socket=/run/ch.sock', '-vv', '--log-file', '/tmp/ch.log', '--seccomp', 'true']],
  ])('takes CH`s --api-socket forms and ignores its logging flags: %j', (argv) => {
    expect(parseStandinArgs(argv)).toEqual({ socketPath: '/run/ch.sock', noShutdown: false, powerButton: 'ignore' });
  });

  it('reads --no-shutdown, --event-monitor and the stand-in`s own flags', () => {
    expect(
      parseStandinArgs([
        '--api-socket',
        '/s',
        '--no-shutdown',
        '--event-monitor',
        'fd=3',
        '--standin-power-button',
        'poweroff',
        '--standin-control',
        '/c.sock',
        '--standin-root=/pods/a',
        '--standin-vhost-user-wait-ms',
        '500',
        '--standin-migration-bytes-per-second',
        '1073741824',
      ]),
    ).toEqual({
      socketPath: '/s',
      noShutdown: true,
      eventMonitor: { fd: 3 },
      powerButton: 'poweroff',
      controlPath: '/c.sock',
      root: '/pods/a',
      vhostUserWaitMs: 500,
      migrationBytesPerSecond: 1073741824,
    });
    expect(parseStandinArgs(['--api-socket', '/s', '--event-monitor', 'path=/e.json']).eventMonitor).toEqual({
      path: '/e.json',
    });
  });

  it.each([
    [[], '--api-socket <path> is required'],
    [['--api-socket'], '--api-socket needs a value'],
    [['--api-socket', 'fd=3'], 'not supported by the stand-in'],
    [['--api-socket', '/s', '--kernel', '/vmlinux'], "unexpected argument '--kernel'"],
    [['--api-socket', '/s', '--event-monitor', 'stdout'], '--event-monitor expects path=<file> or fd=<n>'],
    [['--api-socket', '/s', '--standin-vhost-user-wait-ms', '1m'], 'expects a whole number, got 1m'],
    [['--api-socket', '/s', '--standin-migration-bytes-per-second', '0'], 'must be above 0'],
    [['--api-socket', '/s', '--standin-control'], '--standin-control needs a value'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseStandinArgs(argv)).toThrow(message);
  });
});

/** A line-protocol client of the control socket. */
class Control {
  private buffer = '';
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly lines: string[] = [];

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const waiter = this.waiting.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      }
    });
  }

  static connect(path: string): Promise<Control> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path, () => resolve(new Control(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes raw text (possibly part of a line). */
  write(text: string): void {
    this.socket.write(text);
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async send(command: string): Promise<string> {
    this.write(`${command}\n`);
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('the executable stand-in (runStandin)', () => {
  let dir: string;
  let cleanup: () => void;
  let stopping: AbortController;
  let running: Promise<number> | undefined;
  let stdout: string[];
  let stderr: string[];
  let control: Control | undefined;

  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    addPodFiles(join(dir, 'pod'), ...SAMPLE_POD_FILES);
    stopping = new AbortController();
    stdout = [];
    stderr = [];
  });

  afterEach(async () => {
    control?.close();
    control = undefined;
    stopping.abort();
    await running;
    running = undefined;
    cleanup();
  });

  /** Starts the executable's main loop with the pod files below `<dir>/pod`; answers once it is ready. */
  async function start(extra: Partial<StandinArgs> = {}): Promise<CloudHypervisorClient> {
    const args: StandinArgs = {
      ...parseStandinArgs([
        '--api-socket',
        join(dir, 'ch.sock'),
        '--standin-control',
        join(dir, 'control.sock'),
        '--standin-root',
        join(dir, 'pod'),
        '--event-monitor',
        `path=${join(dir, 'events.json')}`,
      ]),
      ...extra,
    };
    running = runStandin(args, {
      stdout: (text) => stdout.push(text),
      stderr: (text) => stderr.push(text),
      signal: stopping.signal,
    });
    await waitUntil(() => stdout.length > 0, 'the ready line');
    expect(stdout[0]).toMatch(/^cloud-hypervisor-standin ready: api socket .*ch\.sock pid \d+\n$/);
    control = await Control.connect(join(dir, 'control.sock'));
    return new CloudHypervisorClient({ socketPath: join(dir, 'ch.sock') });
  }

  it('plays the guest over --standin-control: a crash ends the VMM with 0 and CH`s error line on stderr', async () => {
    const client = await start();
    const guest = control as Control;
    expect(await guest.send('poweroff')).toBe('error no VM is running');
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    expect(await guest.send('reboot')).toBe('ok');
    expect(await guest.send('halt')).toBe('error unknown command "halt" (expected poweroff, reboot or crash)');
    // Commands may arrive in pieces.
    guest.write('cr');
    guest.write('ash\n');
    expect(await guest.next()).toBe('ok');

    await expect(running).resolves.toBe(0);
    expect(stderr.join('')).toMatch(
      /^cloud-hypervisor: \d+\.\d{6}s: <vcpu0> ERROR:vmm\/src\/cpu\.rs:1460 -- VCPU generated error: .*InternalError\)\n$/,
    );
    const events = readFileSync(join(dir, 'events.json'), 'utf8');
    expect([...events.matchAll(/"event": "(\w+)"/g)].map((m) => m[1]).slice(-3)).toEqual([
      'shutdown',
      'deleted',
      'shutdown',
    ]);
    expect(existsSync(join(dir, 'control.sock'))).toBe(false);
  });

  it('a guest power-off ends it with 0 and nothing on stderr', async () => {
    const client = await start();
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    expect(await (control as Control).send('poweroff')).toBe('ok');
    await expect(running).resolves.toBe(0);
    expect(stderr).toEqual([]);
  });

  it('keeps running after a guest power-off with --no-shutdown', async () => {
    const client = await start({ noShutdown: true });
    await client.vm.create(sampleVmConfig());
    await client.vm.boot();
    expect(await (control as Control).send('poweroff')).toBe('ok');
    expect((await client.vm.info()).state).toBe('Created');
    stopping.abort();
    await expect(running).resolves.toBe(0);
  });

  it('exits 1 when the VMM thread panics (serial File without a file, reference §14)', async () => {
    const client = await start();
    await client.vm.create({ ...sampleVmConfig(), serial: { mode: 'File' } });
    expect((await chError(client.vm.boot())).chain.at(-1)).toBe('receiving on a closed channel');
    await expect(running).resolves.toBe(1);
    expect(stderr.join('')).toMatch(/^thread 'vmm' panicked/);
  });

  it('ends with 0 on SIGTERM (the aborted signal) and resolves paths below --standin-root', async () => {
    const client = await start();
    await client.vm.create(sampleVmConfig());
    // The kernel, initramfs and disk exist only below the root.
    await client.vm.boot();
    stopping.abort();
    await expect(running).resolves.toBe(0);
  });
});
