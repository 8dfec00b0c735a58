/** kubevisor constructs for cdk8s. */
export * from './virtual-machine';
export * from './virtual-machine-migration';
export { Bindings, NetworkSources, VolumeSources, stableMac } from '../virtual-machine';
export type { VirtualMachineProps, VolumeSource, NetworkSource, InterfaceBinding } from '../virtual-machine';
export type { VirtualMachineMigrationProps } from '../virtual-machine-migration';
export { KubevisorValidationError } from '../validation';
