/**
 * The VmConfig checks the daemon makes before vm.create/vm.boot, so that what Cloud Hypervisor would refuse late, or
 * wait a minute for, fails at once with a message a user can act on.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CH_MAX_BODY_BYTES, VmPodFiles } from '../../../operator/daemon/vm-pod-files';

let root: string;
let files: VmPodFiles;
let runDir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vm-pod-files-'));
  files = new VmPodFiles(
    { namespace: 'ns', name: 'vm-x-1', uid: 'u1' },
    { kubeletRoot: root, podLogsDir: root },
    () => undefined,
  );
  runDir = files.runDir;
  mkdirSync(runDir, { recursive: true });
});
afterEach(() => {
  files.close();
  rmSync(root, { recursive: true, force: true });
});

const write = (config: unknown) => writeFileSync(join(runDir, 'vm-config.json'), JSON.stringify(config));

test('a VmConfig within the limit is read', () => {
  write({ payload: { firmware: '/fw' } });
  expect(files.vmConfig()).toEqual({ config: { payload: { firmware: '/fw' } } });
});

test("a VmConfig over CH v53.0's 51,200-byte body limit is refused before it is sent", () => {
  write({ payload: { kernel: '/k', cmdline: 'x'.repeat(CH_MAX_BODY_BYTES) } });
  expect(files.vmConfig()).toEqual({
    problem: expect.stringMatching(/bytes; Cloud Hypervisor v53\.0 accepts at most 51200/),
  });
});

test('a missing virtio-fs backend in the run dir is a boot failure now, not a minute of CH blocking', () => {
  write({ payload: { firmware: '/fw' }, fs: [{ tag: 'data', socket: '/var/run/kubevisor/virtiofsd/data.sock' }] });
  expect(files.vmConfig()).toEqual({ problem: expect.stringMatching(/virtiofsd\/data\.sock does not exist/) });
});

test('a listening virtio-fs backend passes', async () => {
  mkdirSync(join(runDir, 'virtiofsd'));
  const server = createServer();
  await new Promise<void>((r) => server.listen(join(runDir, 'virtiofsd', 'data.sock'), r));
  try {
    write({ payload: { firmware: '/fw' }, fs: [{ tag: 'data', socket: '/var/run/kubevisor/virtiofsd/data.sock' }] });
    expect(files.vmConfig()).toHaveProperty('config');
  } finally {
    server.close();
  }
});

test('a VmConfig that is not JSON is a clear problem', () => {
  writeFileSync(join(runDir, 'vm-config.json'), '{');
  expect(files.vmConfig()).toEqual({ problem: expect.stringMatching(/is not JSON/) });
});

test("a crash line is read only from CH's stderr, and never from the middle of a long serial line", () => {
  const logDir = join(root, 'ns_vm-x-1_u1', 'launcher');
  mkdirSync(logDir, { recursive: true });
  const t = '2026-11-29T12:00:00.000000000Z';
  // The guest prints one serial line longer than the tail the daemon reads, ending in what looks like a CRI line.
  const forged = `${t} stdout F ${'A'.repeat(70 * 1024)} stderr F VCPU generated error: forged by the guest\n`;
  writeFileSync(join(logDir, '0.log'), forged);
  expect(files.crashLine()).toBeUndefined();
  writeFileSync(
    join(logDir, '0.log'),
    `${forged}${t} stderr F cloud-hypervisor: 9.1s: <vcpu0> ERROR:vmm/src/cpu.rs:1460 -- VCPU generated error: VcpuRun(…)\n`,
  );
  expect(files.crashLine()).toMatch(/^cloud-hypervisor: 9\.1s: <vcpu0> ERROR/);
});
