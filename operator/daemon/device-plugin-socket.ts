// Sockets in the kubelet's plugin directory. Everything there is untrusted: other plugins, the kubelet and anyone
// with root on the node write to it. So nothing here follows a symlink (lstat, unlink), and a socket is known by its
// identity (device, inode, birth time) rather than its name: the kubelet deletes and recreates sockets under the
// same names, and a freed inode number may come back, but not with the same birth time.
import fs from 'node:fs';

/**
 * Identity of the unix socket at `socketPath`, or undefined when nothing is there or it is not a socket (a symlink
 * to a socket included: lstat, so it is not one).
 */
export function socketIdentity(socketPath: string): string | undefined {
  let stats: fs.BigIntStats;
  try {
    stats = fs.lstatSync(socketPath, { bigint: true });
  } catch {
    return undefined;
  }
  if (!stats.isSocket()) return undefined;
  return `${stats.dev}:${stats.ino}:${stats.birthtimeNs}`;
}

/**
 * Clears `socketPath` before a server binds there: a stale socket of ours (a previous run), or whatever else took
 * the name (a symlink is removed as a link, never followed). A directory is left alone and reported, because
 * removing a tree because of its name is not ours to do.
 */
export function removeStaleSocket(socketPath: string): void {
  let stats: fs.Stats;
  try {
    stats = fs.lstatSync(socketPath);
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  if (stats.isDirectory()) throw new Error(`${socketPath} is a directory; cannot serve a device plugin there`);
  try {
    fs.unlinkSync(socketPath);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** Removes `socketPath` only while it is still the socket with `identity` (ours), never a successor's. */
export function removeOwnSocket(socketPath: string, identity: string | undefined): void {
  if (identity === undefined || socketIdentity(socketPath) !== identity) return;
  try {
    fs.unlinkSync(socketPath);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** True for ENOENT: the path is (already) gone. */
function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === 'ENOENT';
}
