/**
 * The pod's network namespace, opened once and checked before netprep changes anything in it. The daemon finds the
 * namespace as `/proc/<pid>/ns/net` of a process in the pod's cgroup; that process may end while netprep runs, and its
 * PID may then be reused by a process of another pod or of the node. A path looked up again for every command could
 * name that other namespace; a descriptor names the namespace it was opened on for as long as it is held (and keeps it
 * alive). So the file is opened once, checked, and every command enters it through the descriptor (netns.ts).
 *
 * The checks: the file is a namespace file (on the kernel's nsfs), of a network namespace, and neither the daemon's own
 * namespace nor PID 1's (the node's): a wrong path must fail here rather than rebuild the node's network.
 */
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { O_PATH } from '../daemon/pod-files';
import { LaunchError } from '../launcher/failure';

/** A namespace's identity: every namespace file lives on the one nsfs, and its inode number names the namespace. */
export interface NamespaceId {
  readonly dev: number;
  readonly ino: number;
}

export interface NamespaceFile extends NamespaceId {
  /** `net`, `mnt`, … as the kernel names the namespace type; undefined when the file is no namespace file. */
  readonly type: string | undefined;
}

const same = (a: NamespaceId, b: NamespaceId) => a.dev === b.dev && a.ino === b.ino;

/**
 * Why netprep must not work in `target`, or undefined when it may. `own` and `init`: the daemon's namespace and PID 1's,
 * when the daemon can see PID 1's (see {@link pid1Netns}).
 */
export function netnsRefusal(
  target: NamespaceFile,
  own: NamespaceId,
  init: NamespaceId | undefined,
): string | undefined {
  // The daemon's own namespace file is on nsfs, so its device is nsfs's.
  if (target.dev !== own.dev || target.type === undefined) return 'not a namespace file';
  if (target.type !== 'net') return `a ${target.type} namespace, not a network namespace`;
  if (same(target, own)) return "is the node daemon's own namespace";
  if (init && same(target, init)) return "is PID 1's namespace (the node's)";
  return undefined;
}

/** `net:[4026532177]` → `net`, when the inode matches. */
function typeFromName(name: string | undefined, ino: number): string | undefined {
  const m = /^([a-z_]+):\[(\d+)\]$/.exec(name ?? '');
  return m && Number(m[2]) === ino ? m[1] : undefined;
}

/**
 * The namespace type of an open nsfs file. Node has no ioctl(NS_GET_NSTYPE), so it is read from names the kernel
 * gives: a `/proc/<pid>/ns/*` file's descriptor links to `net:[<inode>]`; a namespace bind-mounted elsewhere (a
 * runtime's `/var/run/netns/…`) links to its mount point instead, and its mount — found by the descriptor's mount ID —
 * has nsfs's `net:[<inode>]` as its root.
 */
export function namespaceType(fd: number, ino: number): string | undefined {
  const linked = typeFromName(readlinkSync(`/proc/self/fd/${fd}`), ino);
  if (linked !== undefined) return linked;
  const mountId = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // <id> <parent> <major:minor> <root> <mount point> <options> [optional fields] - <fs type> <source> <options>
    const [fields, fsInfo] = line.split(' - ');
    const [id, , , root] = fields.split(' ');
    if (id === mountId && fsInfo?.startsWith('nsfs ')) return typeFromName(root, ino);
  }
  return undefined;
}

/**
 * PID 1's network namespace — the node's, for a daemon in the host's PID namespace — or undefined when the kernel does
 * not let the daemon see it: reading another process's namespace links takes ptrace-read access, which a non-dumpable
 * PID 1 (some sandboxes' init) denies even to root. Then only the daemon's own namespace is known to refuse.
 */
function pid1Netns(): NamespaceId | undefined {
  try {
    return statSync('/proc/1/ns/net');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return undefined;
    throw e;
  }
}

/**
 * Opens the namespace file at `path` (O_PATH: no file is read, so even a FIFO or device there is only looked at) and
 * returns the descriptor once it passed the checks above. The caller closes it.
 */
export function openNetnsFile(path: string): number {
  const failure = (why: string) => new LaunchError(`network namespace ${path}: ${why}`);
  let fd: number;
  try {
    fd = openSync(path, O_PATH);
  } catch (e) {
    throw failure((e as Error).message);
  }
  try {
    const target = fstatSync(fd);
    const own = statSync('/proc/self/ns/net');
    const init = pid1Netns();
    const type = target.dev === own.dev ? namespaceType(fd, target.ino) : undefined;
    const refusal = netnsRefusal({ dev: target.dev, ino: target.ino, type }, own, init);
    if (refusal !== undefined) throw failure(refusal);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e instanceof LaunchError ? e : failure((e as Error).message);
  }
}
