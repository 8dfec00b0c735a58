/**
 * The bad-input table: invalid objects, each breaking one distinct rule of the contract, with the field path and
 * error text that rule produces. The synth-time test (bad-input.test.ts) and the API-server agreement test
 * (test/e2e) both run this table.
 */
import type { KubevisorObject } from '../../api';
import { renderVirtualMachine, renderVirtualMachineMigration } from '../../constructs';

export interface BadInputCase {
  /** The rule broken, in a few words; unique across the table. */
  readonly name: string;
  /** The invalid object (create), or the invalid new version of `before` (update). */
  readonly object: KubevisorObject;
  /** For transition rules: a valid object that exists first and is then updated to `object`. */
  readonly before?: KubevisorObject;
  /** Field path the error is reported on. */
  readonly field: string;
  /** Text the error must contain. */
  readonly message: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- cases poke at raw JSON, including wrong types on purpose */
type Spec = any;

/** A valid VM touching most features: containerDisk + cloud-init, masquerade on the pod network. */
export function baseVm(name = 'bad'): KubevisorObject {
  return renderVirtualMachine(name, {
    metadata: { name },
    cpu: { sockets: 1, coresPerSocket: 2 },
    memory: { size: '1Gi' },
    disks: [{ name: 'root' }, { name: 'cloudinit' }],
    volumes: [
      { name: 'root', containerDisk: { image: 'example.com/disk:1' } },
      { name: 'cloudinit', cloudInit: { userData: '#cloud-config\n' } },
    ],
    interfaces: [{ name: 'pod', masquerade: {} }],
    networks: [{ name: 'pod', pod: {} }],
  });
}

/** A valid VM on a Multus network (for binding rules). */
function multusVm(binding: Record<string, unknown>, extra: (s: Spec) => void = () => {}): KubevisorObject {
  const o = baseVm();
  const s = o.spec as Spec;
  s.instance.interfaces.push({ name: 'lan', mac: '52:54:00:00:00:02', ...binding });
  s.networks.push({ name: 'lan', multus: { networkName: 'br-lan' } });
  extra(s);
  return o;
}

function vm(mutate: (spec: Spec, object: KubevisorObject) => void): KubevisorObject {
  const o = baseVm();
  mutate(o.spec as Spec, o);
  return o;
}

function update(
  mutateBefore: (spec: Spec) => void,
  mutateAfter: (spec: Spec) => void,
): { before: KubevisorObject; object: KubevisorObject } {
  const before = vm(mutateBefore);
  const object = structuredClone(before);
  mutateAfter(object.spec as Spec);
  return { before, object };
}

const migration = (spec: Record<string, unknown>): KubevisorObject => {
  const o = renderVirtualMachineMigration('move-bad', { vmName: 'bad' });
  o.spec = spec;
  return o;
};

/** A KubevisorCluster / KubevisorMachine / KubevisorMachineTemplate as a user (or Cluster API) writes it. */
const INFRA = 'infrastructure.cluster.x-k8s.io/v1alpha1';
const kvCluster = (spec: Spec): KubevisorObject => ({
  apiVersion: INFRA,
  kind: 'KubevisorCluster',
  metadata: { name: 'tenant' },
  spec,
});
/** The machine's VM is the base VM without its cloud-init (the provider adds the bootstrap data). */
function machineVm(mutate: (vmSpec: Spec) => void = () => {}, metadata?: Spec): Spec {
  const s = structuredClone(baseVm().spec) as Spec;
  s.instance.disks = s.instance.disks.filter((d: { name: string }) => d.name !== 'cloudinit');
  s.volumes = s.volumes.filter((v: { name: string }) => v.name !== 'cloudinit');
  mutate(s);
  return { ...(metadata ? { metadata } : {}), spec: s };
}
const kvMachine = (
  mutate: (vmSpec: Spec) => void = () => {},
  extra: Spec = {},
  vmMetadata?: Spec,
): KubevisorObject => ({
  apiVersion: INFRA,
  kind: 'KubevisorMachine',
  metadata: { name: 'tenant-md-0-abcde' },
  spec: { virtualMachine: machineVm(mutate, vmMetadata), ...extra },
});
const kvTemplate = (mutate: (vmSpec: Spec) => void = () => {}, vmMetadata?: Spec): KubevisorObject => ({
  apiVersion: INFRA,
  kind: 'KubevisorMachineTemplate',
  metadata: { name: 'tenant-md-0-1a2b3c4d' },
  spec: { template: { spec: { virtualMachine: machineVm(mutate, vmMetadata) } } },
});

const hotplugPvc = { name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } };

