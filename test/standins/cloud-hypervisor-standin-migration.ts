/**
 * Live migration between two CH stand-ins. The URLs are CH's own (`unix:<path>`, `tcp:<host>:<port>`), so a test
 * drives a stand-in pair exactly as it would drive two real CH processes — but the bytes on the wire are the
 * stand-in's own protocol (version 2 below), which cannot talk to a real CH (reference/cloud-hypervisor.md §9:
 * Start, Config, State, Memory, Complete …).
 *
 * Like a real migration it takes time and moves real bytes, so relays, timeouts and failures in between behave as
 * they would: guest memory is stood in for by `memory size / 256` bytes (at most 16 MiB), paced so the transfer
 * lasts about `memory size / bytesPerSecond` (1 GiB/s by default). A local migration hands over memory FDs
 * instead of copying pages (§9), so it streams none.
 *
 * Stream (sender → receiver), parsed as a byte stream so any relay (unix → TLS → unix) may cut it anywhere:
 *   `{"magic":"kubevisor-cloud-hypervisor-standin-migration/2","config":…,"state":…,"memoryBytes":N}\n`
 *   N "memory" bytes, byte i being `(i * 7 + 3) & 0xff` so a damaged relay is detected
 *   `complete\n`
 * Answer (receiver → sender): `ok\n` once the destination holds the VM, or `error <why>\n`.
 * A break anywhere before `ok` fails both sides.
 */
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmConfig } from '../../operator/cloudhypervisor/types';

export interface MigrationPayload {
  readonly config: VmConfig;
  /** The source VM's state when migration started; the destination ends in it (CompletePaused for Paused). */
  readonly state: 'Running' | 'Paused';
}

export type MigrationAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

const MAGIC = 'kubevisor-cloud-hypervisor-standin-migration/2';
/** The most "memory" a migration streams, whatever the guest's size. */
export const MAX_MIGRATION_STREAM_BYTES = 16 * 1024 * 1024;
/** Guest memory per second a migration moves unless told otherwise. */
export const DEFAULT_MIGRATION_BYTES_PER_SECOND = 1024 * 1024 * 1024;
const MAX_HEADER_BYTES = 8 * 1024 * 1024;
const TICK_MS = 20;

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

/** Guest memory of a config: the base size plus every zone (what a real migration copies). */
export function guestMemoryBytes(config: VmConfig): number {
  const memory = config.memory ?? { size: 512 * 1024 * 1024 };
  return memory.size + (memory.zones ?? []).reduce((sum, zone) => sum + zone.size, 0);
}

const patternByte = (offset: number) => (offset * 7 + 3) & 0xff;
/** 64 KiB of pattern plus one period, so any chunk of up to 64 KiB is a slice at `offset % 256`. */
const PATTERN = Buffer.from(Array.from({ length: 64 * 1024 + 256 }, (_, i) => patternByte(i)));

/** The receiving side's parser: header line, then memory bytes, then the `complete` line. */
class IncomingMigration {
  private phase: 'header' | 'memory' | 'trailer' | 'done' = 'header';
  private pending = Buffer.alloc(0);
  private memoryBytes = 0;
  private received = 0;
  payload: MigrationPayload | undefined;

  /** Feeds bytes; answers true once the whole stream has arrived. Throws on anything malformed. */
  push(chunk: Buffer): boolean {
    let data = chunk;
    while (data.length > 0 && this.phase !== 'done') {
      if (this.phase === 'memory') {
        const take = Math.min(data.length, this.memoryBytes - this.received);
        for (let i = 0; i < take; i++) {
          if (data[i] !== patternByte(this.received + i)) {
            throw new Error(`memory stream corrupted at byte ${this.received + i}`);
          }
        }
        this.received += take;
        data = data.subarray(take);
        if (this.received === this.memoryBytes) this.phase = 'trailer';
        continue;
      }
      const newline = data.indexOf(0x0a);
      if (newline < 0) {
        this.pending = Buffer.concat([this.pending, data]);
        if (this.pending.length > MAX_HEADER_BYTES) throw new Error('not a stand-in migration stream');
        return false;
      }
      const line = Buffer.concat([this.pending, data.subarray(0, newline)]).toString('utf8');
      this.pending = Buffer.alloc(0);
      data = data.subarray(newline + 1);
      if (this.phase === 'header') this.header(line);
      else if (line === 'complete') this.phase = 'done';
      else throw new Error(`unexpected ${JSON.stringify(line.slice(0, 80))} after the memory`);
    }
    return this.phase === 'done';
  }

  /** How far the memory got, for error messages. */
  progress(): string {
    return `${this.received} of ${this.memoryBytes} memory bytes`;
  }

  private header(line: string): void {
    let message: { magic?: unknown; config?: VmConfig; state?: unknown; memoryBytes?: unknown };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      throw new Error('not a stand-in migration stream');
    }
    const { magic, config, state, memoryBytes } = message;
    if (magic !== MAGIC || !config || (state !== 'Running' && state !== 'Paused')) {
      throw new Error('not a stand-in migration stream');
    }
    if (typeof memoryBytes !== 'number' || !Number.isInteger(memoryBytes) || memoryBytes < 0) {
      throw new Error('not a stand-in migration stream');
    }
    this.payload = { config, state };
    this.memoryBytes = memoryBytes;
    this.phase = memoryBytes > 0 ? 'memory' : 'trailer';
  }
}

