/**
 * The CH stand-in's real guest: on `vm.boot` the stand-in runs QEMU (TCG) with the VmConfig's own kernel, disks
 * and TAPs (cloud-hypervisor-standin-qemu-args.ts) and drives it over QMP on a private socket, as CH drives its
 * vCPUs and devices:
 *
 *   vm.pause → `stop`   vm.resume → `cont`   vm.reboot → `system_reset` (+ `cont`: a rebooted VM runs)
 *   vm.power-button → `system_powerdown` (the guest decides)   vm.shutdown, vm.delete, vmm.shutdown → `quit`
 *
 * and reports what the guest does by itself from QMP's events: `SHUTDOWN` with `guest: true` is a guest power-off,
 * `RESET` with `guest: true` a guest reboot (a reboot, a triple fault, a panic with `panic=-1`), and QEMU ending
 * when nobody asked is the VM dying. Events QEMU reports for what the stand-in itself asked (`guest: false`) are
 * not the guest's.
 *
 * The guest's serial port and console in `Tty` mode go to the stand-in's stdout (the container log), QEMU's own
 * messages to its stderr prefixed `cloud-hypervisor-standin: qemu:`.
 *
 * Every wait is bounded (QMP connect, each command, quit), and no QEMU outlives the stand-in: QEMU is a child
 * started through `setpriv --pdeathsig KILL` (the kernel kills it when the stand-in dies, however it dies), is
 * killed on the process's `exit`, and is quit — then killed — on every path that ends the VM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmConfig } from '../../operator/cloudhypervisor/types';
import { qemuArgsForVmConfig, type QemuMachineType } from './cloud-hypervisor-standin-qemu-args';
import type {
  StandinMachine,
  StandinMachineEvents,
  StandinMachineStart,
  StandinRunningGuest,
} from './cloud-hypervisor-standin-vmm';

export interface QemuMachineOptions {
  /** The qemu-system-x86_64 binary. */
  readonly binary: string;
  /** @default 'q35' */
  readonly machine?: QemuMachineType;
  /** Where QMP listens; beside the API socket, as CH keeps its `<socket>.lock` there. */
  readonly qmpPath: string;
  /** Maps a VmConfig path (inside the VM pod) to the path QEMU opens. @default identity */
  readonly resolvePath?: (pathInPod: string) => string;
  /** Receives the guest's serial port and console (`Tty` mode): the stand-in's stdout. */
  readonly serial: (text: string) => void;
  /** Receives QEMU's own messages and the stand-in's notes about it: the stand-in's stderr. */
  readonly log: (line: string) => void;
  /** How long QMP may take to answer after QEMU started. @default 10000 */
  readonly qmpConnectMs?: number;
  /** How long one QMP command may take. @default 10000 */
  readonly commandMs?: number;
}

/** How soon after a reset another reset is the firmware's, not the guest's (see onEvent). */
const FIRMWARE_RESET_MS = 1_500;

/** Every QEMU this process started and has not seen end, killed when the process exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous: 'exit' runs no more I/O. The pdeathsig covers the deaths that run no handler (SIGKILL).
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** The MTU of a network interface visible to the stand-in (the VM pod's namespace), as CH reads it off its TAP. */
function interfaceMtu(name: string): number | undefined {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
    return Number.isInteger(mtu) && mtu > 0 ? mtu : undefined;
  } catch {
    return undefined;
  }
}

type QmpMessage = {
  readonly QMP?: unknown;
  readonly return?: unknown;
  readonly error?: { readonly class?: string; readonly desc?: string };
  readonly event?: string;
  readonly data?: Record<string, unknown>;
  readonly id?: number;
};

/** A QMP client: JSON objects one per line; replies matched by `id`, events handed to `onEvent`. */
class Qmp {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private greeted: () => void = () => undefined;
  readonly greeting = new Promise<void>((resolve) => (this.greeted = resolve));

