/**
 * Executable CH stand-in, for tests that exec a process where production execs `cloud-hypervisor`:
 *
 *   tsx test/standins/cloud-hypervisor-standin-main.ts --api-socket <path> [--no-shutdown]
 *       [--event-monitor path=<file>|fd=<n>] [--standin-power-button ignore|poweroff]
 *
 * `--api-socket` takes CH's forms `<path>` and `path=<path>` (`fd=` is not supported). CH's logging and sandbox
 * flags (`-v…`, `--log-file`, `--seccomp`) are accepted and ignored; anything else is refused like CH's argument
 * parser does (exit 1). Prints one ready line on stdout once the socket accepts calls; exits 0 after
 * `vmm.shutdown`, a guest power-off without `--no-shutdown`, a finished outgoing migration, SIGTERM or SIGINT.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { formatEventMonitorRecord, startCloudHypervisorStandin } from './cloud-hypervisor-standin';

export interface StandinArgs {
  socketPath: string;
  noShutdown: boolean;
  eventMonitor?: { path: string } | { fd: number };
  powerButton: 'ignore' | 'poweroff';
}

function usage(message: string): never {
  throw new Error(message);
}

/** Parses the command line; throws with CH-like wording on anything CH would refuse or the stand-in lacks. */
export function parseStandinArgs(argv: readonly string[]): StandinArgs {
  let socketPath: string | undefined;
  let eventMonitor: StandinArgs['eventMonitor'];
  let noShutdown = false;
  let powerButton: StandinArgs['powerButton'] = 'ignore';
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
    } else if (flag === '--no-shutdown') noShutdown = true;
    else if (flag === '--event-monitor') {
      const v = value();
      if (v.startsWith('path=')) eventMonitor = { path: v.slice('path='.length) };
      else if (/^fd=\d+$/.test(v)) eventMonitor = { fd: Number(v.slice('fd='.length)) };
      else usage(`--event-monitor expects path=<file> or fd=<n>, got ${v}`);
    } else if (flag === '--standin-power-button') {
      const v = value();
      if (v !== 'ignore' && v !== 'poweroff') usage(`--standin-power-button expects ignore or poweroff, got ${v}`);
      powerButton = v;
    } else if (flag === '--log-file' || flag === '--seccomp') value();
    else if (!/^-v+$/.test(flag)) usage(`unexpected argument '${argv[i]}'`);
  }
  if (!socketPath) usage('--api-socket <path> is required (the stand-in has no VM flags)');
  return { socketPath, noShutdown, eventMonitor, powerButton };
}

async function main(): Promise<void> {
  const args = parseStandinArgs(process.argv.slice(2));
  let monitor: WriteStream | undefined;
  if (args.eventMonitor) {
    monitor =
      'path' in args.eventMonitor
        ? createWriteStream(args.eventMonitor.path, { flags: 'a' })
        : createWriteStream('', { fd: args.eventMonitor.fd });
  }
  const standin = await startCloudHypervisorStandin({
    socketPath: args.socketPath,
    noShutdown: args.noShutdown,
    powerButton: args.powerButton,
    onEvent: (event) => monitor?.write(formatEventMonitorRecord(event)),
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void standin.stop());
  process.stdout.write(`cloud-hypervisor-standin ready: api socket ${args.socketPath} pid ${process.pid}\n`);
  const reason = await standin.exited;
  process.stderr.write(`cloud-hypervisor-standin exiting: ${reason}\n`);
  if (monitor) await new Promise<void>((resolve) => monitor.end(resolve));
  process.exit(0);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`cloud-hypervisor-standin: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
