/**
 * Runs the launcher's tools (ip, nft, dnsmasq, genisoimage, qemu-img, mkfs.ext4) with explicit argv — never
 * through a shell — and turns a failure into a {@link LaunchError} that quotes the command and its stderr.
 */
import { execFile, spawn } from 'node:child_process';
import { LaunchError } from './failure';

export interface CommandOptions {
  /** What the command was for, prefixed to the error, e.g. `interface pod: create bridge br-eth0`. */
  readonly what?: string;
  /** Upper bound on the run time; the tools here finish in milliseconds unless something is wrong. @default 60 s */
  readonly timeoutMs?: number;
  /**
   * Run inside this network namespace (the path of its nsfs file) through `nsenter --net=<path>`: the node daemon
   * prepares a VM pod's network from the host. Messages quote the command itself, not the host path.
   */
  readonly netns?: string;
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Quotes an argv for messages only (it is never given to a shell). */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function run(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = options.netns ? ['nsenter', `--net=${options.netns}`, '--', ...argv] : argv;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const code = error.killed ? 'timed out' : typeof error.code === 'number' ? `exit ${error.code}` : error.code;
        const detail = (stderr || stdout || error.message).trim().split('\n').slice(-3).join('\n');
        const prefix = options.what ? `${options.what}: ` : '';
        reject(new LaunchError(`${prefix}command failed (${code}): ${formatArgv(argv)}: ${detail}`));
      },
    );
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
