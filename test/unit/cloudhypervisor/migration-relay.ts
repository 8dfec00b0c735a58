/**
 * A migration relay for the stand-in migration tests, shaped like the one a node daemon runs between two nodes:
 * unix socket → TLS over TCP → unix socket. TLS re-frames the byte stream into its own records, so a migration
 * that relied on message boundaries would break here. TLS-PSK keeps the test free of certificate files.
 */
import { createConnection, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';

const PSK = Buffer.from('kubevisor-standin-migration-relay-test-key');
const IDENTITY = 'kubevisor-test';
const TLS = { ciphers: 'PSK-AES128-GCM-SHA256', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;

export interface MigrationRelay {
  /** Bytes delivered to the receiving side so far. */
  readonly forwardedBytes: number;
  /** Kills the relay: every connection is cut at once and nothing more is accepted (as when its process dies). */
  kill(): Promise<void>;
}

/** Relays every connection made to `listenPath` to `targetPath`, through TLS on a loopback port. */
export async function startMigrationRelay(listenPath: string, targetPath: string): Promise<MigrationRelay> {
  const sockets = new Set<Socket | TLSSocket>();
  const track = <T extends Socket | TLSSocket>(socket: T): T => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    return socket;
  };
  let forwardedBytes = 0;

  const tlsServer = createTlsServer({
    ...TLS,
    pskCallback: (_socket, identity) => (identity === IDENTITY ? PSK : null),
  });
  tlsServer.on('secureConnection', (fromTls) => {
    track(fromTls);
    const toTarget = track(createConnection(targetPath));
    fromTls.on('data', (chunk: Buffer) => (forwardedBytes += chunk.length));
    fromTls.pipe(toTarget);
    toTarget.pipe(fromTls);
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  const port = (tlsServer.address() as { port: number }).port;

  const unixServer: Server = createNetServer((fromUnix) => {
    track(fromUnix);
    const toTls = track(
      tlsConnect({
        ...TLS,
        host: '127.0.0.1',
        port,
        pskCallback: () => ({ psk: PSK, identity: IDENTITY }),
        // PSK authenticates the server; there is no certificate whose name could be checked.
        checkServerIdentity: () => undefined,
      }),
    );
    fromUnix.pipe(toTls);
    toTls.pipe(fromUnix);
  });
  await new Promise<void>((resolve) => unixServer.listen(listenPath, resolve));

  return {
    get forwardedBytes() {
      return forwardedBytes;
    },
    kill: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all([
        new Promise((resolve) => unixServer.close(resolve)),
        new Promise((resolve) => tlsServer.close(resolve)),
      ]);
    },
  };
}
