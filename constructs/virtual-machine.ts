/**
 * The VirtualMachine renderer: typed props in, one VirtualMachine object out. The cdk8s construct, the Pulumi
 * component and the operator all call {@link renderVirtualMachine}; nothing else knows the manifest's shape.
 */
import { createHash } from 'node:crypto';
import type {
  Affinity,
  InterfaceBinding,
  KubevisorObject,
  MasqueradeBinding,
  NetworkSource,
  ResourceRequirements,
  RunPolicy,
  Toleration,
  VdpaBinding,
  VirtualMachineSpec,
  VmCpu,
  VmDisk,
  VmFileSystem,
  VmInstance,
  VmInterface,
  VmKernel,
  VmMemory,
  VmNetwork,
  VmPower,
  VmProbe,
  VmVolume,
  VolumeSource,
} from '../api';
import { API_VERSION, defaultObject } from '../api';
import { clone } from '../api/clone';
import type { ObjectMetadata } from './metadata';
import { renderMetadata } from './metadata';

// Discriminated unions (api/generated/types.ts): a volume has exactly one source, a network is exactly one of pod or
// multus, an interface has at most one binding (none means bridge); `{}` or two at once fail in tsc, as the CRD's
// rules fail at synth.
export type { InterfaceBinding, NetworkSource, VolumeSource };
/** Guest CPU topology. */
export type CpuProps = VmCpu;
/** Guest memory. */
export type MemoryProps = VmMemory;
/** Direct kernel boot. */
export type KernelProps = VmKernel;
/** Declarative power control. */
export type PowerProps = VmPower;

/**
 * Properties of a VirtualMachine.
 *
 * @see https://github.com/kubevisor/kubevisor/blob/main/README.md
 */
export interface VirtualMachineProps {
  /**
   * Object metadata. VM names must be DNS labels (they become the guest hostname).
   *
   * @default - a DNS label derived from the construct path (cdk8s) or the resource name (Pulumi)
   */
  readonly metadata?: ObjectMetadata;
  /**
   * When the VM runs.
   *
   * @default 'Once'
   */
  readonly runPolicy?: RunPolicy;
  /**
   * Guest CPU topology.
   *
   * @default - 1 socket with 1 core, not pinned
   */
  readonly cpu?: CpuProps;
  /**
   * Guest memory.
   *
   * @default - 1Gi, no hugepages
   */
  readonly memory?: MemoryProps;
  /**
   * Boot this kernel directly (required for containerRootfs volumes).
   *
   * @default - firmware boot from the first bootable disk
   */
  readonly kernel?: KernelProps;
  /**
   * Disks, in boot order; each names a volume.
   *
   * @default []
   */
  readonly disks?: readonly VmDisk[];
  /**
   * virtio-fs shares; each names a persistentVolumeClaim or dataVolume volume.
   *
   * @default []
   */
  readonly fileSystems?: readonly VmFileSystem[];
  /**
   * Volumes backing the disks and fileSystems.
   *
   * @default []
   */
  readonly volumes?: readonly VmVolume[];
  /**
   * Guest network interfaces; each names a network. A missing `mac` is derived from the VM and interface names,
   * so it stays the same across synths.
   *
   * @default []
   */
  readonly interfaces?: readonly VmInterface[];
  /**
   * Networks the interfaces connect to.
   *
   * @default []
   */
  readonly networks?: readonly VmNetwork[];
  /**
   * Declarative power control: pause, restart requests, shutdown grace period.
   *
   * @default - running, not paused, 60 s shutdown grace period
   */
  readonly power?: PowerProps;
  /**
   * Extra resources for the VM pod, added to what kubevisor computes (guest memory and VMM overhead, hugepages,
   * devices, ephemeral storage for container disks); they never lower it, and limits never fall below requests.
   *
   * @default - none beyond what the guest needs
   */
  readonly resources?: ResourceRequirements;
  /**
   * Liveness probe of the VM pod: `httpGet` or `tcpSocket` (no `host`), reaching the guest over the pod network.
   * `exec` and `grpc` probes are refused.
   *
   * @default - none
   */
  readonly livenessProbe?: VmProbe;
  /**
   * Readiness probe of the VM pod: `httpGet` or `tcpSocket` (no `host`), reaching the guest over the pod network.
   * `exec` and `grpc` probes are refused.
   *
   * @default - none
   */
  readonly readinessProbe?: VmProbe;
  /**
   * Node labels the VM pod must match. Every VM pod also selects `kubevisor.io/kvm: "true"` (nodes the node setup
   * prepared); a different value for that key is refused.
   *
   * @default - any node prepared for VMs
   */
  readonly nodeSelector?: Record<string, string>;
  /**
   * Affinity of the VM pod (core/v1 Affinity: `nodeAffinity`, `podAffinity`, `podAntiAffinity`).
   *
   * @default - none
   */
  readonly affinity?: Affinity;
  /**
   * Tolerations of the VM pod. Each must name its taint `key`: tolerating every taint is refused.
   *
   * @default []
   */
  readonly tolerations?: readonly Toleration[];
}