export const BAD_INPUT_CASES: readonly BadInputCase[] = [
  // --- top level and metadata
  {
    name: 'VM name must be a DNS label',
    object: vm((_, o) => (o.metadata.name = 'web.example')),
    field: '',
    message: 'must be a DNS label',
  },
  { name: 'spec is required', object: vm((_, o) => delete (o as any).spec), field: 'spec', message: 'Required value' },
  {
    name: 'unknown spec field',
    object: vm((s) => (s.runpolicy = 'Always')),
    field: 'spec.runpolicy',
    message: 'unknown field',
  },
  // --- runPolicy and power
  {
    name: 'runPolicy enum',
    object: vm((s) => (s.runPolicy = 'Sometimes')),
    field: 'spec.runPolicy',
    message: 'supported values: "Always"',
  },
  {
    name: 'runPolicy type',
    object: vm((s) => (s.runPolicy = 3)),
    field: 'spec.runPolicy',
    message: 'must be of type string',
  },
  {
    name: 'paused must be boolean',
    object: vm((s) => (s.power.paused = 'yes')),
    field: 'spec.power.paused',
    message: 'must be of type boolean',
  },
  {
    name: 'Halted VM cannot be paused',
    object: vm((s) => ((s.runPolicy = 'Halted'), (s.power.paused = true))),
    field: 'spec.power.paused',
    message: 'a Halted VM cannot be paused',
  },
  {
    name: 'shutdown grace period not negative',
    object: vm((s) => (s.power.shutdownGracePeriodSeconds = -1)),
    field: 'spec.power.shutdownGracePeriodSeconds',
    message: 'greater than or equal to 0',
  },
  {
    name: 'shutdown grace period at most an hour',
    object: vm((s) => (s.power.shutdownGracePeriodSeconds = 7200)),
    field: 'spec.power.shutdownGracePeriodSeconds',
    message: 'less than or equal to 3600',
  },
  {
    name: 'restartRequest length',
    object: vm((s) => (s.power.restartRequest = 'x'.repeat(64))),
    field: 'spec.power.restartRequest',
    message: 'may not be more than 63',
  },
  // --- instance: cpu and memory
  {
    name: 'instance is required',
    object: vm((s) => delete s.instance),
    field: 'spec.instance',
    message: 'Required value',
  },
  {
    name: 'sockets at least 1',
    object: vm((s) => (s.instance.cpu.sockets = 0)),
    field: 'spec.instance.cpu.sockets',
    message: 'greater than or equal to 1',
  },
  {
    name: 'coresPerSocket at least 1',
    object: vm((s) => (s.instance.cpu.coresPerSocket = 0)),
    field: 'spec.instance.cpu.coresPerSocket',
    message: 'greater than or equal to 1',
  },
  {
    name: 'sockets must be an integer',
    object: vm((s) => (s.instance.cpu.sockets = 1.5)),
    field: 'spec.instance.cpu.sockets',
    message: 'must be of type integer',
  },
  {
    name: 'vCPU total at most 254',
    object: vm((s) => ((s.instance.cpu.sockets = 16), (s.instance.cpu.coresPerSocket = 16))),
    field: 'spec.instance.cpu',
    message: 'at most 254 vCPUs',
  },
  {
    name: 'memory size format',
    object: vm((s) => (s.instance.memory.size = '1 GB')),
    field: 'spec.instance.memory.size',
    message: 'should match',
  },
  {
    name: 'memory size above zero',
    object: vm((s) => (s.instance.memory.size = '0')),
    field: 'spec.instance.memory.size',
    message: 'memory size must be greater than 0',
  },
  {
    name: 'memory size whole bytes',
    object: vm((s) => (s.instance.memory.size = '0.5')),
    field: 'spec.instance.memory.size',
    message: 'whole number of bytes',
  },
  {
    name: 'hugepage size enum',
    object: vm((s) => (s.instance.memory.hugepages = { pageSize: '4Ki' })),
    field: 'spec.instance.memory.hugepages.pageSize',
    message: 'supported values: "2Mi", "1Gi"',
  },
  {
    name: 'memory multiple of hugepage size',
    object: vm((s) => ((s.instance.memory.size = '1536Mi'), (s.instance.memory.hugepages = { pageSize: '1Gi' }))),
    field: 'spec.instance.memory.size',
    message: 'whole multiple of the hugepage size 1Gi',
  },
  {
    name: 'hugepages resources equal memory size',
    object: vm(
      (s) => (
        (s.instance.memory.hugepages = { pageSize: '2Mi' }),
        (s.resources = { limits: { 'hugepages-2Mi': '512Mi' } })
      ),
    ),
    field: 'spec.resources',
    message: 'hugepages-<pageSize> must equal instance.memory.size',
  },
  {
    name: 'dedicated CPUs: cpu request equals vCPUs',
    object: vm((s) => ((s.instance.cpu.dedicatedCPUPlacement = true), (s.resources = { requests: { cpu: '1' } }))),
    field: 'spec.resources',
    message: 'cpu requests and limits must equal sockets × coresPerSocket',
  },
  {
    name: 'requests at most limits',
    object: vm((s) => (s.resources = { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } })),
    field: 'spec.resources.requests',
    message: 'less than or equal to its limit',
  },
  {
    name: 'resource quantity format',
    object: vm((s) => (s.resources = { requests: { cpu: 'two' } })),
    field: 'spec.resources.requests.cpu',
    message: 'should match',
  },
  {
    name: 'at most 8 resource names',
    object: vm(
      (s) =>
        (s.resources = {
          requests: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`example.com/r${i}`, '1'])),
        }),
    ),
    field: 'spec.resources.requests',
    message: 'must have at most 8 items',
  },
  // --- kernel boot
  {
    name: 'kernel image required',
    object: vm((s) => (s.instance.kernel = { cmdline: 'console=ttyS0' })),
    field: 'spec.instance.kernel.image',
    message: 'Required value',
  },
  {
    name: 'kernel cmdline required',
    object: vm((s) => (s.instance.kernel = { image: 'example.com/kernel:1' })),
    field: 'spec.instance.kernel.cmdline',
    message: 'Required value',
  },
  {
    name: 'kernel cmdline not empty',
    object: vm((s) => (s.instance.kernel = { image: 'example.com/kernel:1', cmdline: '' })),
    field: 'spec.instance.kernel.cmdline',
    message: 'at least 1 chars long',
  },
  {
    name: 'imagePullPolicy enum',
    object: vm((s) => (s.volumes[0].containerDisk.imagePullPolicy = 'Sometimes')),
    field: 'spec.volumes[0].containerDisk.imagePullPolicy',
    message: 'supported values: "Always", "IfNotPresent", "Never"',
  },
  {
    name: 'containerRootfs needs kernel boot',
    object: vm(
      (s) => (
        s.instance.disks.push({ name: 'rootfs', readOnly: false }),
        s.volumes.push({ name: 'rootfs', containerRootfs: { image: 'example.com/rootfs:1', size: '2Gi' } })
      ),
    ),
    field: 'spec.instance',
    message: 'containerRootfs volume needs instance.kernel',
  },
  {
    name: 'firmware boot needs a bootable disk',
    object: vm((s) => ((s.instance.disks = [{ name: 'cloudinit', readOnly: false }]), (s.volumes = [s.volumes[1]]))),
    field: 'spec.instance',
    message: 'nothing to boot',
  },
  // --- disks, fileSystems and volumes
  {
    name: 'disk needs a volume',
    object: vm((s) => s.instance.disks.push({ name: 'data', readOnly: false })),
    field: 'spec.instance.disks',
    message: 'every disk needs a volume of the same name',
  },
  {
    name: 'volume must be used',
    object: vm((s) => s.volumes.push({ name: 'spare', containerDisk: { image: 'example.com/disk:1' } })),
    field: 'spec.volumes',
    message: 'every volume must be used',
  },
  {
    name: 'disk names unique',
    object: vm((s) => s.instance.disks.push({ name: 'root', readOnly: true })),
    field: 'spec.instance.disks[2]',
    message: 'Duplicate value',
  },
  {
    name: 'disk name is a DNS label',
    object: vm((s) => (s.instance.disks[0].name = 'Root')),
    field: 'spec.instance.disks[0].name',
    message: 'should match',
  },
  {
    name: 'disk readOnly boolean',
    object: vm((s) => (s.instance.disks[0].readOnly = 'no')),
    field: 'spec.instance.disks[0].readOnly',
    message: 'must be of type boolean',
  },
  {
    name: 'volume names unique',
    object: vm((s) => s.volumes.push({ name: 'root', containerDisk: { image: 'example.com/other:1' } })),
    field: 'spec.volumes[2]',
    message: 'Duplicate value',
  },
  {
    name: 'volume needs a source',
    object: vm((s) => (s.volumes[1] = { name: 'cloudinit' })),
    field: 'spec.volumes[1]',
    message: 'set a source',
  },
  {
    name: 'volume has one source',
    object: vm((s) => (s.volumes[0].persistentVolumeClaim = { claimName: 'root', hotpluggable: false })),
    field: 'spec.volumes[0]',
    message: 'set only one source per volume',
  },
  {
    name: 'containerDisk image required',
    object: vm((s) => (s.volumes[0].containerDisk = {})),
    field: 'spec.volumes[0].containerDisk.image',
    message: 'Required value',
  },
  {
    name: 'containerDisk image length',
    object: vm((s) => (s.volumes[0].containerDisk.image = 'x'.repeat(513))),
    field: 'spec.volumes[0].containerDisk.image',
    message: 'may not be more than 512',
  },
  {
    name: 'containerRootfs size required',
    object: vm(
      (s) => (
        (s.instance.kernel = { image: 'k:1', cmdline: 'root=/dev/vda' }),
        (s.volumes[0] = { name: 'root', containerRootfs: { image: 'r:1' } })
      ),
    ),
    field: 'spec.volumes[0].containerRootfs.size',
    message: 'Required value',
  },
  {
    name: 'containerRootfs size above zero',
    object: vm(
      (s) => (
        (s.instance.kernel = { image: 'k:1', cmdline: 'root=/dev/vda' }),
        (s.volumes[0] = { name: 'root', containerRootfs: { image: 'r:1', size: '0Gi' } })
      ),
    ),
    field: 'spec.volumes[0].containerRootfs.size',
    message: 'size must be greater than 0',
  },
  {
    name: 'containerRootfs size at most 64Gi',
    object: vm(
      (s) => (
        (s.instance.kernel = { image: 'k:1', cmdline: 'root=/dev/vda' }),
        (s.volumes[0] = { name: 'root', containerRootfs: { image: 'r:1', size: '65Gi' } })
      ),
    ),
    field: 'spec.volumes[0].containerRootfs.size',
    message: 'size must be at most 64Gi',
  },
  {
    name: 'containerDisk maxSize at most 1Ti',
    object: vm((s) => (s.volumes[0].containerDisk.maxSize = '2Ti')),
    field: 'spec.volumes[0].containerDisk.maxSize',
    message: 'maxSize must be at most 1Ti',
  },
  {
    name: 'containerDisk maxSize above zero',
    object: vm((s) => (s.volumes[0].containerDisk.maxSize = '0')),
    field: 'spec.volumes[0].containerDisk.maxSize',
    message: 'maxSize must be greater than 0',
  },
  {
    name: 'persistentVolumeClaim claimName required',
    object: vm((s) => (s.volumes[0] = { name: 'root', persistentVolumeClaim: { hotpluggable: false } })),
    field: 'spec.volumes[0].persistentVolumeClaim.claimName',
    message: 'Required value',
  },
  {
    name: 'claimName is a DNS subdomain',
    object: vm((s) => (s.volumes[0] = { name: 'root', persistentVolumeClaim: { claimName: 'Root_Disk' } })),
    field: 'spec.volumes[0].persistentVolumeClaim.claimName',
    message: 'should match',
  },
  {
    name: 'dataVolume volumeName required',
    object: vm((s) => (s.volumes[0] = { name: 'root', dataVolume: {} })),
    field: 'spec.volumes[0].dataVolume.volumeName',
    message: 'Required value',
  },
  {
    name: 'fileSystem needs a PVC or dataVolume',
    object: vm(
      (s) => (
        (s.instance.fileSystems = [{ name: 'share' }]),
        s.volumes.push({ name: 'share', containerDisk: { image: 'example.com/disk:1' } })
      ),
    ),
    field: 'spec.instance.fileSystems',
    message: 'each fileSystem needs a persistentVolumeClaim or dataVolume',
  },
  {
    name: 'disk and fileSystem names differ',
    object: vm(
      (s) => (
        (s.instance.fileSystems = [{ name: 'share' }]),
        s.instance.disks.push({ name: 'share', readOnly: false }),
        s.volumes.push({ name: 'share', persistentVolumeClaim: { claimName: 'share', hotpluggable: false } })
      ),
    ),
    field: 'spec.instance.fileSystems',
    message: 'disk and fileSystem names must differ',
  },
  {
    name: 'at most 32 disks',
    object: vm((s) => (s.instance.disks = Array.from({ length: 33 }, (_, i) => ({ name: `d${i}`, readOnly: false })))),
    field: 'spec.instance.disks',
    message: 'must have at most 32 items',
  },
  // --- cloud-init
  {
    name: 'one user-data source',
    object: vm((s) => (s.volumes[1].cloudInit.userDataSecretName = 'web-userdata')),
    field: 'spec.volumes[1].cloudInit',
    message: 'at most one of userData, userDataBase64, userDataSecretName',
  },
  {
    name: 'one network-data source',
    object: vm((s) => (s.volumes[1].cloudInit = { networkData: 'version: 2', networkDataBase64: 'dmVyc2lvbjogMg==' })),
    field: 'spec.volumes[1].cloudInit',
    message: 'at most one of networkData, networkDataBase64, networkDataSecretName',
  },
  {
    name: 'user-data base64 valid',
    object: vm((s) => (s.volumes[1].cloudInit = { userDataBase64: 'not base64!' })),
    field: 'spec.volumes[1].cloudInit.userDataBase64',
    message: 'must be of type byte',
  },
  {
    name: 'user-data Secret name valid',
    object: vm((s) => (s.volumes[1].cloudInit = { userDataSecretName: 'Web Secret' })),
    field: 'spec.volumes[1].cloudInit.userDataSecretName',
    message: 'should match',
  },
  {
    name: 'at most one cloudInit volume',
    object: vm(
      (s) => (
        s.instance.disks.push({ name: 'ci2', readOnly: false }),
        s.volumes.push({ name: 'ci2', cloudInit: { userData: '#cloud-config\n' } })
      ),
    ),
    field: 'spec.volumes',
    message: 'at most one cloudInit volume',
  },
  // --- interfaces and networks
  {
    name: 'interface needs a network',
    object: vm((s) => s.instance.interfaces.push({ name: 'lan', mac: '52:54:00:00:00:02' })),
    field: 'spec.instance.interfaces',
    message: 'every interface needs a network of the same name',
  },
  {
    name: 'network must be used',
    object: vm((s) => s.networks.push({ name: 'lan', multus: { networkName: 'br-lan' } })),
    field: 'spec.networks',
    message: 'every network must be used',
  },
  {
    name: 'interface names unique',
    object: vm((s) => s.instance.interfaces.push({ name: 'pod', mac: '52:54:00:00:00:09' })),
    field: 'spec.instance.interfaces[1]',
    message: 'Duplicate value',
  },
  {
    name: 'network names unique',
    object: vm((s) => s.networks.push({ name: 'pod', pod: {} })),
    field: 'spec.networks[1]',
    message: 'Duplicate value',
  },
  {
    name: 'one binding per interface',
    object: vm((s) => (s.instance.interfaces[0].bridge = {})),
    field: 'spec.instance.interfaces[0]',
    message: 'set at most one binding',
  },
  {
    name: 'mac format',
    object: vm((s) => (s.instance.interfaces[0].mac = '52:54:00:zz:00:01')),
    field: 'spec.instance.interfaces[0].mac',
    message: 'mac must look like',
  },
  {
    name: 'mac unicast',
    object: vm((s) => (s.instance.interfaces[0].mac = '53:54:00:00:00:01')),
    field: 'spec.instance.interfaces[0].mac',
    message: 'unicast',
  },
  {
    name: 'macs unique',
    object: multusVm({ bridge: {} }, (s) => (s.instance.interfaces[1].mac = s.instance.interfaces[0].mac)),
    field: 'spec.instance.interfaces',
    message: 'each interface needs its own mac',
  },
  {
    name: 'masquerade cidr is a CIDR',
    object: vm((s) => (s.instance.interfaces[0].masquerade.cidr = '10.0.2.0')),
    field: 'spec.instance.interfaces[0].masquerade.cidr',
    message: 'cidr must be an IPv4 CIDR',
  },
  {
    name: 'masquerade cidr is IPv4',
    object: vm((s) => (s.instance.interfaces[0].masquerade.cidr = 'fd00::/64')),
    field: 'spec.instance.interfaces[0].masquerade.cidr',
    message: 'cidr must be IPv4',
  },
  {
    name: 'masquerade cidr holds 4 addresses',
    object: vm((s) => (s.instance.interfaces[0].masquerade.cidr = '10.0.2.0/31')),
    field: 'spec.instance.interfaces[0].masquerade.cidr',
    message: 'at least 4 addresses',
  },
  {
    name: 'masquerade port range',
    object: vm((s) => (s.instance.interfaces[0].masquerade.ports = [{ port: 70000, protocol: 'TCP' }])),
    field: 'spec.instance.interfaces[0].masquerade.ports[0].port',
    message: 'less than or equal to 65535',
  },
  {
    name: 'masquerade port protocol enum',
    object: vm((s) => (s.instance.interfaces[0].masquerade.ports = [{ port: 80, protocol: 'HTTP' }])),
    field: 'spec.instance.interfaces[0].masquerade.ports[0].protocol',
    message: 'supported values: "TCP", "UDP", "SCTP"',
  },
  {
    name: 'masquerade ports unique',
    object: vm(
      (s) =>
        (s.instance.interfaces[0].masquerade.ports = [
          { port: 80, protocol: 'TCP' },
          { port: 80, protocol: 'TCP' },
        ]),
    ),
    field: 'spec.instance.interfaces[0].masquerade.ports[1]',
    message: 'Duplicate value',
  },
  {
    name: 'masquerade only on the pod network',
    object: multusVm({ masquerade: { cidr: '10.0.3.0/30' } }),
    field: 'spec.instance.interfaces',
    message: 'masquerade works only on the pod network',
  },
  {
    name: 'sriov needs a multus network',
    object: vm((s) => (s.instance.interfaces[0] = { name: 'pod', mac: '52:54:00:00:00:01', sriov: {} })),
    field: 'spec.instance.interfaces',
    message: 'need a multus network',
  },
  {
    name: 'vdpa numQueues at least 1',
    object: multusVm({ vdpa: { numQueues: 0, iommu: false } }),
    field: 'spec.instance.interfaces[1].vdpa.numQueues',
    message: 'greater than or equal to 1',
  },
  {
    name: 'vhostUser needs dedicated CPUs',
    object: multusVm({ vhostUser: {} }, (s) => (s.instance.memory.hugepages = { pageSize: '2Mi' })),
    field: 'spec.instance.interfaces',
    message: 'vhostUser needs cpu.dedicatedCPUPlacement',
  },
  {
    name: 'vhostUser needs hugepages',
    object: multusVm({ vhostUser: {} }, (s) => (s.instance.cpu.dedicatedCPUPlacement = true)),
    field: 'spec.instance.interfaces',
    message: 'vhostUser needs memory.hugepages',
  },
  {
    name: 'network needs pod or multus',
    object: vm((s) => (s.networks[0] = { name: 'pod' })),
    field: 'spec.networks[0]',
    message: 'set pod or multus',
  },
  {
    name: 'network is pod or multus, not both',
    object: vm((s) => (s.networks[0].multus = { networkName: 'br-lan' })),
    field: 'spec.networks[0]',
    message: 'set only one of pod or multus',
  },
  {
    name: 'at most one pod network',
    object: vm(
      (s) => (
        s.instance.interfaces.push({ name: 'pod2', mac: '52:54:00:00:00:03', bridge: {} }),
        s.networks.push({ name: 'pod2', pod: {} })
      ),
    ),
    field: 'spec.networks',
    message: 'at most one pod network',
  },
  {
    name: 'multus networkName required',
    object: multusVm({ bridge: {} }, (s) => (s.networks[1].multus = {})),
    field: 'spec.networks[1].multus.networkName',
    message: 'Required value',
  },
  {
    name: 'multus networkName format',
    object: multusVm({ bridge: {} }, (s) => (s.networks[1].multus.networkName = 'a/b/c')),
    field: 'spec.networks[1].multus.networkName',
    message: 'should match',
  },
  // --- probes and scheduling
  {
    name: 'probes need the pod network',
    object: multusVm(
      { bridge: {} },
      (s) => (
        (s.instance.interfaces = [s.instance.interfaces[1]]),
        (s.networks = [s.networks[1]]),
        (s.readinessProbe = { tcpSocket: { port: 22 } })
      ),
    ),
    field: 'spec',
    message: 'probes reach the guest through the pod network',
  },
  {
    name: 'exec probe refused',
    object: vm((s) => (s.livenessProbe = { exec: { command: ['cat', '/var/run/kubevisor-secrets/vm/vm.json'] } })),
    field: 'spec.livenessProbe.exec',
    message: 'Forbidden: exec probes are not allowed',
  },
  {
    name: 'grpc probe refused',
    object: vm((s) => (s.readinessProbe = { grpc: { port: 9090 } })),
    field: 'spec.readinessProbe.grpc',
    message: 'Forbidden: grpc probes are not supported',
  },
  {
    name: 'httpGet probe host refused',
    object: vm((s) => (s.readinessProbe = { httpGet: { port: 80, host: '169.254.169.254' } })),
    field: 'spec.readinessProbe.httpGet.host',
    message: 'Forbidden: host is not allowed',
  },
  {
    name: 'tcpSocket probe host refused',
    object: vm((s) => (s.livenessProbe = { tcpSocket: { port: 6443, host: 'kubernetes.default' } })),
    field: 'spec.livenessProbe.tcpSocket.host',
    message: 'Forbidden: host is not allowed',
  },
  {
    name: 'probe needs httpGet or tcpSocket',
    object: vm((s) => (s.readinessProbe = { periodSeconds: 5 })),
    field: 'spec.readinessProbe',
    message: 'set exactly one of httpGet or tcpSocket',
  },
  {
    name: 'probe port in range',
    object: vm((s) => (s.readinessProbe = { tcpSocket: { port: 0 } })),
    field: 'spec.readinessProbe.tcpSocket.port',
    message: 'should be greater than or equal to 1',
  },
  {
    name: 'probe port name format',
    object: vm((s) => (s.readinessProbe = { httpGet: { port: '8080' } })),
    field: 'spec.readinessProbe.httpGet.port',
    message: 'should match',
  },
  {
    name: 'named tcpSocket probe port refused',
    object: vm((s) => (s.readinessProbe = { tcpSocket: { port: 'ssh' } })),
    field: 'spec.readinessProbe.tcpSocket.port',
    message: 'port must be a number: the VM pod declares no named ports',
  },
  {
    name: 'named httpGet probe port refused',
    object: vm(
      (s) => (
        (s.instance.interfaces[0].masquerade.ports = [{ port: 80, protocol: 'TCP' }]),
        (s.livenessProbe = { httpGet: { port: 'http', path: '/' } })
      ),
    ),
    field: 'spec.livenessProbe.httpGet.port',
    message: 'port must be a number: the VM pod declares no named ports',
  },
  {
    name: 'masquerade probe port must be listed (no ports)',
    object: vm((s) => (s.readinessProbe = { tcpSocket: { port: 22 } })),
    field: 'spec.readinessProbe.tcpSocket.port',
    message: 'with masquerade only the listed ports reach the guest',
  },
  {
    name: 'masquerade probe port must be listed (other port)',
    object: vm(
      (s) => (
        (s.instance.interfaces[0].masquerade.ports = [{ port: 80, protocol: 'TCP' }]),
        (s.livenessProbe = { httpGet: { port: 8080, path: '/healthz' } })
      ),
    ),
    field: 'spec.livenessProbe.httpGet.port',
    message: 'with masquerade only the listed ports reach the guest',
  },
  {
    name: 'masquerade probe port must be listed as TCP',
    object: vm(
      (s) => (
        (s.instance.interfaces[0].masquerade.ports = [{ port: 53, protocol: 'UDP' }]),
        (s.readinessProbe = { httpGet: { port: 53 } })
      ),
    ),
    field: 'spec.readinessProbe.httpGet.port',
    message: 'with masquerade only the listed ports reach the guest',
  },
  {
    name: 'liveness probe successThreshold is 1',
    object: vm((s) => (s.livenessProbe = { tcpSocket: { port: 22 }, successThreshold: 2 })),
    field: 'spec.livenessProbe.successThreshold',
    message: 'successThreshold must be 1 for a liveness probe',
  },
  {
    name: 'probe fields are known',
    object: vm((s) => (s.readinessProbe = { tcpSocket: { port: 22 }, terminationGracePeriodSeconds: 1 })),
    field: 'spec.readinessProbe.terminationGracePeriodSeconds',
    message: 'unknown field',
  },
  {
    name: 'toleration of every taint refused',
    object: vm((s) => (s.tolerations = [{ operator: 'Exists' }])),
    field: 'spec.tolerations[0].key',
    message: 'Required value: name the taint key: a toleration without a key tolerates every taint',
  },
  {
    name: 'nodeSelector kubevisor.io/kvm must be true',
    object: vm((s) => (s.nodeSelector = { 'kubevisor.io/kvm': 'false' })),
    field: 'spec.nodeSelector',
    message: 'kubevisor.io/kvm must be "true"',
  },
  {
    name: 'toleration operator enum',
    object: vm((s) => (s.tolerations = [{ key: 'a', operator: 'In' }])),
    field: 'spec.tolerations[0].operator',
    message: 'supported values: "Exists", "Equal"',
  },
  {
    name: 'toleration Exists has no value',
    object: vm((s) => (s.tolerations = [{ key: 'a', operator: 'Exists', value: 'b' }])),
    field: 'spec.tolerations[0].value',
    message: 'value must be empty when operator is Exists',
  },
  {
    name: 'tolerationSeconds only with NoExecute',
    object: vm((s) => (s.tolerations = [{ key: 'a', effect: 'NoSchedule', tolerationSeconds: 30 }])),
    field: 'spec.tolerations[0].tolerationSeconds',
    message: "applies only to effect 'NoExecute'",
  },
  {
    name: 'toleration effect enum',
    object: vm((s) => (s.tolerations = [{ key: 'a', effect: 'Never' }])),
    field: 'spec.tolerations[0].effect',
    message: 'supported values: "NoSchedule"',
  },
  {
    name: 'nodeSelector values are strings',
    object: vm((s) => (s.nodeSelector = { zone: 1 })),
    field: 'spec.nodeSelector.zone',
    message: 'must be of type string',
  },
  {
    name: 'affinity is an object',
    object: vm((s) => (s.affinity = 'anywhere')),
    field: 'spec.affinity',
    message: 'must be of type object',
  },
  // --- immutability (updates)
  {
    name: 'cpu and memory immutable',
    ...update(
      () => {},
      (s) => (s.instance.cpu.sockets = 2),
    ),
    field: 'spec.instance',
    message: 'cpu and memory are immutable',
  },
  {
    name: 'kernel immutable',
    ...update(
      (s) => (s.instance.kernel = { image: 'k:1', cmdline: 'root=/dev/vda' }),
      (s) => (s.instance.kernel.cmdline = 'root=/dev/vdb'),
    ),
    field: 'spec.instance.kernel',
    message: 'kernel is immutable',
  },
  {
    name: 'interfaces immutable',
    ...update(
      () => {},
      (s) => (s.instance.interfaces[0].mac = '52:54:00:00:00:aa'),
    ),
    field: 'spec.instance.interfaces',
    message: 'interfaces are immutable',
  },
  {
    name: 'networks immutable',
    before: multusVm({ bridge: {} }),
    object: multusVm({ bridge: {} }, (s) => (s.networks[1].multus.networkName = 'br-wan')),
    field: 'spec.networks',
    message: 'networks are immutable',
  },
  {
    name: 'existing volume cannot change',
    ...update(
      () => {},
      (s) => (s.volumes[0].containerDisk.image = 'example.com/disk:2'),
    ),
    field: 'spec.volumes',
    message: 'an existing volume cannot be changed',
  },
  {
    name: 'only hotpluggable volumes removed',
    ...update(
      (s) => (
        s.instance.disks.push({ name: 'data', readOnly: false }),
        s.volumes.push({ name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: false } })
      ),
      (s) => ((s.instance.disks = s.instance.disks.slice(0, 2)), (s.volumes = s.volumes.slice(0, 2))),
    ),
    field: 'spec.volumes',
    message: 'only hotpluggable persistentVolumeClaim or dataVolume volumes can be removed',
  },
  {
    name: 'only hotpluggable volumes added',
    ...update(
      () => {},
      (s) => (
        s.instance.disks.push({ name: 'data', readOnly: false }),
        s.volumes.push({ ...hotplugPvc, persistentVolumeClaim: { claimName: 'data', hotpluggable: false } })
      ),
    ),
    field: 'spec.volumes',
    message: 'only hotpluggable persistentVolumeClaim or dataVolume volumes can be added',
  },
  // --- VirtualMachineMigration
  {
    name: 'migration vmName required',
    object: migration({ timeoutSeconds: 600 }),
    field: 'spec.vmName',
    message: 'Required value',
  },
  {
    name: 'migration vmName is a DNS label',
    object: migration({ vmName: 'Web', timeoutSeconds: 600 }),
    field: 'spec.vmName',
    message: 'should match',
  },
  {
    name: 'migration timeout at least 1 s',
    object: migration({ vmName: 'bad', timeoutSeconds: 0 }),
    field: 'spec.timeoutSeconds',
    message: 'greater than or equal to 1',
  },
  {
    name: 'migration spec immutable',
    before: migration({ vmName: 'bad', timeoutSeconds: 600 }),
    object: migration({ vmName: 'other', timeoutSeconds: 600 }),
    field: 'spec',
    message: 'spec is immutable',
  },
  // --- Cluster API infrastructure kinds (nested clusters)
  {
    name: 'cluster endpoint needs host and port',
    object: kvCluster({ controlPlaneEndpoint: { host: 'api.tenant.example' } }),
    field: 'spec.controlPlaneEndpoint.port',
    message: 'Required value',
  },
  {
    name: 'cluster endpoint port range',
    object: kvCluster({ controlPlaneEndpoint: { host: 'api.tenant.example', port: 70000 } }),
    field: 'spec.controlPlaneEndpoint.port',
    message: 'should be less than or equal to 65535',
  },
  {
    name: 'cluster endpoint fixed once set',
    before: kvCluster({ controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 } }),
    object: kvCluster({ controlPlaneEndpoint: { host: '10.96.0.11', port: 6443 } }),
    field: 'spec.controlPlaneEndpoint',
    message: 'controlPlaneEndpoint cannot change once set',
  },
  {
    name: 'cluster service type enum',
    object: kvCluster({ controlPlaneService: { type: 'NodePort' } }),
    field: 'spec.controlPlaneService.type',
    message: 'supported values: "ClusterIP", "LoadBalancer"',
  },
  {
    name: 'loadBalancerClass only with LoadBalancer',
    object: kvCluster({ controlPlaneService: { type: 'ClusterIP', loadBalancerClass: 'metallb' } }),
    field: 'spec.controlPlaneService.loadBalancerClass',
    message: 'loadBalancerClass applies only to type LoadBalancer',
  },
  {
    name: 'cluster service keeps no annotations (tenants choose no load balancer IP claims)',
    object: kvCluster({ controlPlaneService: { type: 'ClusterIP', annotations: { 'metallb.universe.tf/ip': '1' } } }),
    field: 'spec.controlPlaneService.annotations',
    message: 'unknown field',
  },
  {
    name: 'cluster service fixed once the endpoint is set',
    before: kvCluster({ controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 } }),
    object: kvCluster({
      controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 },
      controlPlaneService: { type: 'LoadBalancer' },
    }),
    field: 'spec.controlPlaneService',
    message: 'controlPlaneService cannot change once controlPlaneEndpoint is set',
  },
  {
    name: 'cluster endpoint host has no whitespace or slash',
    object: kvCluster({ controlPlaneEndpoint: { host: 'https://api.tenant.example', port: 6443 } }),
    field: 'spec.controlPlaneEndpoint.host',
    message: 'should match',
  },
  {
    name: 'cluster loadBalancerClass not empty',
    object: kvCluster({ controlPlaneService: { type: 'LoadBalancer', loadBalancerClass: '' } }),
    field: 'spec.controlPlaneService.loadBalancerClass',
    message: 'should be at least 1 chars long',
  },
  {
    name: 'machine VM label keys are label keys',
    object: kvMachine(() => {}, {}, { labels: { 'team name': 'a' } }),
    field: 'spec.virtualMachine.metadata.labels',
    message: 'label keys must be label keys',
  },
  {
    name: 'machine VM label key prefix at most 253',
    object: kvMachine(() => {}, {}, { labels: { [`${'a'.repeat(254)}/team`]: 'a' } }),
    field: 'spec.virtualMachine.metadata.labels',
    message: 'label keys must be label keys',
  },
  {
    name: 'machine VM label values are label values',
    object: kvMachine(() => {}, {}, { labels: { team: 'a b' } }),
    field: 'spec.virtualMachine.metadata.labels.team',
    message: 'should match',
  },
  {
    name: 'machine template annotation keys are label keys',
    object: kvTemplate(() => {}, { annotations: { '-note': 'x' } }),
    field: 'spec.template.spec.virtualMachine.metadata.annotations',
    message: 'annotation keys must be label keys',
  },
  {
    name: 'machine name must be a DNS label',
    object: { ...kvMachine(), metadata: { name: 'md.0' } },
    field: '',
    message: 'must be a DNS label',
  },
  {
    name: 'machine needs a virtualMachine',
    object: { ...kvMachine(), spec: {} },
    field: 'spec.virtualMachine',
    message: 'Required value',
  },
  {
    name: 'machine VM brings no cloud-init',
    object: kvMachine((s) => {
      s.instance.disks.push({ name: 'ci' });
      s.volumes.push({ name: 'ci', cloudInit: { userData: '#cloud-config\n' } });
    }),
    field: 'spec.virtualMachine.spec.volumes',
    message: 'the provider adds the cloud-init volume',
  },
  {
    name: 'machine VM leaves the bootstrap name alone',
    object: kvMachine((s) => {
      s.instance.disks.push({ name: 'cluster-api-bootstrap' });
      s.volumes.push({ name: 'cluster-api-bootstrap', containerDisk: { image: 'example.com/disk:1' } });
    }),
    field: 'spec.virtualMachine.spec',
    message: "the name cluster-api-bootstrap is the provider's",
  },
  {
    name: 'machine runPolicy Always or Once',
    object: kvMachine((s) => (s.runPolicy = 'Manual')),
    field: 'spec.virtualMachine.spec.runPolicy',
    message: 'a machine runs with runPolicy Always',
  },
  {
    name: 'machine VM rules apply inside the machine',
    object: kvMachine((s) => (s.instance.memory.size = '2GB')),
    field: 'spec.virtualMachine.spec.instance.memory.size',
    message: 'should match',
  },
  {
    name: 'machine providerID fixed once set',
    before: kvMachine(() => {}, { providerID: 'kubevisor://5f1c0b5e-0000-4000-8000-000000000001' }),
    object: kvMachine(() => {}, { providerID: 'kubevisor://5f1c0b5e-0000-4000-8000-000000000002' }),
    field: 'spec.providerID',
    message: 'providerID cannot change once set',
  },
  {
    name: 'machine VM immutable',
    before: kvMachine(),
    object: kvMachine((s) => (s.instance.memory.size = '2Gi')),
    field: 'spec.virtualMachine',
    message: 'virtualMachine is immutable',
  },
  {
    name: 'machine template immutable',
    before: kvTemplate(),
    object: kvTemplate((s) => (s.instance.cpu.coresPerSocket = 4)),
    field: 'spec',
    message: 'a machine template is immutable',
  },
  {
    name: 'machine template VM rules apply',
    object: kvTemplate((s) => s.volumes.push({ name: 'ci', cloudInit: {} })),
    field: 'spec.template.spec.virtualMachine.spec.volumes',
    message: 'the provider adds the cloud-init volume',
  },
];

