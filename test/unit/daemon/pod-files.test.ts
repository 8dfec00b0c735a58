/**
 * The node daemon reads a VM pod's run dir as hostile input: no symlink is followed anywhere below it, no read is
 * unbounded, FIFOs and devices are refused, and sockets are connected to through the descriptor that was checked.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { holdSocket, kindBeneath, openBeneath, readBeneath } from '../../../operator/daemon/pod-files';

let root: string;
let outside: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pod-files-'));
  outside = mkdtempSync(join(tmpdir(), 'pod-files-outside-'));
  writeFileSync(join(outside, 'secret'), 'node secret');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

test('reads a file beneath the root, bounded, from an offset', () => {
  mkdirSync(join(root, 'dnsmasq'));
  writeFileSync(join(root, 'dnsmasq', 'br.leases'), '0123456789');
  expect(readBeneath(root, 'dnsmasq/br.leases', 4).data.toString()).toBe('0123');
  expect(readBeneath(root, 'dnsmasq/br.leases', 100, 6)).toEqual({ data: Buffer.from('6789'), size: 10 });
});

test.each([
  ['a symlinked file', () => symlinkSync(join(outside, 'secret'), join(root, 'vm-config.json')), 'vm-config.json'],
  ['a symlinked directory on the way', () => symlinkSync(outside, join(root, 'dnsmasq')), 'dnsmasq/secret'],
  ['a parent reference', () => undefined, '../secret'],
])('refuses %s', (_what, plant, relative) => {
  plant();
  expect(() => readBeneath(root, relative, 1024)).toThrow(/symlink|not a plain relative path/);
});

test('refuses a FIFO (a read would block the daemon)', () => {
  execFileSync('mkfifo', [join(root, 'ch-events')]);
  expect(() => readBeneath(root, 'ch-events', 1024)).toThrow(/not a regular file/);
});

test('kindBeneath tells sockets, files and what is missing, without following symlinks', async () => {
  writeFileSync(join(root, 'f'), '');
  symlinkSync(join(outside, 'secret'), join(root, 'link'));
  const server = await listen(join(root, 's.sock'));
  try {
    expect(kindBeneath(root, 's.sock')).toBe('socket');
    expect(kindBeneath(root, 'f')).toBe('file');
    expect(kindBeneath(root, 'nope')).toBe('missing');
    expect(kindBeneath(root, 'link')).toBe('other');
  } finally {
    server.close();
  }
});

test('a held socket connects to the socket that was checked, even after the pod swaps the name', async () => {
  const server = await listen(join(root, 'ch.sock'), 'original');
  const held = holdSocket(root, 'ch.sock');
  rmSync(join(root, 'ch.sock'));
  const impostor = await listen(join(root, 'ch.sock'), 'impostor');
  try {
    expect(held.address).toMatch(/^\/proc\/self\/fd\/\d+$/);
    expect(await greeting(held.address)).toBe('original');
  } finally {
    held.close();
    server.close();
    impostor.close();
  }
});

test('a symlink named like the API socket is not connected to', async () => {
  const elsewhere = await listen(join(outside, 'docker.sock'));
  symlinkSync(join(outside, 'docker.sock'), join(root, 'ch.sock'));
  try {
    expect(() => holdSocket(root, 'ch.sock')).toThrow(/symlink/);
  } finally {
    elsewhere.close();
  }
});

test('openBeneath refuses empty and dot components', () => {
  expect(() => openBeneath(root, 'a//b', 0)).toThrow(/not a plain relative path/);
  expect(() => openBeneath(root, './a', 0)).toThrow(/not a plain relative path/);
});

function listen(path: string, hello = 'hi'): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((s) => s.end(hello));
    server.listen(path, () => resolve(server));
  });
}

function greeting(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(address);
    let text = '';
    c.on('data', (d) => (text += d.toString()));
    c.on('end', () => resolve(text));
    c.on('error', reject);
  });
}
