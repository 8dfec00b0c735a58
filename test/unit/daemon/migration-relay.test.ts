/**
 * The migration relay end to end on loopback with real TLS and real certificates from the migration CA: a stand-in
 * for the source Cloud Hypervisor writes to the source relay's unix socket, a stand-in for the target Cloud
 * Hypervisor listens on the target's unix socket, and the bytes must arrive intact — or, with the wrong peer, not at
 * all.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  createMigrationCa,
  issueNodeCertificate,
  loadMigrationCa,
  type MigrationCa,
} from '../../../operator/migration-pki';
import {
  serveMigrationSource,
  serveMigrationTarget,
  type MigrationSourceRelay,
  type MigrationTargetRelay,
  type RelayTls,
} from '../../../operator/daemon/migration-relay';

const MiB = 1024 * 1024;
const ca = loadMigrationCa(createMigrationCa());
const otherCa = loadMigrationCa(createMigrationCa({ commonName: 'some-other-ca' }));

function credentials(nodeName: string, issuer: MigrationCa = ca, trust: MigrationCa = ca): RelayTls {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = issueNodeCertificate(issuer, { nodeName, publicKey, lifetimeSeconds: 3600 });
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }), cert, ca: trust.certPem };
}

const source = credentials('node-a');
const target = credentials('node-b');

let dir: string;
let relays: { close(): Promise<void> }[];
let servers: net.Server[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-test-'));
  fs.mkdirSync(path.join(dir, 'source-run'));
  fs.mkdirSync(path.join(dir, 'target-run'));
  relays = [];
  servers = [];
});

afterEach(async () => {
  await Promise.all(relays.map((r) => r.close()));
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  fs.rmSync(dir, { recursive: true, force: true });
});

const txPath = (): string => path.join(dir, 'source-run', 'tx.sock');
const rxPath = (): string => path.join(dir, 'target-run', 'rx.sock');

/** What the target Cloud Hypervisor stand-in saw. */
interface TargetStandIn {
  connections: number;
  received: number;
  /** Resolves with the SHA-256 of what one connection received, once the sender half-closed. */
  firstStream: Promise<string>;
  sockets: net.Socket[];
}

/**
 * Receives a stream; when the sender half-closes, answers with the stream's SHA-256 and then `replyBytes` bytes,
 * and ends: a request/response with half-close, as a migration is.
 */
async function targetStandIn(reply: Buffer): Promise<TargetStandIn> {
  let resolveFirst!: (hash: string) => void;
  const state: TargetStandIn = {
    connections: 0,
    received: 0,
    firstStream: new Promise((resolve) => (resolveFirst = resolve)),
    sockets: [],
  };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    state.connections++;
    state.sockets.push(socket);
    const hash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => {
      state.received += chunk.length;
      hash.update(chunk);
    });
    socket.on('error', () => undefined);
    socket.on('end', () => {
      const digest = hash.digest('hex');
      resolveFirst(digest);
      socket.write(digest);
      socket.end(reply);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(rxPath(), resolve));
  return state;
}

/** The source Cloud Hypervisor stand-in: sends `payload`, half-closes, collects the answer until the end. */
function sendThroughSource(payload: Buffer): Promise<{ answer: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: txPath(), allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (e) => (error = e));
    socket.on('close', () => resolve({ answer: Buffer.concat(chunks), error }));
    socket.end(payload);
  });
}

