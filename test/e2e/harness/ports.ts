// Loopback port helpers for the e2e control plane.
import net from 'node:net';

/**
 * Asks the kernel for a free loopback port. The port is released before the caller binds it, so
 * another process could take it in between; the control plane then fails to start with a clear
 * "address already in use" in the component's log, which is rare enough to accept.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('freePort: no TCP address');
  return address.port;
}

/** Distinct free ports, one per name. */
export async function freePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const ports = {} as Record<K, number>;
  const taken = new Set<number>();
  for (const name of names) {
    let port = await freePort();
    // The kernel may hand the same ephemeral port out twice once it was released; bounded retry.
    for (let attempt = 0; taken.has(port) && attempt < 20; attempt++) port = await freePort();
    if (taken.has(port)) throw new Error(`freePorts: could not find a distinct port for ${name}`);
    taken.add(port);
    ports[name] = port;
  }
  return ports;
}

/** True when a listener can bind 127.0.0.1:port, i.e. no process holds it any more. */
export async function isPortFree(port: number): Promise<boolean> {
  const server = net.createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) await new Promise<void>((resolve) => server.close(() => resolve()));
  return bound;
}
