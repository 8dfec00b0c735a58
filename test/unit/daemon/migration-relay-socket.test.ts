/**
 * The relay's unix sockets in a pod-writable run dir: no symlink is followed when creating, removing or connecting,
 * a stale socket is replaced, and anything else in the socket's place is left alone and refused.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  RelaySocketPathError,
  connectUnixSocket,
  listenUnixSocket,
} from '../../../operator/daemon/migration-relay-socket';

let dir: string;
const closers: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-socket-'));
  fs.mkdirSync(path.join(dir, 'run'));
  fs.mkdirSync(path.join(dir, 'elsewhere'));
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function plainServer(socketPath: string): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.end('hello');
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

test('listens, accepts a connection, and removes its socket file on close', async () => {
  const socketPath = path.join(dir, 'run', 'tx.sock');
  const accepted: net.Socket[] = [];
  const listener = await listenUnixSocket(socketPath, (s) => {
    accepted.push(s);
    s.resume();
    s.end();
  });
  expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
  const client = net.connect(socketPath);
  await new Promise((resolve) => client.on('close', resolve));
  expect(accepted).toHaveLength(1);
  await listener.close();
  expect(fs.existsSync(socketPath)).toBe(false);
});

test('a stale socket is replaced', async () => {
  const socketPath = path.join(dir, 'run', 'tx.sock');
  const stale = net.createServer();
  await new Promise<void>((resolve) => stale.listen(socketPath, resolve));
  // Leave the file behind as a crashed process would: close the handle without unlinking.
  fs.renameSync(socketPath, `${socketPath}.keep`);
  await new Promise((resolve) => stale.close(resolve));
  fs.renameSync(`${socketPath}.keep`, socketPath);
  await expect(connectUnixSocket(socketPath)).rejects.toThrow(/ECONNREFUSED/);

  let accepted = 0;
  const listener = await listenUnixSocket(socketPath, (s) => {
    accepted++;
    s.destroy();
  });
  closers.push(() => listener.close());
  const client = net.connect(socketPath);
  client.on('error', () => undefined);
  await new Promise((resolve) => client.on('close', resolve));
  expect(accepted).toBe(1);
});

test('a regular file in the socket place is refused and left untouched', async () => {
  const socketPath = path.join(dir, 'run', 'tx.sock');
  fs.writeFileSync(socketPath, 'pod data');
  await expect(listenUnixSocket(socketPath, () => undefined)).rejects.toThrow(
    'something other than a socket is already there',
  );
  expect(fs.readFileSync(socketPath, 'utf8')).toBe('pod data');
});

test('a symlink in the socket place is refused, and neither it nor its target is removed', async () => {
  const victim = path.join(dir, 'elsewhere', 'host.sock');
  await plainServer(victim);
  const socketPath = path.join(dir, 'run', 'tx.sock');
  fs.symlinkSync(victim, socketPath);
  await expect(listenUnixSocket(socketPath, () => undefined)).rejects.toThrow(RelaySocketPathError);
  expect(fs.lstatSync(socketPath).isSymbolicLink()).toBe(true);
  expect(fs.lstatSync(victim).isSocket()).toBe(true);
});

test('a symlinked parent directory is refused for listening and for connecting', async () => {
  fs.rmdirSync(path.join(dir, 'run'));
  fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'run'));
  const socketPath = path.join(dir, 'run', 'rx.sock');
  await expect(listenUnixSocket(socketPath, () => undefined)).rejects.toThrow(
    'its parent directory is a symlink or not a directory',
  );
  expect(fs.readdirSync(path.join(dir, 'elsewhere'))).toEqual([]);

  await plainServer(path.join(dir, 'elsewhere', 'rx.sock'));
  await expect(connectUnixSocket(socketPath)).rejects.toThrow('its parent directory is a symlink or not a directory');
});

test('connects to a real socket, but not through a symlink to one, nor to a file', async () => {
  const real = path.join(dir, 'run', 'rx.sock');
  await plainServer(real);
  const socket = await connectUnixSocket(real);
  const reply = await new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => resolve(text));
  });
  socket.destroy();
  expect(reply).toBe('hello');

  const host = path.join(dir, 'elsewhere', 'host.sock');
  await plainServer(host);
  const link = path.join(dir, 'run', 'link.sock');
  fs.symlinkSync(host, link);
  await expect(connectUnixSocket(link)).rejects.toThrow('not a socket (a symlink or a file)');

  const file = path.join(dir, 'run', 'file.sock');
  fs.writeFileSync(file, '');
  await expect(connectUnixSocket(file)).rejects.toThrow('not a socket');
  await expect(connectUnixSocket(path.join(dir, 'run', 'missing.sock'))).rejects.toThrow('no socket there');
});

test('a directory the daemon already holds (/proc/self/fd/<n>) is accepted, and outlives the caller closing it', async () => {
  const O_PATH = 0o10000000;
  const held = fs.openSync(path.join(dir, 'run'), O_PATH | fs.constants.O_DIRECTORY);
  const listener = await listenUnixSocket(`/proc/self/fd/${held}/tx.sock`, (s) => {
    // Accepted sockets arrive paused: read, or the client's end is never seen.
    s.resume();
    s.end('hi');
  });
  fs.closeSync(held);
  expect(fs.lstatSync(path.join(dir, 'run', 'tx.sock')).isSocket()).toBe(true);
  const reply = await new Promise<string>((resolve) => {
    let text = '';
    const client = net.connect(path.join(dir, 'run', 'tx.sock'));
    client.on('data', (d: Buffer) => (text += d.toString()));
    client.on('close', () => resolve(text));
  });
  expect(reply).toBe('hi');
  await listener.close();
  expect(fs.existsSync(path.join(dir, 'run', 'tx.sock'))).toBe(false);

  await plainServer(path.join(dir, 'run', 'rx.sock'));
  const again = fs.openSync(path.join(dir, 'run'), O_PATH | fs.constants.O_DIRECTORY);
  try {
    const socket = await connectUnixSocket(`/proc/self/fd/${again}/rx.sock`);
    socket.destroy();
  } finally {
    fs.closeSync(again);
  }
});

test('relative paths and directory-like paths are refused', async () => {
  await expect(listenUnixSocket('run/tx.sock', () => undefined)).rejects.toThrow('must be an absolute path');
  await expect(listenUnixSocket(`${dir}/run/`, () => undefined)).rejects.toThrow('must name a file');
  await expect(connectUnixSocket(`${dir}/run/..`)).rejects.toThrow('must name a file');
});
