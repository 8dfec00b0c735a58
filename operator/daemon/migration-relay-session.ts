// The life of one migration's relay, shared by the source and target sides: a bounded number of connections, each
// a pair of sockets (the local unix socket to Cloud Hypervisor, the TLS socket to the peer daemon) piped both ways
// with byte counters; an overall deadline, an idle limit per connection, and the caller's abort signal. Any failure
// — a socket error, a connection cut before both sides finished, a timeout, an abort — tears down every socket of
// the migration at once: a migration stream with a hole in it is worthless, and Cloud Hypervisor on both sides
// notices a closed socket and fails (the source VM resumes).
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../kube/log';
import { END_OF_STREAM, FrameReader, frameHeader } from './migration-relay-frames';

/** Progress and outcome counters of one relay. */
export interface RelayStats {
  /** Connections accepted and being or having been relayed. */
  accepted: number;
  /** Connections refused (wrong peer, failed handshake, over the limit). */
  rejected: number;
  /** Connections relaying now. */
  active: number;
  /** Connections that ended cleanly in both directions. */
  completed: number;
  /** Bytes received from the peer daemon (and written to the local socket). */
  bytesFromPeer: number;
  /** Bytes read from the local socket (and sent to the peer daemon). */
  bytesToPeer: number;
}

/** Limits and identity of one relay. */
export interface RelaySessionOptions {
  /** Name in logs and errors, e.g. `migration target`. */
  name: string;
  /** Connections to accept; when the last of them ends cleanly, the relay is done. */
  maxConnections: number;
  /** Deadline of the whole relay, from its start. */
  timeoutMs: number;
  /** Fail when a connection moves no byte in either direction for this long. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  logger?: Logger;
}

/**
 * Most connections one migration may use. Cloud Hypervisor's `connections` goes up to 128, but only over TCP; a
 * unix-socket migration, which is what the relay carries, uses 1.
 */
export const MAX_RELAY_CONNECTIONS = 16;

/**
 * One relay's connections, counters and end. `done` settles exactly once; every socket it tracks is destroyed and
 * every teardown hook run when it does.
 */
export class RelaySession {
  readonly stats: RelayStats = { accepted: 0, rejected: 0, active: 0, completed: 0, bytesFromPeer: 0, bytesToPeer: 0 };
  /** Settles once: resolves when every connection ended cleanly or close() was called, rejects on failure. */
  readonly done: Promise<void>;
  readonly logger: Logger;
  private readonly sockets = new Set<Duplex>();
  private readonly teardowns: (() => void)[] = [];
  private settle!: { resolve: () => void; reject: (error: Error) => void };
  private settled = false;
  private readonly deadline: NodeJS.Timeout;
  private readonly onAbort: () => void;