/** Valid objects that both enforcement points must accept, including a hotplug update that the rules allow. */
export const VALID_UPDATES: readonly { name: string; before: KubevisorObject; object: KubevisorObject }[] = [
  {
    name: 'provider sets the cluster endpoint',
    before: kvCluster({}),
    object: kvCluster({ controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 } }),
  },
  {
    name: 'machine VM labels and annotations of valid syntax',
    before: kvMachine(
      () => {},
      {},
      { labels: { 'example.com/team': 'a-b.c', empty: '' }, annotations: { note: ' x ' } },
    ),
    object: kvMachine(
      () => {},
      {},
      { labels: { 'example.com/team': 'a-b.c', empty: '' }, annotations: { note: ' x ' } },
    ),
  },
  {
    name: 'provider sets a machine providerID',
    before: kvMachine(),
    object: kvMachine(() => {}, { providerID: 'kubevisor://5f1c0b5e-0000-4000-8000-000000000001' }),
  },
  {
    name: 'hotpluggable PVC added and runPolicy changed',
    ...update(
      () => {},
      (s) => (
        (s.runPolicy = 'Always'),
        s.instance.disks.push({ name: 'data', readOnly: false }),
        s.volumes.push(hotplugPvc)
      ),
    ),
  },
  {
    name: 'probe added on a forwarded masquerade port',
    ...update(
      (s) => (s.instance.interfaces[0].masquerade.ports = [{ port: 22, protocol: 'TCP' }]),
      (s) => (s.readinessProbe = { tcpSocket: { port: 22 }, periodSeconds: 5 }),
    ),
  },
  {
    name: 'paused and restart requested',
    ...update(
      () => {},
      (s) => ((s.power.paused = true), (s.power.restartRequest = 'r1')),
    ),
  },
];
