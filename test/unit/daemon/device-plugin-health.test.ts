// Device node health: the real character-device check, and health transitions driven by inotify as the node and
// its directory appear and disappear.
//
// Creating a character device needs CAP_MKNOD, which a unit test cannot count on, so the transition tests inject
// the check (a regular file stands for the node). What the injection skips, the default check itself, is tested
// here on /dev/null (a character device on every Linux), and against real mknod'ed nodes in the e2e test, which runs
// as root.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../operator/kube/log';
import { DeviceNodeHealth, isCharacterDevice } from '../../../operator/daemon/device-plugin-health';
import { watchDirectory } from '../../../operator/daemon/device-plugin-watch';
import { waitFor } from '../../support/kubelet-registration-standin';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubevisor-health-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A regular file stands for the device node. */
const isRegularFile = (p: string) => {
  try {
    return fs.lstatSync(p).isFile();
  } catch {
    return false;
  }
};

/** Health of `hostPath` with every transition recorded; next(v) waits until the last transition is v. */
function track(hostPath: string) {
  const events = new EventEmitter();
  const transitions: boolean[] = [];
  const health = new DeviceNodeHealth(hostPath, {
    check: isRegularFile,
    logger: silentLogger,
    onChange: (healthy) => {
      transitions.push(healthy);
      events.emit('change');
    },
  });
  const next = (healthy: boolean) =>
    waitFor(
      events,
      () => (health.healthy === healthy ? true : undefined),
      5000,
      () => `health ${healthy} of ${hostPath}`,
    );
  return { health, transitions, next };
}

test('the default check accepts character devices only, and never follows a symlink', () => {
  expect(isCharacterDevice('/dev/null')).toBe(true);
  const file = path.join(dir, 'kvm');
  fs.writeFileSync(file, '');
  expect(isCharacterDevice(file)).toBe(false);
  const link = path.join(dir, 'link');
  fs.symlinkSync('/dev/null', link);
  expect(isCharacterDevice(link)).toBe(false);
  expect(isCharacterDevice(dir)).toBe(false);
  expect(isCharacterDevice(path.join(dir, 'missing'))).toBe(false);
});

test('health follows the node as it appears and disappears', async () => {
  const node = path.join(dir, 'kvm');
  const { health, transitions, next } = track(node);
  try {
    expect(health.healthy).toBe(false);
    fs.writeFileSync(node, '');
    await next(true);
    fs.rmSync(node);
    await next(false);
    fs.writeFileSync(node, '');
    await next(true);
    // Replaced by something that fails the check: unhealthy.
    fs.rmSync(node);
    fs.mkdirSync(node);
    await next(false);
    expect(transitions).toEqual([true, false, true, false]);
  } finally {
    health.close();
  }
});

test('a node whose directory is missing: the watch waits on the ancestor, then follows the directory', async () => {
  const node = path.join(dir, 'net', 'tun');
  const { health, transitions, next } = track(node);
  try {
    expect(health.healthy).toBe(false);
    fs.mkdirSync(path.dirname(node));
    fs.writeFileSync(node, '');
    await next(true);
    // The whole directory goes: unhealthy, and the watch falls back to the ancestor.
    fs.rmSync(path.dirname(node), { recursive: true });
    await next(false);
    // Created again in one go (mkdir + file) before the watch could move: the re-check after the move sees it.
    fs.mkdirSync(path.dirname(node));
    fs.writeFileSync(node, '');
    await next(true);
    // The directory replaced by another one (rename): the watch moves to the new directory.
    fs.renameSync(path.dirname(node), path.join(dir, 'net.old'));
    await next(false);
    fs.mkdirSync(path.dirname(node));
    fs.writeFileSync(node, '');
    await next(true);
    fs.rmSync(node);
    await next(false);
    expect(transitions).toEqual([true, false, true, false, true, false]);
  } finally {
    health.close();
  }
});

test('recheck() reports the node as it is now, and close() stops the watch', async () => {
  const node = path.join(dir, 'kvm');
  const { health, transitions } = track(node);
  health.close();
  fs.writeFileSync(node, '');
  // No watch any more: nothing arrives by itself, but an explicit look still sees the node.
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(transitions).toEqual([]);
  expect(health.recheck()).toBe(true);
  expect(transitions).toEqual([true]);
});

test('watchDirectory watches the nearest existing ancestor and moves down as the path appears', async () => {
  const target = path.join(dir, 'a', 'b');
  const events = new EventEmitter();
  const watch = watchDirectory(target, () => events.emit('change'), silentLogger);
  try {
    expect(watch.watching).toBe(dir);
    fs.mkdirSync(path.join(dir, 'a'));
    await waitFor(
      events,
      () => (watch.watching === path.join(dir, 'a') ? true : undefined),
      5000,
      () => 'a',
    );
    fs.mkdirSync(target);
    await waitFor(
      events,
      () => (watch.watching === target ? true : undefined),
      5000,
      () => 'a/b',
    );
    fs.rmSync(path.join(dir, 'a'), { recursive: true });
    await waitFor(
      events,
      () => (watch.watching === dir ? true : undefined),
      5000,
      () => 'back to the root',
    );
  } finally {
    watch.close();
  }
  expect(watch.watching).toBeUndefined();
});