  constructor(private readonly options: RelaySessionOptions) {
    if (!Number.isInteger(options.maxConnections) || options.maxConnections < 1) {
      throw new RangeError(`${options.name}: maxConnections must be a whole number ≥ 1`);
    }
    if (options.maxConnections > MAX_RELAY_CONNECTIONS) {
      throw new RangeError(`${options.name}: maxConnections must be at most ${MAX_RELAY_CONNECTIONS}`);
    }
    this.logger = options.logger ?? silentLogger;
    this.done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    // The caller may only close(); a failure must not surface as an unhandled rejection.
    this.done.catch(() => undefined);
    this.deadline = setTimeout(
      () => this.fail(new Error(`${options.name}: timed out after ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    this.onAbort = () => this.fail(new Error(`${options.name}: aborted`));
    if (options.signal?.aborted) queueMicrotask(this.onAbort);
    else options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** True while another connection may still be accepted. */
  get canAccept(): boolean {
    return !this.settled && this.stats.accepted < this.options.maxConnections;
  }

  /** True once the last connection has been accepted: the listener should stop. */
  get full(): boolean {
    return this.stats.accepted >= this.options.maxConnections;
  }

  /** Runs `fn` when the relay ends, however it ends (closes listeners). */
  onTeardown(fn: () => void): void {
    if (this.settled) fn();
    else this.teardowns.push(fn);
  }

  /** Counts a refused connection and destroys its socket. */
  reject(socket: Duplex | undefined, why: string, fields: Record<string, unknown> = {}): void {
    socket?.destroy();
    // After the end, stragglers (handshakes cut by the teardown) are no news.
    if (this.settled) return;
    this.stats.rejected++;
    this.logger.warn(`${this.options.name}: connection refused: ${why}`, fields);
  }

  /** Reserves a connection slot (before the sockets are ready); false when the relay takes no more. */
  admit(): boolean {
    if (!this.canAccept) return false;
    this.stats.accepted++;
    return true;
  }

  /** Tracks a socket of an accepted connection: an error on it fails the relay, a teardown destroys it. */
  track(socket: Duplex): void {
    if (this.sockets.has(socket)) return;
    socket.on('error', (error: Error) => this.fail(new Error(`${this.options.name}: ${error.message}`)));
    if (this.settled) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /**
   * Pipes `local` (Cloud Hypervisor, raw bytes) and `peer` (the other relay, framed: migration-relay-frames.ts) both
   * ways until both directions have ended and both sockets have closed. Both must be half-open capable, so one
   * direction can end while the other goes on. A peer stream that stops without its end frame fails the relay.
   */
  pipe(local: Duplex, peer: Duplex): void {
    this.track(local);
    this.track(peer);
    if (this.settled) return;
    this.stats.active++;
    let ended = 0;
    let closed = 0;
    const name = this.options.name;
    const idle = setTimeout(
      () => this.fail(new Error(`${name}: no data for ${this.options.idleTimeoutMs} ms`)),
      this.options.idleTimeoutMs,
    );

    // Cloud Hypervisor → peer: each read becomes one frame; the end becomes the end frame.
    local.on('data', (chunk: Buffer) => {
      this.stats.bytesToPeer += chunk.length;
      idle.refresh();
      peer.cork();
      peer.write(frameHeader(chunk.length));
      const more = peer.write(chunk);
      peer.uncork();
      if (!more) local.pause();
    });
    peer.on('drain', () => local.resume());
    local.once('end', () => {
      ended++;
      peer.end(END_OF_STREAM);
    });

    // Peer → Cloud Hypervisor: payloads out of frames; the end frame ends the local socket's writing side.
    const reader = new FrameReader();
    peer.on('data', (chunk: Buffer) => {
      idle.refresh();
      let payloads: Buffer[];
      try {
        payloads = reader.push(chunk);
      } catch (error) {
        this.fail(new Error(`${name}: the peer's stream is malformed: ${(error as Error).message}`));
        return;
      }
      let more = true;
      for (const payload of payloads) {
        this.stats.bytesFromPeer += payload.length;
        more = local.write(payload) && more;
      }
      if (!more) peer.pause();
      if (reader.ended) {
        ended++;
        local.end();
      }
    });
    local.on('drain', () => peer.resume());
    peer.once('end', () => {
      if (!reader.ended) this.fail(new Error(`${name}: the peer's stream stopped without its end (truncated)`));
    });

    const onClose = (): void => {
      if (++closed < 2) return;
      clearTimeout(idle);
      this.stats.active--;
      if (ended < 2) {
        this.fail(new Error(`${name}: a connection closed before both directions ended`));
        return;
      }
      this.stats.completed++;
      if (this.full && this.stats.active === 0) this.finish();
    };
    local.once('close', onClose);
    peer.once('close', onClose);
    local.resume();
    peer.resume();
  }

  /** Ends the relay with an error: every socket is destroyed, listeners close, `done` rejects. */
  fail(error: Error): void {
    if (this.settled) return;
    this.logger.error(`${this.options.name}: failed`, { error: error.message, ...this.stats });
    this.end();
    this.settle.reject(error);
  }

  /** Ends the relay without error (all connections done, or the caller closed it). */
  finish(): void {
    if (this.settled) return;
    this.logger.info(`${this.options.name}: done`, { ...this.stats });
    this.end();
    this.settle.resolve();
  }

  private end(): void {
    this.settled = true;
    clearTimeout(this.deadline);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    for (const fn of this.teardowns.splice(0)) {
      try {
        fn();
      } catch (error) {
        this.logger.warn(`${this.options.name}: teardown failed`, { error });
      }
    }
  }
}
