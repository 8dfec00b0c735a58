/**
 * Executable CH stand-in, for tests that exec a process where production execs `cloud-hypervisor`:
 *
 *   tsx test/standins/cloud-hypervisor-standin-main.ts --api-socket <path> [--no-shutdown]
 *       [--event-monitor path=<file>|fd=<n>] [--standin-power-button ignore|poweroff]
 *       [--standin-control <socket>] [--standin-root <dir>] [--standin-vhost-user-wait-ms <ms>]
 *       [--standin-migration-bytes-per-second <n>] [--standin-qemu <qemu-system-x86_64> [--standin-qemu-machine q35|microvm]]
 *   tsx test/standins/cloud-hypervisor-standin-main.ts --version
 *
 * `--api-socket` takes CH's forms `<path>` and `path=<path>` (`fd=` is not supported). CH's logging and sandbox
 * flags (`-v…`, `--log-file`, `--seccomp`) are accepted and ignored; anything else is refused like CH's argument
 * parser does (exit 1). The `--standin-*` flags are the stand-in's own:
 * - `--standin-control`: a unix socket where the test acts as the guest (`poweroff`, `reboot`, `crash`, one per
 *   line; see cloud-hypervisor-standin-control.ts);
 * - `--standin-root`: paths of the VmConfig are resolved below this directory (the stand-in runs outside the
 *   VM pod's mount namespace);
 * - `--standin-vhost-user-wait-ms`, `--standin-migration-bytes-per-second`: shorten CH's ≈60 s vhost-user retry
 *   and its migration pace;
 * - `--standin-qemu`: every booted VM's guest really runs, under this QEMU (TCG), from the VmConfig's own kernel,
 *   disks and TAPs, its serial console on stdout (cloud-hypervisor-standin-qemu.ts); `--standin-qemu-machine`
 *   picks QEMU's machine (default q35). Without it the guest is modelled (and played over `--standin-control`,
 *   which a real guest does not take).
 *
 * `--version` prints one line naming the stand-in and the CH version it models, and exits 0.
 *
 * Prints one ready line on stdout once the socket accepts calls; writes CH's log lines to stderr, as CH does.
 * Exit code as CH's (reference/cloud-hypervisor.md §14): 0 after `vmm.shutdown`, a guest power-off or crash
 * without `--no-shutdown`, a finished outgoing migration, SIGTERM or SIGINT; 1 when CH's VMM thread panics.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { formatEventMonitorRecord, startCloudHypervisorStandin } from './cloud-hypervisor-standin';
import { serveStandinControl } from './cloud-hypervisor-standin-control';
import { QemuStandinMachine } from './cloud-hypervisor-standin-qemu';
import type { QemuMachineType } from './cloud-hypervisor-standin-qemu-args';

export interface StandinArgs {
  socketPath: string;
  noShutdown: boolean;
  eventMonitor?: { path: string } | { fd: number };
  powerButton: 'ignore' | 'poweroff';
  /** `--standin-control`: the guest-control socket. */
  controlPath?: string;
  /** `--standin-root`: the directory VmConfig paths are resolved below. */
  root?: string;
  vhostUserWaitMs?: number;
  migrationBytesPerSecond?: number;
  /** `--standin-qemu` and `--standin-qemu-machine`: run guests under this QEMU. */
  qemu?: { binary: string; machine: QemuMachineType };
}

/** What `--version` prints: CH prints `cloud-hypervisor v53.0`; the stand-in says what it is. */
export const STANDIN_VERSION_LINE =
  'cloud-hypervisor-standin v53.0 (kubevisor test stand-in for Cloud Hypervisor v53.0: its REST API; guests under QEMU TCG with --standin-qemu)';

function usage(message: string): never {
  throw new Error(message);
}

function count(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) usage(`${flag} expects a whole number, got ${value}`);
  return Number(value);
}

