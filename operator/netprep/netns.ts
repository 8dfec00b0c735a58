/**
 * The VM pod's network namespace as netprep works on it from the host: every `ip`, `nft` and `sysctl` runs through
 * `nsenter --net=<path>`, each bounded by what is left of the whole preparation's deadline.
 */
import { statSync } from 'node:fs';
import { run, type CommandResult } from '../launcher/command';
import { LaunchError } from '../launcher/failure';

/** One command should take milliseconds; this bounds one that hangs. */
const COMMAND_TIMEOUT_MS = 10_000;

export interface PodNetns {
  /** The namespace's nsfs file, e.g. `/proc/<pid>/ns/net` or the runtime's `/var/run/netns/cni-…`. */
  readonly path: string;
  /** `Date.now()` after which no further command starts. */
  readonly deadline: number;
}

/**
 * Refuses a path that is not a network namespace file, or that names the daemon's own namespace (the node's, for a
 * host-network daemon): a wrong path must fail here rather than rebuild the node's network.
 */
export function checkPodNetns(path: string): void {
  let target;
  let own;
  try {
    own = statSync('/proc/self/ns/net');
    target = statSync(path);
  } catch (e) {
    throw new LaunchError(`network namespace ${path}: ${(e as Error).message}`);
  }
  // Every namespace file lives on the one nsfs mount, so they share its device number.
  if (target.dev !== own.dev) throw new LaunchError(`network namespace ${path}: not a namespace file`);
  if (target.ino === own.ino) throw new LaunchError(`network namespace ${path}: is the node daemon's own namespace`);
}

/** Runs argv inside the pod's network namespace; `what` names the step in any error. */
export function runIn(ns: PodNetns, argv: readonly string[], what: string): Promise<CommandResult> {
  const left = ns.deadline - Date.now();
  if (left <= 0) throw new LaunchError(`${what}: the node daemon ran out of time preparing the pod network`);
  return run(argv, { what, netns: ns.path, timeoutMs: Math.min(COMMAND_TIMEOUT_MS, left) });
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
