/**
 * Golden tests of the VM pod, one per volume type and binding: the rendered pod must equal the committed YAML in
 * test/fixtures/vm-pod. After an intended change, rewrite them with `UPDATE_GOLDEN=1 npx jest test/unit/vm-pod`
 * and review the diff.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { VirtualMachineProps } from '../../constructs';
import { renderVirtualMachine } from '../../constructs';
import { OVERHEAD, overheadBytes, renderVmPod, vmPodName, vmPodResources } from '../../constructs/vm-pod';
import type { VirtualMachineSpec } from '../../api';
import { EXAMPLES } from '../../stacks/examples';

const GOLDEN = join(__dirname, '..', 'fixtures', 'vm-pod');
const options = { image: 'ghcr.io/kubevisor/kubevisor:test' };

const vm = (name: string, props: VirtualMachineProps) => {
  const o = renderVirtualMachine(name, { ...props, metadata: { ...props.metadata, name, namespace: 'default' } });
  return { ...o, metadata: { ...o.metadata, uid: `uid-${name}` } };
};

const CASES: Record<string, { props: VirtualMachineProps; options?: object; migrationUid?: string }> = {
  'container-disk-masquerade': { props: EXAMPLES.web },
  'kernel-rootfs-bridge': { props: EXAMPLES['kernel-boot'] },
  'pvc-multus-bridge': { props: EXAMPLES.db },
  'block-pvc-datavolume': {
    props: {
      disks: [{ name: 'root' }, { name: 'data' }],
      volumes: [
        { name: 'root', persistentVolumeClaim: { claimName: 'root-block' } },
        { name: 'data', dataVolume: { volumeName: 'data-dv', hotpluggable: true } },
      ],
    },
    options: { blockVolumes: ['root'] },
  },
  'cloud-init-secrets-virtiofs': {
    props: {
      kernel: { image: 'example.com/kernel:1', cmdline: 'console=ttyS0' },
      disks: [{ name: 'cloudinit' }],
      fileSystems: [{ name: 'share' }],
      volumes: [
        { name: 'cloudinit', cloudInit: { userDataSecretName: 'vm-userdata', networkDataSecretName: 'vm-netdata' } },
        { name: 'share', persistentVolumeClaim: { claimName: 'shared' } },
      ],
    },
  },
  'hugepages-dedicated-vhostuser': {
    props: {
      cpu: { sockets: 2, coresPerSocket: 2, dedicatedCPUPlacement: true },
      memory: { size: '4Gi', hugepages: { pageSize: '1Gi' } },
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1', imagePullPolicy: 'Always' } }],
      interfaces: [{ name: 'fast', vhostUser: {} }],
      networks: [{ name: 'fast', multus: { networkName: 'dpdk/ovs-dpdk' } }],
    },
  },
  'sriov-vdpa': {
    props: {
      disks: [{ name: 'root' }],
      volumes: [{ name: 'root', containerDisk: { image: 'example.com/disk:1' } }],
      interfaces: [
        { name: 'pod', masquerade: {} },
        { name: 'vf', sriov: {} },
        { name: 'vd', vdpa: { numQueues: 4 } },
      ],
      networks: [
        { name: 'pod', pod: {} },
        { name: 'vf', multus: { networkName: 'sriov-net' } },
        { name: 'vd', multus: { networkName: 'vdpa-net' } },
      ],
      tolerations: [{ key: 'sriov', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'sriov', operator: 'Exists' }] }],
          },
        },
      },
    },
    options: { networkResources: { vf: 'intel.com/sriov_netdevice', vd: 'nvidia.com/vdpa' } },
  },
  'migration-target': { props: EXAMPLES.db, migrationUid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' },
};

describe.each(Object.entries(CASES))('%s', (name, c) => {
  test('matches the golden pod', () => {
    const pod = renderVmPod(
      vm(name, c.props),
      { run: 0, ...(c.migrationUid ? { migrationUid: c.migrationUid } : {}) },
      { ...options, ...c.options },
    );
    const file = join(GOLDEN, `${name}.yaml`);
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file))
      writeFileSync(file, stringify(pod, { lineWidth: 0, aliasDuplicateObjects: false }));
    expect(pod).toEqual(parse(readFileSync(file, 'utf8')));
  });
});

const spec = (props: VirtualMachineProps) => vm('x', props).spec as VirtualMachineSpec;

test('memory request = guest memory + overhead (64Mi + 4Mi per vCPU + 1/128 of guest memory)', () => {
  const s = spec({ cpu: { sockets: 2 }, memory: { size: '2Gi' } });
  expect(overheadBytes(s)).toBe(OVERHEAD.baseBytes + 2n * OVERHEAD.perVcpuBytes + (2n * 1024n ** 3n) / 128n);
  expect(vmPodResources(s).requests.memory).toBe('2136Mi'); // 2048 + 64 + 8 + 16
  expect(vmPodResources(s).limits.memory).toBeUndefined();
});

test('hugepages carry guest memory; memory carries only the overhead', () => {
  const r = vmPodResources(spec({ memory: { size: '2Gi', hugepages: { pageSize: '2Mi' } } }));
  expect(r.requests).toEqual(expect.objectContaining({ 'hugepages-2Mi': '2Gi', memory: '84Mi' }));
  expect(r.limits).toEqual(expect.objectContaining({ 'hugepages-2Mi': '2Gi' }));
});

test('dedicated CPUs give Guaranteed QoS: whole CPUs, requests = limits', () => {
  const r = vmPodResources(
    spec({ cpu: { sockets: 1, coresPerSocket: 3, dedicatedCPUPlacement: true }, memory: { size: '1Gi' } }),
  );
  expect(r.requests.cpu).toBe('3');
  expect(r.limits.cpu).toBe('3');
  expect(r.limits.memory).toBe(r.requests.memory);
});

test('user requests are kept; devices are always requested', () => {
  const r = vmPodResources(spec({ resources: { requests: { cpu: '500m', memory: '3Gi' } } }));
  expect(r.requests).toEqual({
    cpu: '500m',
    memory: '3Gi',
    'devices.kubevisor.io/kvm': '1',
    'devices.kubevisor.io/tun': '1',
  });
});

test('pod names are stable per run and differ between runs', () => {
  expect(vmPodName('web', 'u1', { run: 0 })).toBe(vmPodName('web', 'u1', { run: 0 }));
  expect(vmPodName('web', 'u1', { run: 0 })).not.toBe(vmPodName('web', 'u1', { run: 1 }));
});

// Every VM name the CRD accepts is a DNS label of 1–63 characters. Before the fix, names of 59+ characters lost the
// run hash to truncation (and ended in '-'), so run N, run N+1 and the migration target all got the same pod name.
test.each([1, 40, 52, 53, 58, 59, 62, 63])('a %i-character VM name gives distinct, valid pod names', (length) => {
  const vmName = 'v'.repeat(length - 1) + '9';
  const uid = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
  const names = [
    ...[0, 1, 2, 9, 10, 123456].map((run) => vmPodName(vmName, uid, { run })),
    vmPodName(vmName, uid, { run: 0, migrationUid: '11111111-2222-3333-4444-555555555555' }),
    vmPodName(vmName, uid, { run: 0, migrationUid: '66666666-2222-3333-4444-555555555555' }),
    vmPodName(vmName, uid, { run: 1, migrationUid: '11111111-2222-3333-4444-555555555555' }),
  ];
  expect(new Set(names).size).toBe(names.length);
  for (const n of names) {
    expect(n.length).toBeLessThanOrEqual(63);
    expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  }
  // Another VM whose name shares the shortened prefix still gets its own pods.
  expect(vmPodName(vmName, 'another-uid', { run: 0 })).not.toBe(names[0]);
});
