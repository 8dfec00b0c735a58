// The live-migration data path between two node daemons. Cloud Hypervisor migrates over a unix socket on each side
// (`vm.send-migration` to `unix:<tx>`, `vm.receive-migration` from `unix:<rx>`, in each VM pod's run dir); the
// daemons join the two with mutual TLS:
//
//   source CH → tx.sock → [source relay] ══TLS 1.3══▶ [target relay] → rx.sock → target CH
//
// Each side authenticates the other with its per-node certificate from kubevisor's migration signer: only the CA is
// trusted, and the peer's certificate must name the node the migration says it is on. Unlike Virtink, the source
// verifies the server (no skip-verify) and no key is shared between nodes, so one compromised node cannot pose as
// another. One relay serves one migration: a bounded number of connections, then it is done.
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../kube/log';
import { listenUnixSocket, unixSocketDialer, type UnixSocketListener } from './migration-relay-socket';
import { peerIdentityProblem } from './migration-relay-peer';
import { RelaySession, type RelayStats } from './migration-relay-session';

export { RelaySocketPathError } from './migration-relay-socket';
export { MAX_RELAY_CONNECTIONS, type RelayStats } from './migration-relay-session';

/** This node's credentials: its key and certificate, and the CA bundle peers must chain to (all PEM). */
export interface RelayTls {
  key: string | Buffer;
  cert: string | Buffer;
  ca: string | Buffer;
}

/** What both sides share. */
/** Options both sides of the relay take. */
export interface MigrationRelayOptions {
  /** Host path of the unix socket in the VM pod's run dir (the target connects to it; the source listens on it). */
  unixSocketPath: string;
  tls: RelayTls;
  /** The node the other daemon must prove to be (its certificate names `kubevisor-node:<node>`). */
  expectedPeerNode: string;
  /** Deadline of the whole migration's data path. */
  timeoutMs: number;
  /** Fail when a connection moves no byte for this long. @default min(timeoutMs, 60000) */
  idleTimeoutMs?: number;
  /** Connections of this migration (Cloud Hypervisor uses 1 over a unix socket). @default 1, at most 16 */
  maxConnections?: number;
  /** Aborting tears everything down; `done` rejects. */
  signal?: AbortSignal;
  logger?: Logger;
}

/** Options of the target side (the receiving node's daemon). */
export interface MigrationTargetOptions extends MigrationRelayOptions {
  /** Address to listen on (the target pod's node IP, or 127.0.0.1 in tests). */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Bound on a TLS handshake. @default min(timeoutMs, 10000) */
  handshakeTimeoutMs?: number;
}

/** Options of the source side (the sending node's daemon). */
export interface MigrationSourceOptions extends MigrationRelayOptions {
  /** The target relay's address. */
  target: { host: string; port: number };
}

/** A running relay. */
export interface MigrationRelay {
  /** Counters, live (a copy). */
  readonly stats: RelayStats;
  /** Resolves when every connection ended cleanly (or close() was called); rejects on failure, timeout or abort. */
  readonly done: Promise<void>;
  /** Stops listening and closes every connection; resolves once the listener is closed. Idempotent. */
  close(): Promise<void>;
}

/** The target relay, listening. */
export interface MigrationTargetRelay extends MigrationRelay {
  /** Where the target listens: hand this to the source daemon. */
  readonly address: { host: string; port: number };
}

/** The source relay, listening. */
export interface MigrationSourceRelay extends MigrationRelay {
  /** The unix socket Cloud Hypervisor sends to (`destination_url: unix:<path as the pod sees it>`). */
  readonly socketPath: string;
}

const TLS_VERSION = 'TLSv1.3';

/**
 * The one byte the target sends first on a connection it accepted (peer verified, Cloud Hypervisor's socket
 * connected). In TLS 1.3 the client finishes its handshake before the server has judged the client certificate,
 * so without it a source whose connection the target refused could not tell a refusal from a short stream.
 */
export const RELAY_READY = 0x01;

function sessionFor(name: string, options: MigrationRelayOptions): RelaySession {
  return new RelaySession({
    name,
    maxConnections: options.maxConnections ?? 1,
    timeoutMs: options.timeoutMs,
    idleTimeoutMs: options.idleTimeoutMs ?? Math.min(options.timeoutMs, 60_000),
    signal: options.signal,
    logger: options.logger,
  });
}

/** The caller's view of a relay; `stats` reads the live counters. */
function relayHandle<T extends object>(
  session: RelaySession,
  closeListener: () => Promise<void>,
  extra: T,
): MigrationRelay & T {
  return {
    ...extra,
    get stats() {
      return { ...session.stats };
    },
    done: session.done,
    close: async () => {
      session.finish();
      await closeListener();
    },
  };
}

/**
 * Target side: listens with TLS, requires a client certificate from the CA that names `expectedPeerNode`, and pipes
 * each accepted connection to a new connection to the unix socket Cloud Hypervisor receives on. A connection from
 * any other peer is refused before a byte of it reaches Cloud Hypervisor. Resolves once listening.
 */