/** Volume sources, named after the kinds they attach. */
export const VolumeSources = {
  /**
   * An ephemeral disk from a container image holding a qcow2 or raw image at /disk. The image is pulled `Always` unless
   * told otherwise (see the README on cached private images); `maxSize` (default 10Gi) bounds the node disk it uses.
   */
  containerDisk: (
    image: string,
    imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never',
    options: { maxSize?: string } = {},
  ): VolumeSource => ({
    containerDisk: { image, ...(imagePullPolicy ? { imagePullPolicy } : {}), ...options },
  }),
  /** An ext4 root disk of `size` built from a container image's filesystem (use with kernel boot). */
  containerRootfs: (image: string, size: string): VolumeSource => ({ containerRootfs: { image, size } }),
  /** A PersistentVolumeClaim in the VM's namespace. */
  persistentVolumeClaim: (claimName: string, options: { hotpluggable?: boolean } = {}): VolumeSource => ({
    persistentVolumeClaim: { claimName, ...options },
  }),
  /** A CDI DataVolume in the VM's namespace. */
  dataVolume: (volumeName: string, options: { hotpluggable?: boolean } = {}): VolumeSource => ({
    dataVolume: { volumeName, ...options },
  }),
} as const;

/** Network sources. */
export const NetworkSources = {
  /** The pod's primary network. */
  pod: (): NetworkSource => ({ pod: {} }),
  /** A Multus NetworkAttachmentDefinition, as `name` or `namespace/name`. */
  multus: (networkName: string): NetworkSource => ({ multus: { networkName } }),
} as const;

/** Interface bindings. */
export const Bindings = {
  /** The guest takes the pod interface's IP and MAC. */
  bridge: (): InterfaceBinding => ({ bridge: {} }),
  /** NAT behind the pod IP; list `ports` to forward only those. */
  masquerade: (options: MasqueradeBinding = {}): InterfaceBinding => ({ masquerade: options }),
  /** SR-IOV VF passthrough (Multus network). */
  sriov: (): InterfaceBinding => ({ sriov: {} }),
  /** vDPA device passthrough (Multus network). */
  vdpa: (options: VdpaBinding = {}): InterfaceBinding => ({ vdpa: options }),
  /** vhost-user socket from the CNI (needs dedicated CPUs and hugepages). */
  vhostUser: (): InterfaceBinding => ({ vhostUser: {} }),
} as const;

/**
 * A locally administered, unicast MAC in QEMU/CH's 52:54:00 range, derived from the VM and interface names so
 * that re-synthesizing never changes it (a changed MAC would make guests renumber their NICs).
 */
