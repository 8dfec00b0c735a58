/**
 * The VM pod's network namespace as netprep works on it from the host: opened once by descriptor (netns-file.ts), and
 * every `ip`, `nft` and `sysctl` runs through `nsenter` on that descriptor, each bounded by what is left of the whole
 * preparation's deadline.
 */
import { closeSync } from 'node:fs';
import { run, type CommandResult } from '../launcher/command';
import { LaunchError } from '../launcher/failure';
import { openNetnsFile } from './netns-file';

/** One command should take milliseconds; this bounds one that hangs. */
const COMMAND_TIMEOUT_MS = 10_000;

export interface PodNetns {
  /** The path the namespace was opened from (`/proc/<pid>/ns/net`), for messages only. */
  readonly path: string;
  /** The descriptor every command enters the namespace through. */
  readonly fd: number;
  /** `Date.now()` after which no further command starts. */
  readonly deadline: number;
}

/**
 * Opens and checks the pod's namespace (a LaunchError naming the path when it is not a pod's network namespace).
 * `close()` releases the descriptor; commands run after it fail.
 */
export function openPodNetns(path: string, deadline: number): PodNetns & { close(): void } {
  const fd = openNetnsFile(path);
  let open = true;
  return {
    path,
    fd,
    deadline,
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Runs argv inside the pod's network namespace; `what` names the step in any error. */
export function runIn(ns: PodNetns, argv: readonly string[], what: string): Promise<CommandResult> {
  const left = ns.deadline - Date.now();
  if (left <= 0) throw new LaunchError(`${what}: the node daemon ran out of time preparing the pod network`);
  return run(argv, { what, netnsFd: ns.fd, timeoutMs: Math.min(COMMAND_TIMEOUT_MS, left) });
}

/** `ip <args>` in the pod's namespace. */
export const ip = (ns: PodNetns, args: readonly string[], what: string) => runIn(ns, ['ip', ...args], what);

/** `ip -j <args>`, parsed. */
export async function ipJson<T>(ns: PodNetns, args: readonly string[], what: string): Promise<T> {
  const { stdout } = await runIn(ns, ['ip', '-j', ...args], what);
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new LaunchError(`${what}: ip ${args.join(' ')} printed no JSON: ${stdout.slice(0, 200)}`);
  }
}
