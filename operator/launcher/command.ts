/**
 * Runs the launcher's tools (ip, nft, dnsmasq, genisoimage, qemu-img, mkfs.ext4) with explicit argv — never
 * through a shell — and turns a failure into a {@link LaunchError} that quotes the command and its stderr.
 */
import { spawn } from 'node:child_process';
import { LaunchError } from './failure';

export interface CommandOptions {
  /** What the command was for, prefixed to the error, e.g. `interface pod: create bridge br-eth0`. */
  readonly what?: string;
  /** Upper bound on the run time; the tools here finish in milliseconds unless something is wrong. @default 60 s */
  readonly timeoutMs?: number;
  /**
   * Run inside the network namespace this descriptor holds (the node daemon prepares a VM pod's network from the
   * host): the descriptor becomes the child's fd 3 and the command runs as `nsenter --net=/proc/self/fd/3 -- argv`.
   * So every command enters the namespace that was opened and checked once, never whatever a path names by the time
   * the command starts. Messages quote the command itself.
   */
  readonly netnsFd?: number;
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** The child's descriptor that carries {@link CommandOptions.netnsFd} (0–2 are stdio). */
const NETNS_CHILD_FD = 3;
/** More output than any of these tools prints; a command printing more is stopped rather than buffered on. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Quotes an argv for messages only (it is never given to a shell). */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function run(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const fd = options.netnsFd;
  const [file, ...args] = fd === undefined ? argv : ['nsenter', `--net=/proc/self/fd/${NETNS_CHILD_FD}`, '--', ...argv];
  const timeoutMs = options.timeoutMs ?? 60_000;
  const prefix = options.what ? `${options.what}: ` : '';
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe', ...(fd === undefined ? [] : [fd])] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let stopped: string | undefined;
    let settled = false;
    const stop = (why: string) => {
      stopped ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop('timed out'), timeoutMs);
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT_BYTES) stop('too much output');
      else into.push(chunk);
    };
    child.stdout?.on('data', collect(out));
    child.stderr?.on('data', collect(err));
    const fail = (status: string, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const last = detail.trim().split('\n').slice(-3).join('\n');
      reject(new LaunchError(`${prefix}command failed (${status}): ${formatArgv(argv)}: ${last}`));
    };
    child.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? 'error', e.message));
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (!stopped && code === 0) {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        return resolve({ stdout, stderr });
      }
      const status = stopped ?? (code !== null ? `exit ${code}` : `signal ${signal}`);
      fail(status, stderr || stdout || status);
    });
  });
}

/**
 * Starts a tool that daemonises (dnsmasq, virtiofsd) and waits for the starting process to exit. The daemon
 * inherits the launcher's stdout and stderr — in a pod, the container log — and keeps them after the launcher is
 * gone; a pipe here would be held open by the daemon forever. Its own error text therefore goes to the log, and
 * the failure line carries the exit status and `meaning` of it.
 */
export function startDaemon(
  argv: readonly string[],
  options: CommandOptions & { readonly meaning?: (code: number) => string | undefined } = {},
): Promise<void> {
  const [file, ...args] = argv;
  const prefix = options.what ? `${options.what}: ` : '';
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new LaunchError(`${prefix}${formatArgv(argv)} did not start within ${options.timeoutMs ?? 30_000} ms`));
    }, options.timeoutMs ?? 30_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new LaunchError(`${prefix}cannot run ${formatArgv(argv)}: ${e.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const status = signal ? `signal ${signal}` : `exit ${code}`;
      const meaning = code !== null ? options.meaning?.(code) : undefined;
      reject(
        new LaunchError(
          `${prefix}command failed (${status}${meaning ? `: ${meaning}` : ''}): ${formatArgv(argv)} (its message is in the log above)`,
        ),
      );
    });
  });
}