export function stableMac(vmName: string, interfaceName: string): string {
  const h = createHash('sha256').update(`${vmName}/${interfaceName}`).digest();
  return ['52', '54', '00', ...[h[0], h[1], h[2]].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Options of `addDisk` (both frontends). */
export interface AddDiskOptions {
  /**
   * Attach the disk read-only.
   *
   * @default false
   */
  readonly readOnly?: boolean;
}

/** cloud-init data for `addCloudInit` (both frontends); set at most one source per kind of data. */
export interface CloudInitOptions {
  /** user-data, inline. @default - none */
  readonly userData?: string;
  /** user-data, base64-encoded. @default - none */
  readonly userDataBase64?: string;
  /** Secret whose key `value` holds the user-data. @default - none */
  readonly userDataSecretName?: string;
  /** network-config, inline. @default - none */
  readonly networkData?: string;
  /** network-config, base64-encoded. @default - none */
  readonly networkDataBase64?: string;
  /** Secret whose key `value` holds the network-config. @default - none */
  readonly networkDataSecretName?: string;
}

/**
 * What `addDisk`, `addFileSystem`, `addCloudInit` and `addInterface` add, as pairs of entries named alike: a disk or
 * file system and its volume, an interface and its network. One definition for the cdk8s construct and the Pulumi
 * args builder. `S` is the source's type (plain, or with Pulumi Inputs inside).
 */
export const deviceParts = {
  disk: <S extends object>(name: string, source: S, options: AddDiskOptions = {}) => ({
    volume: { name, ...source },
    disk: { name, ...(options.readOnly !== undefined ? { readOnly: options.readOnly } : {}) },
  }),
  fileSystem: <S extends object>(name: string, source: S) => ({ volume: { name, ...source }, fileSystem: { name } }),
  cloudInit: <D>(data: D, name = 'cloudinit') => ({
    volume: { name, cloudInit: data },
    disk: { name },
  }),
  iface: <N extends object, B extends object>(name: string, network: N, binding: B, mac?: string) => ({
    network: { name, ...network },
    iface: { name, ...binding, ...(mac ? { mac } : {}) },
  }),
} as const;

const copy = <T>(v: readonly T[] | undefined): T[] | undefined => (v && v.length ? v.map((x) => clone(x)) : undefined);

/**
 * Renders the VirtualMachine object with the CRD's defaults applied, so the manifest shows exactly what the API
 * server will store. Pure: the same props always give the same object.
 */
export function renderVirtualMachine(name: string, props: VirtualMachineProps): KubevisorObject {
  const instance: VmInstance = {};
  if (props.cpu) instance.cpu = { ...props.cpu };
  if (props.memory) instance.memory = clone(props.memory);
  if (props.kernel) instance.kernel = { ...props.kernel };
  if (props.disks?.length) instance.disks = copy(props.disks);
  if (props.fileSystems?.length) instance.fileSystems = copy(props.fileSystems);
  if (props.interfaces?.length) {
    instance.interfaces = props.interfaces.map((i) => ({ ...clone(i), mac: i.mac ?? stableMac(name, i.name) }));
  }
  const spec: VirtualMachineSpec = { instance };
  if (props.runPolicy) spec.runPolicy = props.runPolicy;
  if (props.power) spec.power = { ...props.power };
  if (props.volumes?.length) spec.volumes = copy(props.volumes);
  if (props.networks?.length) spec.networks = copy(props.networks);
  if (props.resources) spec.resources = clone(props.resources);
  if (props.livenessProbe) spec.livenessProbe = clone(props.livenessProbe);
  if (props.readinessProbe) spec.readinessProbe = clone(props.readinessProbe);
  if (props.nodeSelector) spec.nodeSelector = { ...props.nodeSelector };
  if (props.affinity) spec.affinity = clone(props.affinity);
  if (props.tolerations?.length) spec.tolerations = copy(props.tolerations);
  return defaultObject({
    apiVersion: API_VERSION,
    kind: 'VirtualMachine',
    metadata: renderMetadata(name, props.metadata),
    spec,
  });
}
