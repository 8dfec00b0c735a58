// The relay's unix sockets live in a VM pod's run dir, which the pod writes: a symlink planted there must not make
// the privileged daemon bind, unlink or connect anywhere else on the node. So the socket's parent directory is
// opened once with O_NOFOLLOW (a symlinked parent is refused) and held open; every later operation names the entry
// through `/proc/self/fd/<dir>/<name>`, which resolves to that very directory whatever the pod renames afterwards.
// bind(2) never follows a final symlink and unlink(2) never does either; a socket to connect to is opened with
// O_PATH|O_NOFOLLOW, checked to be a socket, and connected to through `/proc/self/fd/<n>`, i.e. exactly the inode
// that was checked. A side effect: the address is short, where a kubelet pod path can exceed the 108 bytes a unix
// socket address may hold. Linux only (O_PATH, /proc), as the daemon is. The directories above the parent are
// trusted (the kubelet's), so only the parent itself is checked for being a symlink.
import { closeSync, constants, fstatSync, lstatSync, openSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { O_PATH } from './pod-files';

const { O_DIRECTORY, O_NOFOLLOW } = constants;
/** A directory descriptor of this process, named through procfs. */
const HELD_DIRECTORY = /^\/proc\/self\/fd\/\d+$/;

/** A socket path the relay refuses, with the rule it broke. */
export class RelaySocketPathError extends Error {
  constructor(
    readonly socketPath: string,
    message: string,
  ) {
    super(`migration relay socket ${socketPath}: ${message}`);
    this.name = 'RelaySocketPathError';
  }
}

/** The socket's parent directory, held open; `entry` is the socket's name relative to it. */
interface PinnedParent {
  /** `/proc/self/fd/<dir>/<name>`: the entry inside the held directory. */
  readonly entry: string;
  close(): void;
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'EIO';
}

function pinParent(socketPath: string): PinnedParent {
  if (!path.isAbsolute(socketPath)) throw new RelaySocketPathError(socketPath, 'must be an absolute path');
  const name = path.basename(socketPath);
  if (name === '' || name === '.' || name === '..' || socketPath.endsWith('/')) {
    throw new RelaySocketPathError(socketPath, 'must name a file, not a directory');
  }
  // A sun_path holds 107 bytes plus NUL; the /proc prefix takes about 20 of them.
  if (Buffer.byteLength(name) > 80) throw new RelaySocketPathError(socketPath, 'the file name is too long');
  const parent = path.dirname(socketPath);
  // `/proc/self/fd/<n>` is a directory this process already holds (pod-files.ts holdDirectory, which checked every
  // component beneath the kubelet's root): the magic link resolves to that very directory, so it is followed; any
  // other symlink as the parent is refused. Either way the relay holds its own descriptor from here on.
  const held = HELD_DIRECTORY.test(parent);
  let fd: number;
  try {
    fd = openSync(parent, O_PATH | O_DIRECTORY | (held ? 0 : O_NOFOLLOW));
  } catch (error) {
    const code = errnoCode(error);
    const why =
      code === 'ELOOP' || code === 'ENOTDIR'
        ? 'its parent directory is a symlink or not a directory'
        : `cannot open its parent directory (${code})`;
    throw new RelaySocketPathError(socketPath, why);
  }
  let open = true;
  return {
    entry: `/proc/self/fd/${fd}/${name}`,
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** A listening unix socket server; closing it removes the socket file (libuv unlinks what it bound). */
export interface UnixSocketListener {
  readonly server: net.Server;
  close(): Promise<void>;
}

/**
 * Listens on `socketPath`. A stale socket already there is removed; anything else there (a file, a directory, a
 * symlink) is refused, as is a symlinked parent. Accepted sockets arrive paused (`pauseOnConnect`) and half-open
 * capable, so the caller decides when bytes start to flow.
 */
export async function listenUnixSocket(
  socketPath: string,
  onConnection: (socket: net.Socket) => void,
): Promise<UnixSocketListener> {
  const parent = pinParent(socketPath);
  try {
    let existing: ReturnType<typeof lstatSync> | undefined;
    try {
      existing = lstatSync(parent.entry);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    if (existing && !existing.isSocket()) {
      throw new RelaySocketPathError(socketPath, 'something other than a socket is already there');
    }
    // unlink(2) removes the name without following it; a swap since lstat only removes the pod's own entry.
    if (existing) unlinkSync(parent.entry);
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // bind(2) through the held directory: never follows a symlink put in the socket's place meanwhile.
      server.listen(parent.entry, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // libuv unlinks the bound path when the server closes: the held directory must outlive the server.
    server.once('close', () => parent.close());
    let closing: Promise<void> | undefined;
    return {
      server,
      close: () =>
        (closing ??= new Promise<void>((resolve) => {
          if (!server.listening) {
            parent.close();
            resolve();
            return;
          }
          server.close(() => resolve());
        })),
    };
  } catch (error) {
    parent.close();
    throw error instanceof RelaySocketPathError ? error : new RelaySocketPathError(socketPath, String(error));
  }
}

/** Connects to one unix socket, again and again, through a parent directory held since it was made. */
export interface UnixSocketDialer {
  /** Connects, if what is there now is a socket (never through a symlink). Resolves once connected. */
  connect(): Promise<net.Socket>;
  /** Releases the held directory. */
  close(): void;
}

/**
 * Holds the parent of `socketPath` now (refusing a symlinked parent at once) and connects to the socket in it on
 * demand. Holding it for the dialer's life means a caller's `/proc/self/fd/<n>` path may be closed — and its
 * descriptor number reused for another directory — without the relay ever dialling into that other directory.
 */
export function unixSocketDialer(socketPath: string): UnixSocketDialer {
  const parent = pinParent(socketPath);
  return {
    connect: async () => {
      let fd: number;
      try {
        fd = openSync(parent.entry, O_PATH | O_NOFOLLOW);
      } catch (error) {
        const code = errnoCode(error);
        throw new RelaySocketPathError(socketPath, code === 'ENOENT' ? 'no socket there' : `cannot open it (${code})`);
      }
      try {
        if (!fstatSync(fd).isSocket()) throw new RelaySocketPathError(socketPath, 'not a socket (a symlink or a file)');
        return await new Promise<net.Socket>((resolve, reject) => {
          // The O_PATH descriptor names exactly the inode just checked, whatever the pod does to the name meanwhile.
          const socket = net.connect({ path: `/proc/self/fd/${fd}`, allowHalfOpen: true });
          socket.once('error', reject);
          socket.once('connect', () => {
            socket.off('error', reject);
            resolve(socket);
          });
        });
      } finally {
        closeSync(fd);
      }
    },
    close: () => parent.close(),
  };
}

/**
 * Connects once to the unix socket at `socketPath` without following a symlink at it or at its parent, and only if
 * it is a socket. Resolves once connected; the socket is half-open capable.
 */
export async function connectUnixSocket(socketPath: string): Promise<net.Socket> {
  const dialer = unixSocketDialer(socketPath);
  try {
    return await dialer.connect();
  } finally {
    dialer.close();
  }
}