/** Parses the command line; throws with CH-like wording on anything CH would refuse or the stand-in lacks. */
export function parseStandinArgs(argv: readonly string[]): StandinArgs {
  let socketPath: string | undefined;
  let qemuMachine: QemuMachineType | undefined;
  const args: Omit<StandinArgs, 'socketPath'> = { noShutdown: false, powerButton: 'ignore' };
  for (let i = 0; i < argv.length; i++) {
    // `--flag=value` and `--flag value` are both accepted, as by CH's clap parser.
    const eq = argv[i].startsWith('--') ? argv[i].indexOf('=') : -1;
    const [flag, inline] = eq > 0 ? [argv[i].slice(0, eq), argv[i].slice(eq + 1)] : [argv[i], undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    if (flag === '--api-socket') {
      const v = value();
      if (v.startsWith('fd=')) usage('--api-socket fd=… is not supported by the stand-in');
      socketPath = v.startsWith('path=') ? v.slice('path='.length) : v;
    } else if (flag === '--no-shutdown') args.noShutdown = true;
    else if (flag === '--event-monitor') {
      const v = value();
      if (v.startsWith('path=')) args.eventMonitor = { path: v.slice('path='.length) };
      else if (/^fd=\d+$/.test(v)) args.eventMonitor = { fd: Number(v.slice('fd='.length)) };
      else usage(`--event-monitor expects path=<file> or fd=<n>, got ${v}`);
    } else if (flag === '--standin-power-button') {
      const v = value();
      if (v !== 'ignore' && v !== 'poweroff') usage(`--standin-power-button expects ignore or poweroff, got ${v}`);
      args.powerButton = v;
    } else if (flag === '--standin-control') args.controlPath = value();
    else if (flag === '--standin-root') args.root = value();
    else if (flag === '--standin-vhost-user-wait-ms') args.vhostUserWaitMs = count(flag, value());
    else if (flag === '--standin-migration-bytes-per-second') {
      args.migrationBytesPerSecond = count(flag, value());
      if (args.migrationBytesPerSecond === 0) usage(`${flag} must be above 0`);
    } else if (flag === '--standin-qemu') args.qemu = { binary: value(), machine: 'q35' };
    else if (flag === '--standin-qemu-machine') {
      const v = value();
      if (v !== 'q35' && v !== 'microvm') usage(`--standin-qemu-machine expects q35 or microvm, got ${v}`);
      qemuMachine = v;
    } else if (flag === '--log-file' || flag === '--seccomp') value();
    else if (!/^-v+$/.test(flag)) usage(`unexpected argument '${argv[i]}'`);
  }
  if (!socketPath) usage('--api-socket <path> is required (the stand-in has no VM flags)');
  if (qemuMachine) {
    if (!args.qemu) usage('--standin-qemu-machine needs --standin-qemu');
    args.qemu.machine = qemuMachine;
  }
  if (args.qemu && args.controlPath)
    usage('--standin-control plays a modelled guest; with --standin-qemu the guest is real');
  return { socketPath, ...args };
}

/** Where the executable writes; the real process passes its stdout/stderr and a signal aborted by SIGTERM/SIGINT. */
export interface StandinIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Aborting it stops the VMM as SIGTERM does. */
  readonly signal?: AbortSignal;
}

/** Runs the stand-in until its VMM "exits"; resolves with the process's exit code. */
export async function runStandin(args: StandinArgs, io: StandinIo): Promise<number> {
  let monitor: WriteStream | undefined;
  if (args.eventMonitor) {
    monitor =
      'path' in args.eventMonitor
        ? createWriteStream(args.eventMonitor.path, { flags: 'a' })
        : createWriteStream('', { fd: args.eventMonitor.fd });
  }
  const { root } = args;
  const resolvePath = root === undefined ? undefined : (path: string) => join(root, path);
  const machine = args.qemu
    ? new QemuStandinMachine({
        binary: args.qemu.binary,
        machine: args.qemu.machine,
        // Private to this stand-in, beside its API socket (where CH keeps its `<socket>.lock`).
        qmpPath: `${args.socketPath}.standin-qmp`,
        resolvePath,
        serial: io.stdout,
        log: (line) => io.stderr(`${line}\n`),
      })
    : undefined;
  const standin = await startCloudHypervisorStandin({
    socketPath: args.socketPath,
    noShutdown: args.noShutdown,
    powerButton: args.powerButton,
    onEvent: (event) => monitor?.write(formatEventMonitorRecord(event)),
    log: (line) => io.stderr(`${line}\n`),
    resolvePath,
    vhostUserWaitMs: args.vhostUserWaitMs,
    migrationBytesPerSecond: args.migrationBytesPerSecond,
    machine,
  });
  const control = args.controlPath ? await serveStandinControl(args.controlPath, standin.guest) : undefined;
  const stop = () => void standin.stop();
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  const note = machine ? `; ${machine.describe()}` : '';
  io.stdout(`cloud-hypervisor-standin ready: api socket ${args.socketPath} pid ${process.pid}${note}\n`);
  const exit = await standin.exited;
  io.signal?.removeEventListener('abort', stop);
  await control?.close();
  if (monitor) await new Promise<void>((resolve) => monitor.end(resolve));
  return exit.code;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--version') || argv.includes('-V')) {
    process.stdout.write(`${STANDIN_VERSION_LINE}\n`);
    return;
  }
  const args = parseStandinArgs(argv);
  const stopping = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stopping.abort());
  const code = await runStandin(args, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    signal: stopping.signal,
  });
  process.exit(code);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`cloud-hypervisor-standin: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
