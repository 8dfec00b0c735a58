/** kubevisor components for Pulumi. */
export * from './virtual-machine';
export * from './virtual-machine-migration';
export { Bindings, NetworkSources, VolumeSources, stableMac } from '../virtual-machine';
export type { VirtualMachineProps, VolumeSource, NetworkSource, InterfaceBinding } from '../virtual-machine';
// The nested props' named types, for helpers that build them (the platform's own `Toleration` differs).
export type { Affinity, ResourceRequirements, Toleration as VmToleration, VmProbe } from '../../api';
export { KubevisorValidationError, assertValid } from '../validation';
export * from './platform';
export type { ClusterApiProps, ContainerResources, ControllerProps, DaemonProps, Toleration } from '../platform/props';
export { RUN_LABEL, VM_LABEL, vmPodSelector } from '../vm-pod-labels';
export type { DeepInput, DeepInputs } from './inputs';
export type { AddDiskOptions, CloudInitOptions } from '../virtual-machine';
export * from './nested-cluster';
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