async function startTarget(
  options: { tls?: RelayTls; expectedPeerNode?: string; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<MigrationTargetRelay> {
  const relay = await serveMigrationTarget({
    unixSocketPath: rxPath(),
    host: '127.0.0.1',
    port: 0,
    tls: options.tls ?? target,
    expectedPeerNode: options.expectedPeerNode ?? 'node-a',
    timeoutMs: options.timeoutMs ?? 20_000,
    signal: options.signal,
  });
  relays.push(relay);
  return relay;
}

async function startSource(
  to: MigrationTargetRelay,
  options: { tls?: RelayTls; expectedPeerNode?: string; signal?: AbortSignal } = {},
): Promise<MigrationSourceRelay> {
  const relay = await serveMigrationSource({
    unixSocketPath: txPath(),
    target: to.address,
    tls: options.tls ?? source,
    expectedPeerNode: options.expectedPeerNode ?? 'node-b',
    timeoutMs: 20_000,
    signal: options.signal,
  });
  relays.push(relay);
  return relay;
}

/** The error `done` rejects with (fails the test if it resolves). */
async function failure(done: Promise<void>): Promise<Error> {
  try {
    await done;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the relay to fail, but it completed');
}

test('moves a few MiB both ways intact, then both relays finish and the source socket is gone', async () => {
  const payload = randomBytes(6 * MiB);
  const reply = randomBytes(1 * MiB);
  const standIn = await targetStandIn(reply);
  const targetRelay = await startTarget();
  expect(targetRelay.address.port).toBeGreaterThan(0);
  const sourceRelay = await startSource(targetRelay);

  const { answer, error } = await sendThroughSource(payload);
  expect(error).toBeUndefined();
  const expectedHash = createHash('sha256').update(payload).digest('hex');
  expect(await standIn.firstStream).toBe(expectedHash);
  expect(answer.subarray(0, 64).toString()).toBe(expectedHash);
  expect(answer.subarray(64).equals(reply)).toBe(true);

  await Promise.all([sourceRelay.done, targetRelay.done]);
  expect(sourceRelay.stats).toMatchObject({
    accepted: 1,
    completed: 1,
    active: 0,
    bytesToPeer: payload.length,
    bytesFromPeer: 64 + reply.length,
  });
  expect(targetRelay.stats).toMatchObject({
    accepted: 1,
    completed: 1,
    rejected: 0,
    bytesFromPeer: payload.length,
    bytesToPeer: 64 + reply.length,
  });
  expect(fs.existsSync(txPath())).toBe(false);
});

test('a source whose certificate names another node is refused by the target; nothing reaches the target CH', async () => {
  const standIn = await targetStandIn(Buffer.alloc(0));
  const targetRelay = await startTarget();
  const sourceRelay = await startSource(targetRelay, { tls: credentials('node-c') });

  const result = await sendThroughSource(randomBytes(64 * 1024));
  expect((await failure(sourceRelay.done)).message).toContain('the target refused the connection');
  expect(result.answer.length).toBe(0);
  expect(targetRelay.stats.rejected).toBe(1);
  expect(targetRelay.stats.accepted).toBe(0);
  expect(standIn.connections).toBe(0);
});

test('a target whose certificate names another node is refused by the source', async () => {
  const standIn = await targetStandIn(Buffer.alloc(0));
  const targetRelay = await startTarget({ tls: credentials('node-c') });
  const sourceRelay = await startSource(targetRelay);

  await sendThroughSource(randomBytes(1024));
  const error = await failure(sourceRelay.done);
  expect(error.message).toContain('CN=kubevisor-node:node-c, expected CN=kubevisor-node:node-b');
  expect(standIn.connections).toBe(0);
  expect(targetRelay.stats.accepted).toBe(0);
});

test('a source certificate from another CA fails the handshake at the target', async () => {
  const standIn = await targetStandIn(Buffer.alloc(0));
  const targetRelay = await startTarget();
  const sourceRelay = await startSource(targetRelay, { tls: credentials('node-a', otherCa, ca) });

  await sendThroughSource(randomBytes(1024));
  await failure(sourceRelay.done);
  await waitUntil(() => targetRelay.stats.rejected === 1);
  expect(targetRelay.stats.accepted).toBe(0);
  expect(standIn.connections).toBe(0);
});

test('a target certificate from another CA fails verification at the source (no skip-verify)', async () => {
  const standIn = await targetStandIn(Buffer.alloc(0));
  const targetRelay = await startTarget({ tls: credentials('node-b', otherCa, ca) });
  const sourceRelay = await startSource(targetRelay);

  await sendThroughSource(randomBytes(1024));
  expect((await failure(sourceRelay.done)).message).toMatch(/certificate/i);
  expect(standIn.connections).toBe(0);
});

test('aborting mid-stream closes both sides: the relays fail, both stand-ins see their sockets closed', async () => {
  const standIn = await targetStandIn(Buffer.alloc(0));
  const targetRelay = await startTarget();
  const abort = new AbortController();
  const sourceRelay = await startSource(targetRelay, { signal: abort.signal });

  const ch = net.connect({ path: txPath(), allowHalfOpen: true });
  ch.on('error', () => undefined);
  const chClosed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
  // Stream without end: a migration in progress.
  const pump = setInterval(() => ch.write(randomBytes(64 * 1024)), 5);
  try {
    await waitUntil(() => standIn.received > 512 * 1024);
    abort.abort();
    expect((await failure(sourceRelay.done)).message).toContain('aborted');
    // The source's TLS stream stops without its end frame: the target sees a truncated stream, not a finished one.
    expect((await failure(targetRelay.done)).message).toMatch(/truncated|ECONNRESET/);
    await chClosed;
    await waitUntil(() => standIn.sockets.every((s) => s.destroyed || s.closed));
  } finally {
    clearInterval(pump);
    ch.destroy();
  }
});

test('a target that nobody connects to times out and stops listening', async () => {
  const targetRelay = await startTarget({ timeoutMs: 300 });
  expect((await failure(targetRelay.done)).message).toContain('timed out after 300 ms');
  await expect(
    new Promise((resolve, reject) => {
      const socket = net.connect(targetRelay.address.port, '127.0.0.1', () => resolve('connected'));
      socket.on('error', reject);
    }),
  ).rejects.toThrow(/ECONNREFUSED/);
});

test('the source takes one connection: afterwards its socket is gone', async () => {
  await targetStandIn(Buffer.alloc(0));
  const targetRelay = await startTarget();
  const sourceRelay = await startSource(targetRelay);
  const first = net.connect({ path: txPath(), allowHalfOpen: true });
  first.on('error', () => undefined);
  await new Promise<void>((resolve) => first.once('connect', () => resolve()));
  await waitUntil(() => !fs.existsSync(txPath()));
  expect(sourceRelay.stats.accepted).toBe(1);
  first.destroy();
});

test('the target holds its socket directory from the start: a caller may close its /proc/self/fd path at once', async () => {
  const standIn = await targetStandIn(Buffer.from('reply'));
  const O_PATH = 0o10000000;
  const held = fs.openSync(path.join(dir, 'target-run'), O_PATH | fs.constants.O_DIRECTORY);
  const targetRelay = await serveMigrationTarget({
    unixSocketPath: `/proc/self/fd/${held}/rx.sock`,
    host: '127.0.0.1',
    port: 0,
    tls: target,
    expectedPeerNode: 'node-a',
    timeoutMs: 20_000,
  });
  relays.push(targetRelay);
  // The freed descriptor number goes to another directory, which gets a decoy socket of the same name.
  const decoyDir = path.join(dir, 'decoy');
  fs.mkdirSync(decoyDir);
  fs.closeSync(held);
  const reused = fs.openSync(decoyDir, O_PATH | fs.constants.O_DIRECTORY);
  let decoyConnections = 0;
  const decoy = net.createServer((s) => {
    decoyConnections++;
    s.destroy();
  });
  servers.push(decoy);
  await new Promise<void>((resolve) => decoy.listen(path.join(decoyDir, 'rx.sock'), resolve));
  try {
    expect(reused).toBe(held);
    await startSource(targetRelay);
    const { answer } = await sendThroughSource(Buffer.from('payload'));
    expect(answer.subarray(64).toString()).toBe('reply');
    expect(standIn.connections).toBe(1);
    expect(decoyConnections).toBe(0);
  } finally {
    fs.closeSync(reused);
  }
});

test('a target whose socket directory is a symlink fails at start', async () => {
  fs.symlinkSync(path.join(dir, 'target-run'), path.join(dir, 'link-run'));
  await expect(
    serveMigrationTarget({
      unixSocketPath: path.join(dir, 'link-run', 'rx.sock'),
      host: '127.0.0.1',
      port: 0,
      tls: target,
      expectedPeerNode: 'node-a',
      timeoutMs: 20_000,
    }),
  ).rejects.toThrow('its parent directory is a symlink or not a directory');
});

test('close() ends a relay that is still waiting, without error', async () => {
  const targetRelay = await startTarget();
  await targetRelay.close();
  await expect(targetRelay.done).resolves.toBeUndefined();
});

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
