/**
 * Live migration between two CH stand-ins. The real protocol (reference/cloud-hypervisor.md §9: Start, Config,
 * State, Memory, Complete …) moves guest memory; a stand-in has none, so it moves only what is observable through
 * the API: the VmConfig and whether the VM was Running or Paused. One JSON line goes from sender to receiver and
 * `ok` comes back. The URLs are CH's own (`unix:<path>`, `tcp:<host>:<port>`), so a test drives a stand-in pair
 * exactly as it would drive two real CH processes — but a stand-in cannot migrate to or from a real CH.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { VmConfig } from '../../operator/cloudhypervisor/types';

export interface MigrationPayload {
  readonly config: VmConfig;
  /** The source VM's state when migration started; the destination ends in it (CompletePaused for Paused). */
  readonly state: 'Running' | 'Paused';
}

export type MigrationAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

const MAGIC = 'kubevisor-cloud-hypervisor-standin-migration';

/** Parses CH's migration URL forms; `undefined` for anything CH would refuse. */
export function parseMigrationUrl(url: string): MigrationAddress | undefined {
  if (url.startsWith('unix:')) {
    const path = url.slice('unix:'.length);
    return path ? { kind: 'unix', path } : undefined;
  }
  const tcp = /^tcp:(.+):(\d{1,5})$/.exec(url);
  if (tcp && Number(tcp[2]) <= 65535)
    return { kind: 'tcp', host: tcp[1].replace(/^\[(.*)\]$/, '$1'), port: Number(tcp[2]) };
  return undefined;
}

function readLine(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline >= 0) {
        cleanup();
        resolve(text.slice(0, newline));
      }
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('connection closed before the migration message was complete'));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
  });
}

/**
 * Listens on `address`, takes exactly one incoming migration and returns it. Rejects when `signal` aborts (the
 * stand-in is stopping) or the sender goes away mid-way.
 */
export async function receiveMigration(address: MigrationAddress, signal: AbortSignal): Promise<MigrationPayload> {
  const server: Server = createServer();
  const sockets = new Set<Socket>();
  const close = () => {
    for (const s of sockets) s.destroy();
    server.close();
    if (address.kind === 'unix') rmSync(address.path, { force: true });
  };
  try {
    return await new Promise<MigrationPayload>((resolve, reject) => {
      const onAbort = () => reject(new Error('migration receiver stopped'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      server.on('error', reject);
      server.on('connection', (socket) => {
        sockets.add(socket);
        readLine(socket).then((line) => {
          const message = JSON.parse(line) as { magic?: string } & Partial<MigrationPayload>;
          if (
            message.magic !== MAGIC ||
            !message.config ||
            (message.state !== 'Running' && message.state !== 'Paused')
          ) {
            throw new Error('not a stand-in migration stream');
          }
          const received = { config: message.config, state: message.state };
          // Resolve only once `ok` is flushed: the finally below destroys the socket.
          socket.end('ok\n', () => resolve(received));
        }, reject);
      });
      if (address.kind === 'unix') server.listen(address.path);
      else server.listen(address.port, address.host);
    });
  } finally {
    close();
  }
}

/** Sends the VM to a receiving stand-in and resolves once it acknowledged; rejects on any failure or timeout. */
export async function sendMigration(
  address: MigrationAddress,
  payload: MigrationPayload,
  timeoutMs: number,
): Promise<void> {
  const socket =
    address.kind === 'unix' ? createConnection(address.path) : createConnection(address.port, address.host);
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`migration timed out after ${timeoutMs} ms`)));
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(`${JSON.stringify({ magic: MAGIC, ...payload })}\n`);
    const answer = await readLine(socket);
    if (answer !== 'ok') throw new Error(`destination answered ${JSON.stringify(answer)}`);
  } finally {
    socket.destroy();
  }
}
