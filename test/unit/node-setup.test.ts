/**
 * Node setup's pass (operator/node-setup) against host roots made in a temporary directory: a /dev with or without
 * the devices (character devices: links to /dev/null), a /sys hugepages pool, a /proc/cpuinfo.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuLabels, labelValue, modulesFor, readCpu } from '../../operator/node-setup/host';
import { parseNodeSetupArgs } from '../../operator/node-setup/main';
import { nodePatch, setupPass } from '../../operator/node-setup/setup';

const CPUINFO = `processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
flags\t\t: fpu vme sse2 vmx avx2 fpu

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: something else entirely
flags\t\t: fpu
`;

let root: string;
let roots: { devRoot: string; sysRoot: string; procRoot: string };
const pool2Mi = () => join(roots.sysRoot, 'kernel/mm/hugepages/hugepages-2048kB/nr_hugepages');

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kubevisor-node-setup-'));
  roots = { devRoot: join(root, 'dev'), sysRoot: join(root, 'sys'), procRoot: join(root, 'proc') };
  mkdirSync(join(roots.devRoot, 'net'), { recursive: true });
  mkdirSync(join(roots.sysRoot, 'kernel/mm/hugepages/hugepages-2048kB'), { recursive: true });
  mkdirSync(roots.procRoot);
  writeFileSync(join(roots.procRoot, 'cpuinfo'), CPUINFO);
  writeFileSync(join(roots.procRoot, 'meminfo'), 'MemTotal:        4194304 kB\nMemFree:         1000 kB\n');
  writeFileSync(pool2Mi(), '0\n');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const withDevices = () => {
  symlinkSync('/dev/null', join(roots.devRoot, 'kvm'));
  symlinkSync('/dev/null', join(roots.devRoot, 'net/tun'));
};

test('the first processor gives vendor, model and sorted, distinct flags', () => {
  expect(readCpu(roots.procRoot)).toEqual({
    vendor: 'GenuineIntel',
    model: 'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz',
    flags: ['avx2', 'fpu', 'sse2', 'vme', 'vmx'],
  });
});

test('CPU labels are valid label values; equal flags give equal feature hashes, others differ', () => {
  const cpu = readCpu(roots.procRoot);
  const labels = cpuLabels(cpu);
  expect(labels).toEqual({
    vendor: 'GenuineIntel',
    model: 'Intel-R-Xeon-R-Platinum-8375C-CPU-2.90GHz',
    features: expect.stringMatching(/^[0-9a-f]{16}$/),
  });
  expect(cpuLabels({ ...cpu, flags: [...cpu.flags] }).features).toBe(labels.features);
  expect(cpuLabels({ ...cpu, flags: cpu.flags.filter((f) => f !== 'avx2') }).features).not.toBe(labels.features);
  expect(labelValue('x'.repeat(100) + '!')).toHaveLength(63);
  expect(labelValue('((()))')).toBe('unknown');
  expect(labelValue('-a b-')).toBe('a-b');
});

test('modules for each vendor', () => {
  expect(modulesFor('GenuineIntel')).toEqual(['kvm', 'kvm_intel', 'tun', 'vhost_net']);
  expect(modulesFor('AuthenticAMD')).toEqual(['kvm', 'kvm_amd', 'tun', 'vhost_net']);
  expect(modulesFor('HygonGenuine')).toEqual(['kvm', 'tun', 'vhost_net']);
});

test('with both devices the node is ready; hugepages are reserved as asked and read back', async () => {
  withDevices();
  const modprobe = jest.fn(async () => []);
  const report = await setupPass({ ...roots, loadModules: true, hugepages2Mi: 512, modprobe });
  expect(modprobe).not.toHaveBeenCalled();
  expect(readFileSync(pool2Mi(), 'utf8')).toBe('512\n');
  expect(report).toEqual(
    expect.objectContaining({ ready: true, problems: [], modulesFailed: [], hugepages: { '2Mi': 512 } }),
  );
  expect(nodePatch(report)).toEqual({
    metadata: {
      labels: {
        'kubevisor.io/kvm': 'true',
        'kubevisor.io/cpu-vendor': 'GenuineIntel',
        'kubevisor.io/cpu-model': 'Intel-R-Xeon-R-Platinum-8375C-CPU-2.90GHz',
        'kubevisor.io/cpu-features': report.cpu.features,
      },
      annotations: {
        'kubevisor.io/node-setup': JSON.stringify({
          ready: true,
          problems: [],
          modulesFailed: [],
          hugepages: { '2Mi': 512 },
        }),
      },
    },
  });
});

test('missing devices: modules are loaded (when allowed) and the node is labelled not ready, saying why', async () => {
  const modprobe = jest.fn(async () => ['vhost_net (FATAL: Module vhost_net not found)']);
  const report = await setupPass({ ...roots, loadModules: true, modprobe });
  expect(modprobe).toHaveBeenCalledWith(['kvm', 'kvm_intel', 'tun', 'vhost_net']);
  expect(report.ready).toBe(false);
  expect(report.problems).toEqual(['/dev/kvm is missing', '/dev/net/tun is missing']);
  expect(report.modulesFailed).toEqual(['vhost_net (FATAL: Module vhost_net not found)']);
  expect((nodePatch(report).metadata as { labels: Record<string, string> }).labels['kubevisor.io/kvm']).toBe('false');
});

test('a device that is not a character device does not count; modules are never loaded when not allowed', async () => {
  writeFileSync(join(roots.devRoot, 'kvm'), '');
  symlinkSync('/dev/null', join(roots.devRoot, 'net/tun'));
  const modprobe = jest.fn(async () => []);
  const report = await setupPass({ ...roots, loadModules: false, modprobe });
  expect(modprobe).not.toHaveBeenCalled();
  expect(report).toEqual(expect.objectContaining({ ready: false, problems: ['/dev/kvm is not a character device'] }));
});

test('a hugepages size the kernel lacks is a problem but does not make the node unready', async () => {
  withDevices();
  const report = await setupPass({ ...roots, loadModules: false, hugepages1Gi: 1 });
  expect(report.ready).toBe(true);
  expect(report.problems).toEqual(['no 1Gi hugepages pool in this kernel']);
  expect(report.hugepages).toEqual({ '2Mi': 0 });
});

test('hugepages beyond half the node memory are not written, and say so', async () => {
  withDevices();
  // 4 GiB of memory: 1025 × 2 MiB is just over half.
  const report = await setupPass({ ...roots, loadModules: false, hugepages2Mi: 1025 });
  expect(readFileSync(pool2Mi(), 'utf8')).toBe('0\n');
  expect(report.problems).toEqual(['hugepages left unchanged: 2050 MiB asked of 4096 MiB memory, more than 50%']);
  expect(report.ready).toBe(true);
  // Exactly half fits.
  await setupPass({ ...roots, loadModules: false, hugepages2Mi: 1024 });
  expect(readFileSync(pool2Mi(), 'utf8')).toBe('1024\n');
});

test('an unreadable MemTotal changes no hugepages', async () => {
  withDevices();
  writeFileSync(join(roots.procRoot, 'meminfo'), 'garbage\n');
  const report = await setupPass({ ...roots, loadModules: false, hugepages2Mi: 8 });
  expect(readFileSync(pool2Mi(), 'utf8')).toBe('0\n');
  expect(report.problems).toEqual(['hugepages left unchanged: the node memory (/proc/meminfo MemTotal) is unreadable']);
});

test('a device node that does not open (a placeholder without its driver) does not count', async () => {
  // Major 240 is reserved for local use: no driver answers, so open fails with ENXIO as for a /dev/kvm placeholder.
  execFileSync('mknod', [join(roots.devRoot, 'kvm'), 'c', '240', '0']);
  symlinkSync('/dev/null', join(roots.devRoot, 'net/tun'));
  const report = await setupPass({ ...roots, loadModules: false });
  expect(report).toEqual(expect.objectContaining({ ready: false, problems: ['/dev/kvm does not open (ENXIO)'] }));
});

test.each([
  [['--hugepages-2mi=-5'], '--hugepages-2mi must be a whole number from 0 to 1048576, got -5'],
  [['--hugepages-1gi', '1e3'], '--hugepages-1gi must be a whole number from 0 to 4096, got 1e3'],
  [['--recheck', '1'], '--recheck must be a whole number from 10 to 86400, got 1'],
])('refuses %j', (args, message) => {
  expect(() => parseNodeSetupArgs(['--node-name', 'n', ...args], {})).toThrow(message);
});

test('the node name comes from the flag or $NODE_NAME, and is required', () => {
  expect(parseNodeSetupArgs([], { NODE_NAME: 'node-a' }).nodeName).toBe('node-a');
  expect(parseNodeSetupArgs(['--no-load-modules', '--node-name', 'b'], {})).toEqual(
    expect.objectContaining({ nodeName: 'b', loadModules: false, recheckSeconds: 300, once: false }),
  );
  expect(() => parseNodeSetupArgs([], {})).toThrow('--node-name or $NODE_NAME is required');
});