/**
 * Listens on `address`, takes exactly one incoming migration and returns it once `accept` (the destination
 * creating the VM from it) succeeded and the sender was told `ok`. Rejects when `signal` aborts (the stand-in is
 * stopping), when the stream breaks or is not a stand-in migration, or with `accept`'s refusal, which the sender
 * is told too.
 */
export async function receiveMigration(
  address: MigrationAddress,
  signal: AbortSignal,
  accept: (payload: MigrationPayload) => Promise<string | undefined>,
): Promise<MigrationPayload> {
  const server: Server = createServer({ allowHalfOpen: true });
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
        // CH serves one migration per receive call: the first connection is the migration.
        if (sockets.size > 0) return void socket.destroy();
        sockets.add(socket);
        const incoming = new IncomingMigration();
        let finished = false;
        const broken = (why: string) => {
          if (finished) return;
          finished = true;
          socket.destroy();
          reject(new Error(why));
        };
        socket.on('data', (chunk: Buffer) => {
          if (finished) return;
          let complete: boolean;
          try {
            complete = incoming.push(chunk);
          } catch (error) {
            socket.end(`error ${(error as Error).message}\n`);
            return broken((error as Error).message);
          }
          if (!complete) return;
          finished = true;
          socket.pause();
          const payload = incoming.payload as MigrationPayload;
          accept(payload).then(
            (refusal) => {
              // Settle only once the answer is flushed (or failed): the finally below destroys the socket.
              if (refusal) socket.write(`error ${refusal}\n`, () => reject(new Error(refusal)));
              else socket.write('ok\n', (error) => (error ? reject(error) : resolve(payload)));
              socket.end();
            },
            (error: Error) => {
              socket.destroy();
              reject(error);
            },
          );
        });
        socket.on('end', () => broken(`connection closed after ${incoming.progress()}`));
        socket.on('close', () => broken(`connection closed after ${incoming.progress()}`));
        socket.on('error', (error) => broken(error.message));
      });
      if (address.kind === 'unix') server.listen(address.path);
      else server.listen(address.port, address.host);
    });
  } finally {
    close();
  }
}

export interface SendMigrationOptions {
  /** CH's `timeout_s` in ms: the whole migration must be over by then. */
  readonly timeoutMs: number;
  /** Guest memory per second. @default DEFAULT_MIGRATION_BYTES_PER_SECOND */
  readonly bytesPerSecond?: number;
  /** Local migration hands over memory FDs: nothing to stream (§9). */
  readonly local?: boolean;
  /** Aborts the migration (the stand-in is stopping). */
  readonly signal: AbortSignal;
}

/** Sends the VM to a receiving stand-in and resolves once it acknowledged; rejects on any failure or timeout. */
export async function sendMigration(
  address: MigrationAddress,
  payload: MigrationPayload,
  options: SendMigrationOptions,
): Promise<void> {
  const memory = guestMemoryBytes(payload.config);
  const streamBytes = options.local ? 0 : Math.min(MAX_MIGRATION_STREAM_BYTES, Math.floor(memory / 256));
  const durationMs = options.local
    ? 0
    : (memory / (options.bytesPerSecond ?? DEFAULT_MIGRATION_BYTES_PER_SECOND)) * 1000;

  const socket =
    address.kind === 'unix' ? createConnection(address.path) : createConnection(address.port, address.host);
  // Every way the migration can end early settles `failed`; each wait below races it.
  let fail: (error: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  let answer = '';
  let answered: (line: string) => void = () => undefined;
  const answerLine = new Promise<string>((resolve) => (answered = resolve));
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString('utf8');
    const newline = answer.indexOf('\n');
    if (newline >= 0) answered(answer.slice(0, newline));
  });
  socket.on('error', (error) => fail(error));
  socket.on('close', () => fail(new Error('the destination closed the connection')));
  const onAbort = () => fail(new Error('migration sender stopped'));
  options.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => fail(new Error(`migration timed out after ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  const write = async (data: string | Buffer) => {
    if (!socket.write(data)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), failed]);
  };

  try {
    await Promise.race([new Promise((resolve) => socket.once('connect', resolve)), failed]);
    await write(`${JSON.stringify({ magic: MAGIC, ...payload, memoryBytes: streamBytes })}\n`);
    // Pace by a schedule from the start, so timer jitter does not add up over the ticks.
    const started = Date.now();
    const ticks = Math.max(1, Math.ceil(durationMs / TICK_MS));
    let sent = 0;
    for (let tick = 1; sent < streamBytes; tick++) {
      const target = tick >= ticks ? streamBytes : Math.ceil((streamBytes * tick) / ticks);
      while (sent < target) {
        const length = Math.min(target - sent, 64 * 1024);
        const start = sent % 256;
        await write(PATTERN.subarray(start, start + length));
        sent += length;
      }
      const wait = started + (durationMs * tick) / ticks - Date.now();
      if (sent < streamBytes && wait > 0) await Promise.race([sleep(wait), failed]);
    }
    await write('complete\n');
    const line = await Promise.race([answerLine, failed]);
    if (line.startsWith('error ')) throw new Error(`destination refused the migration: ${line.slice('error '.length)}`);
    if (line !== 'ok') throw new Error(`destination answered ${JSON.stringify(line)}`);
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
    socket.destroy();
  }
}