export async function serveMigrationTarget(options: MigrationTargetOptions): Promise<MigrationTargetRelay> {
  // The socket's directory is checked and held from now on, not when the peer arrives: a bad path fails at once,
  // and the directory connected into later is the one checked now.
  const dialer = unixSocketDialer(options.unixSocketPath);
  let session: RelaySession;
  try {
    session = sessionFor('migration target', options);
  } catch (error) {
    dialer.close();
    throw error;
  }
  session.onTeardown(() => dialer.close());
  const maxConnections = options.maxConnections ?? 1;
  const server = tls.createServer({
    key: options.tls.key,
    cert: options.tls.cert,
    ca: options.tls.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: TLS_VERSION,
    allowHalfOpen: true,
    handshakeTimeout: options.handshakeTimeoutMs ?? Math.min(options.timeoutMs, 10_000),
  });
  // Handshakes in flight count too: a bounded number of sockets, whatever connects.
  server.maxConnections = maxConnections + 4;
  // Every TCP connection, from its first byte: a teardown destroys those still in their handshake too (a peer that
  // went silent mid-handshake would otherwise hold close() until the handshake timeout).
  const connections = new Set<Socket>();
  server.on('connection', (raw: Socket) => {
    connections.add(raw);
    raw.once('close', () => connections.delete(raw));
  });
  server.on('tlsClientError', (error, socket) =>
    session.reject(socket, `TLS handshake failed: ${error.message}`, { remote: socket.remoteAddress }),
  );
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const problem = socket.authorized
      ? peerIdentityProblem(socket.getPeerX509Certificate()?.raw, options.expectedPeerNode)
      : `the client certificate is not trusted (${String(socket.authorizationError)})`;
    if (problem) {
      session.reject(socket, problem, { remote: socket.remoteAddress });
      return;
    }
    if (!session.admit()) {
      session.reject(socket, 'the migration takes no more connections', { remote: socket.remoteAddress });
      return;
    }
    if (session.full) server.close();
    // Bytes the peer sends meanwhile wait in the TLS socket (no reader yet), bounded by TCP flow control.
    session.track(socket);
    dialer.connect().then(
      (local) => {
        socket.write(Buffer.from([RELAY_READY]));
        session.pipe(local, socket);
      },
      (error: Error) => session.fail(new Error(`migration target: ${error.message}`)),
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // Nothing to relay: release the deadline, the abort listener and the held directory.
    session.fail(new Error(`migration target: cannot listen on ${options.host}:${options.port}: ${String(error)}`));
    throw error;
  }
  server.on('error', (error) => session.fail(new Error(`migration target: ${error.message}`)));
  const bound = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  const closeListener = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => {
      if (!server.listening) resolve();
      else server.close(() => resolve());
    }));
  session.onTeardown(() => {
    void closeListener();
    for (const raw of connections) raw.destroy();
  });
  session.logger.info('migration target: listening', { host: bound.address, port: bound.port });
  return relayHandle(session, closeListener, { address: { host: bound.address, port: bound.port } });
}

/**
 * Source side: listens on the unix socket Cloud Hypervisor sends to, and pipes each accepted connection to a TLS
 * connection to the target relay, whose certificate must chain to the CA and name `expectedPeerNode`. Resolves
 * once listening. The socket file is removed when the relay ends.
 */
export async function serveMigrationSource(options: MigrationSourceOptions): Promise<MigrationSourceRelay> {
  const session = sessionFor('migration source', options);
  let listener: UnixSocketListener;
  try {
    listener = await listenUnixSocket(options.unixSocketPath, (local) => onConnection(local));
  } catch (error) {
    // Nothing to relay: release the deadline and the abort listener.
    session.fail(new Error(`migration source: ${(error as Error).message}`));
    throw error;
  }
  function onConnection(local: Socket): void {
    if (!session.admit()) {
      session.reject(local, 'the migration takes no more connections');
      return;
    }
    // The last connection of the migration: nothing else may connect (the socket file goes away).
    if (session.full) void listener.close();
    session.track(local);
    // allowHalfOpen: tls.connect honours it (one direction may end first), though @types/node does not declare it.
    const connectOptions: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host: options.target.host,
      port: options.target.port,
      key: options.tls.key,
      cert: options.tls.cert,
      ca: options.tls.ca,
      minVersion: TLS_VERSION,
      rejectUnauthorized: true,
      allowHalfOpen: true,
      // The target's name is its node identity, not the address we dial: check that instead of the host name.
      checkServerIdentity: (_host, cert) => {
        const problem = peerIdentityProblem(cert.raw, options.expectedPeerNode);
        return problem ? new Error(problem) : undefined;
      },
    };
    const peer = tls.connect(connectOptions);
    session.track(peer);
    // Cloud Hypervisor's bytes wait in `local` (paused) until the target says it accepted this connection.
    const refused = (): void => session.fail(new Error('migration source: the target refused the connection'));
    peer.once('end', refused);
    peer.once('data', (chunk: Buffer) => {
      peer.off('end', refused);
      peer.pause();
      if (chunk[0] !== RELAY_READY) {
        session.fail(new Error('migration source: the target answered with something other than ready'));
        return;
      }
      if (chunk.length > 1) peer.unshift(chunk.subarray(1));
      session.pipe(local, peer);
    });
  }
  session.onTeardown(() => void listener.close());
  session.logger.info('migration source: listening', { socket: options.unixSocketPath });
  return relayHandle(session, () => listener.close(), { socketPath: options.unixSocketPath });
}
