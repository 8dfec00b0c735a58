/** kubevisor constructs for cdk8s. */
export * from './virtual-machine';
export * from './virtual-machine-migration';
export { Bindings, NetworkSources, VolumeSources, stableMac } from '../virtual-machine';
export type { VirtualMachineProps, VolumeSource, NetworkSource, InterfaceBinding } from '../virtual-machine';
// The nested props' named types, for helpers that build them (the platform's own `Toleration` differs).
export type { Affinity, ResourceRequirements, Toleration as VmToleration, VmProbe } from '../../api';
export type { VirtualMachineMigrationProps } from '../virtual-machine-migration';
export { KubevisorValidationError } from '../validation';
export { KubevisorPlatform } from './platform';
export { NodeSetup } from './node-setup';
export type {
  ClusterApiProps,
  ContainerResources,
  ControllerProps,
  DaemonProps,
  KubevisorPlatformProps,
  NodeSetupProps,
  Toleration,
} from '../platform/props';
export { DEFAULT_IMAGE } from '../platform/props';
export { Crds } from './crds';
export { RUN_LABEL, VM_LABEL, vmPodSelector } from '../vm-pod-labels';
export { NestedCluster } from './nested-cluster';
export type {
  CniProps,
  ControlPlaneProps,
  EtcdProps,
  ExternalEtcdProps,
  HealthCheckProps,
  MachineSize,
  NestedClusterMetadata,
  NestedClusterProps,
  NestedEndpointProps,
  NestedNetworkProps,
  NodeImages,
  NodeImagesByVersion,
  WorkerPoolProps,
} from '../nested-cluster-props';
