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

const CASES: Record<string, { props: VirtualMachineProps; options?: object; migrationTarget?: boolean }> = {
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
  'migration-target': { props: EXAMPLES.db, migrationTarget: true },
};

describe.each(Object.entries(CASES))('%s', (name, c) => {
  test('matches the golden pod', () => {
    const pod = renderVmPod(
      vm(name, c.props),
      { run: 0, migrationTarget: c.migrationTarget },
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
  expect(vmPodName('web', 'u1', 0)).toBe(vmPodName('web', 'u1', 0));
  expect(vmPodName('web', 'u1', 0)).not.toBe(vmPodName('web', 'u1', 1));
  expect(vmPodName('a'.repeat(63), 'u1', 0).length).toBeLessThanOrEqual(63);
});
