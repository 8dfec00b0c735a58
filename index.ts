/**
 * kubevisor: Cloud Hypervisor virtual machines on Kubernetes, declared as code.
 *
 * The root entry point holds the API's types and constants, validation and the renderers; the frontends live in
 * `kubevisor/cdk8s` and `kubevisor/pulumi` so that each pulls in only its own framework. The schema builder the
 * contract is written with stays internal.
 */
export {
  API_VERSION,
  CPU_FEATURES_LABEL,
  CPU_MODEL_LABEL,
  CPU_VENDOR_LABEL,
  GROUP,
  KINDS,
  KUBEVISOR_VERSION,
  KVM_NODE_LABEL,
  LIMITS,
  NODE_SETUP_ANNOTATION,
  VERSION,
  customResourceDefinition,
  defaultObject,
  formatFieldError,
  kindInfo,
  validateObject,
} from './api';
export type {
  FieldError,
  KindInfo,
  KubevisorObject,
  MigrationPhase,
  RunPolicy,
  VirtualMachineMigrationSpec,
  VirtualMachineMigrationStatus,
  VirtualMachineSpec,
  VirtualMachineStatus,
  VmDisk,
  VmFileSystem,
  VmInstance,
  VmInterface,
  VmNetwork,
  VmPhase,
  VmProbe,
  VmVolume,
} from './api';
// The renderers and their props; not the helpers the frontends share (deviceParts, renderMetadata).
export {
  Bindings,
  KubevisorValidationError,
  NetworkSources,
  VolumeSources,
  assertValid,
  problemsOf,
  renderNestedCluster,
  renderVirtualMachine,
  renderVirtualMachineMigration,
  stableMac,
} from './constructs';
export type {
  AddDiskOptions,
  CloudInitOptions,
  CpuProps,
  Declared,
  InterfaceBinding,
  KernelProps,
  MemoryProps,
  NetworkSource,
  ObjectMetadata,
  PowerProps,
  VirtualMachineMigrationProps,
  VirtualMachineProps,
  VolumeSource,
  CniProps,
  ControlPlaneProps,
  EtcdProps,
  ExternalEtcdProps,
  HealthCheckProps,
  MachineSize,
  NestedClusterMetadata,
  NestedClusterObject,
  NestedClusterProps,
  NestedEndpointProps,
  NestedNetworkProps,
  NodeImages,
  NodeImagesByVersion,
  WorkerPoolProps,
} from './constructs';
export { RUN_LABEL, VM_LABEL, vmPodSelector } from './constructs/vm-pod-labels';