  constructor(
    private readonly socket: Socket,
    private readonly onEvent: (event: string, data: Record<string, unknown>) => void,
    private readonly commandMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line !== '') this.receive(JSON.parse(line) as QmpMessage);
      }
    });
    const closed = () => this.failAll(new Error('the QMP connection closed'));
    socket.on('close', closed);
    socket.on('error', closed);
  }

  /** Connects, retrying while QEMU creates the socket; gives up at the deadline or when `gone` settles. */
  static async connect(
    path: string,
    deadlineMs: number,
    gone: Promise<unknown>,
    onEvent: (event: string, data: Record<string, unknown>) => void,
    commandMs: number,
  ): Promise<Qmp> {
    let ended = false;
    void gone.then(() => (ended = true));
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const socket = await new Promise<Socket | undefined>((resolve) => {
        const s = createConnection(path);
        s.once('connect', () => {
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', () => resolve(undefined));
      });
      if (socket) {
        const qmp = new Qmp(socket, onEvent, commandMs);
        await qmp.within(qmp.greeting, 'the QMP greeting');
        await qmp.command('qmp_capabilities');
        return qmp;
      }
      if (ended) throw new Error('QEMU ended before its QMP socket accepted a connection');
      if (Date.now() >= deadline) throw new Error(`QMP did not accept a connection within ${deadlineMs} ms`);
      await sleep(20);
    }
  }

  command(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.socket.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}), id })}\n`);
    return this.within(reply, `QMP ${execute}`).finally(() => this.pending.delete(id));
  }

  close(): void {
    this.socket.destroy();
  }

  private async within<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${this.commandMs} ms`)), this.commandMs);
    });
    try {
      return await Promise.race([promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private receive(message: QmpMessage): void {
    if (message.QMP !== undefined) return this.greeted();
    if (message.event !== undefined) return this.onEvent(message.event, message.data ?? {});
    const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
    if (!waiter) return;
    if (message.error) waiter.reject(new Error(`${message.error.class ?? 'Error'}: ${message.error.desc ?? ''}`));
    else waiter.resolve(message.return);
  }

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

/** The last lines of QEMU's stderr, to explain a failure. */
class Tail {
  private lines: string[] = [];
  private partial = '';

  push(text: string): string[] {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    const complete = parts.map((l) => l.trimEnd()).filter((l) => l !== '');
    this.lines = [...this.lines, ...complete].slice(-10);
    return complete;
  }

  last(): string {
    return [...this.lines, this.partial.trim()].filter((l) => l !== '').at(-1) ?? 'no message';
  }
}

/** One running QEMU: the guest of one booted VM. */
class QemuGuest implements StandinRunningGuest {
  private stopping: Promise<void> | undefined;
  private ended = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly qmp: Qmp,
    readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
    private readonly options: QemuMachineOptions,
  ) {
    void exited.then(() => {
      this.ended = true;
      qmp.close();
    });
  }

  async pause(): Promise<void> {
    await this.qmp.command('stop');
  }

  async resume(): Promise<void> {
    await this.qmp.command('cont');
  }

  async reboot(): Promise<void> {
    // A reset keeps a stopped VM stopped; CH's reboot builds a new VM that runs.
    await this.qmp.command('system_reset');
    await this.qmp.command('cont');
  }

  async powerButton(): Promise<void> {
    await this.qmp.command('system_powerdown');
  }

  /** `quit`, then SIGKILL if QEMU has not ended 3 s later; resolves once it has ended. Never rejects. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (!this.ended) {
        await this.qmp.command('quit').catch(() => undefined);
        const late = await Promise.race([this.exited.then(() => false), sleep(3_000).then(() => true)]);
        if (late) {
          this.child.kill('SIGKILL');
          await this.exited;
        }
      }
      rmSync(this.options.qmpPath, { force: true });
    })();
    return this.stopping;
  }

  /** Whether QEMU was asked to end (then its exit is no news). */
  get asked(): boolean {
    return this.stopping !== undefined;
  }
}

/** Runs each booted VM's guest under QEMU; see the file comment. */
export class QemuStandinMachine implements StandinMachine {
  private readonly setpriv = findOnPath('setpriv');

  constructor(private readonly options: QemuMachineOptions) {}

  /** A note for the stand-in's ready line. */
  describe(): string {
    return `guests under QEMU TCG (${this.options.binary}, machine ${this.options.machine ?? 'q35'})`;
  }

  async start(config: VmConfig, events: StandinMachineEvents): Promise<StandinMachineStart> {
    const { options } = this;
    const built = qemuArgsForVmConfig(config, {
      machine: options.machine ?? 'q35',
      qmpPath: options.qmpPath,
      resolvePath: options.resolvePath ?? ((p) => p),
      tapMtu: interfaceMtu,
    });
    if (!built.ok) return { ok: false, chain: [built.why] };
    rmSync(options.qmpPath, { force: true });

    installExitHook();
    // setpriv sets PR_SET_PDEATHSIG and execs QEMU, so the pid is QEMU's and the kernel kills it with the stand-in.
    const [file, ...args] = this.setpriv
      ? [this.setpriv, '--pdeathsig', 'KILL', '--', options.binary, ...built.args]
      : [options.binary, ...built.args];
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      // 'close' follows 'exit' once stdout and stderr are drained, so no console output is lost.
      child.once('close', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => {
        tail.push(`${error.message}\n`);
        resolve({ code: -1, signal: null });
      });
    });
    void exited.then(() => live.delete(child));
    const tail = new Tail();
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => options.serial(text));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      for (const line of tail.push(text)) options.log(`cloud-hypervisor-standin: qemu: ${line}`);
    });

    let lastReset = 0;
    const onEvent = (event: string, data: Record<string, unknown>): void => {
      const now = Date.now();
      const resetBefore = lastReset;
      if (event === 'RESET') lastReset = now;
      // Only what the guest did by itself is news; `guest: false` answers the stand-in's own commands.
      if (data.guest !== true) return;
      if (event === 'SHUTDOWN') events.poweredOff();
      // q35's firmware (SeaBIOS) resets a warm-reset machine once more before it boots it, ≈0.2 s after the reset:
      // that is the same reboot, not the guest's next one (a guest cannot boot and reboot within a second on TCG).
      else if (event === 'RESET' && now - resetBefore > FIRMWARE_RESET_MS) events.reset();
    };
    let qmp: Qmp;
    try {
      qmp = await Qmp.connect(
        options.qmpPath,
        options.qmpConnectMs ?? 10_000,
        exited,
        onEvent,
        options.commandMs ?? 10_000,
      );
    } catch (error) {
      child.kill('SIGKILL');
      const end = await exited;
      rmSync(options.qmpPath, { force: true });
      return {
        ok: false,
        chain: [
          `stand-in: QEMU could not start the guest (${describeExit(end)}): ${(error as Error).message}`,
          tail.last(),
        ],
      };
    }
    const running = new QemuGuest(child, qmp, exited, options);
    void exited.then((end) => {
      if (!running.asked) events.lost(`QEMU ended by itself (${describeExit(end)}): ${tail.last()}`);
    });
    try {
      await qmp.command('cont');
    } catch (error) {
      await running.stop();
      return { ok: false, chain: [`stand-in: QEMU did not start the guest: ${(error as Error).message}`, tail.last()] };
    }
    return { ok: true, guest: running };
  }
}

function describeExit(end: { code: number | null; signal: NodeJS.Signals | null }): string {
  return end.signal ? `signal ${end.signal}` : `exit code ${end.code}`;
}
