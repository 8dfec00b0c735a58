/**
 * Safe access to a VM pod's files from the host. The kubelet creates the pod directory and the run-dir emptyDir
 * (trusted); everything inside the run dir is written by the pod and may be hostile: a symlink planted there must not
 * make the privileged daemon read, connect to or watch anything else on the node, and no file may be read unbounded.
 *
 * Node has no openat(2), so paths are walked one component at a time: each directory is opened with
 * O_PATH|O_NOFOLLOW|O_DIRECTORY and the next component is opened relative to it through `/proc/self/fd/<dir>/<name>`
 * (the magic link resolves to that very directory, not to a path an attacker could swap). Sockets are opened the same
 * way and connected to through `/proc/self/fd/<n>`, which also keeps the address short: a kubelet pod path is longer
 * than the 108 bytes a unix socket address may hold.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** O_PATH: a handle on the file itself, not opened for reading (x86-64 and arm64 value; Node does not export it). */
export const O_PATH = 0o10000000;
const { O_NOFOLLOW, O_DIRECTORY, O_RDONLY, O_NONBLOCK } = constants;

/** Why a pod path could not be used; `code` is the errno name or a rule of ours. */
export class PodPathError extends Error {
  constructor(
    readonly path: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PodPathError';
  }
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'EIO';
}

/** Whether an error means "not there (yet)" rather than "refused". */
export function isMissing(error: unknown): boolean {
  return error instanceof PodPathError ? error.code === 'ENOENT' : errnoCode(error) === 'ENOENT';
}

/**
 * Opens `relative` (components separated by '/', no '..', no empty parts) beneath the trusted directory `root`
 * without following any symlink on the way, and returns the descriptor. The caller closes it.
 */
export function openBeneath(root: string, relative: string, flags: number): number {
  const parts = relative.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new PodPathError(relative, 'EINVAL', `${relative}: not a plain relative path`);
  }
  let dir: number;
  try {
    dir = openSync(root, O_PATH | O_DIRECTORY);
  } catch (error) {
    throw new PodPathError(root, errnoCode(error), `${root}: ${(error as Error).message}`);
  }
  try {
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      const path = `/proc/self/fd/${dir}/${parts[i]}`;
      let next: number;
      try {
        next = openSync(path, last ? flags | O_NOFOLLOW : O_PATH | O_NOFOLLOW | O_DIRECTORY);
      } catch (error) {
        const code = errnoCode(error);
        // ELOOP: the component is a symlink; ENOTDIR: a file (or symlink) where a directory should be.
        const what = code === 'ELOOP' || code === 'ENOTDIR' ? 'is a symlink or not a directory' : code;
        throw new PodPathError(`${root}/${relative}`, code, `${relative}: ${what}`);
      }
      closeSync(dir);
      dir = next;
    }
    return dir;
  } catch (error) {
    closeSync(dir);
    throw error;
  }
}

/**
 * Reads a regular file beneath `root`, at most `maxBytes` from `offset`. Returns the bytes and the file's size, so
 * a caller tailing a file knows whether more is waiting. Refuses symlinks, FIFOs (which would block) and devices.
 */
export function readBeneath(
  root: string,
  relative: string,
  maxBytes: number,
  offset = 0,
): { data: Buffer; size: number } {
  const fd = openBeneath(root, relative, O_RDONLY | O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new PodPathError(relative, 'EINVAL', `${relative}: not a regular file`);
    const length = Math.max(0, Math.min(maxBytes, stat.size - offset));
    const data = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, data, read, length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return { data: data.subarray(0, read), size: stat.size };
  } finally {
    closeSync(fd);
  }
}

/** Whether `relative` beneath `root` exists as what is expected, without following symlinks. */
export function kindBeneath(root: string, relative: string): 'socket' | 'file' | 'directory' | 'other' | 'missing' {
  let fd: number;
  try {
    fd = openBeneath(root, relative, O_PATH);
  } catch (error) {
    if (isMissing(error)) return 'missing';
    return 'other';
  }
  try {
    const stat = fstatSync(fd);
    return stat.isSocket() ? 'socket' : stat.isFile() ? 'file' : stat.isDirectory() ? 'directory' : 'other';
  } finally {
    closeSync(fd);
  }
}

/**
 * A unix socket beneath `root`, held open by an O_PATH descriptor: `address` connects to exactly the socket that was
 * checked, whatever the pod does to the name afterwards. `close()` releases the descriptor.
 */
export interface HeldSocket {
  readonly address: string;
  close(): void;
}

export function holdSocket(root: string, relative: string): HeldSocket {
  // With O_PATH|O_NOFOLLOW a symlink is opened as itself rather than refused: fstat tells.
  const fd = openBeneath(root, relative, O_PATH);
  const stat = fstatSync(fd);
  if (!stat.isSocket()) {
    closeSync(fd);
    const what = stat.isSymbolicLink() ? 'is a symlink' : 'not a unix socket';
    throw new PodPathError(relative, 'ENOTSOCK', `${relative}: ${what}`);
  }
  let open = true;
  return {
    address: `/proc/self/fd/${fd}`,
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/**
 * A trusted directory held open: `path` (`/proc/self/fd/<n>`) names exactly it, and is short enough to build unix
 * socket addresses in it however long the directory's own path is.
 */
export function holdDirectory(dir: string): { path: string; close(): void } {
  const fd = openSync(dir, O_PATH | O_DIRECTORY);
  let open = true;
  return {
    path: `/proc/self/fd/${fd}`,
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
