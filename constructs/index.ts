/** Renderers shared by the cdk8s constructs, the Pulumi components and the operator. */
export * from './metadata';
export * from './virtual-machine';
export * from './virtual-machine-migration';
export * from './validation';
export { renderNestedCluster } from './nested-cluster';
export type { NestedClusterObject } from './nested-cluster';
export * from './nested-cluster-props';
export { CAPI_LABELS, MAX_CLUSTER_NAME, MAX_CLUSTER_AND_POOL_NAME, derivedNames } from './nested-cluster-names';
export { nestedClusterPropsProblems } from './nested-cluster-validation';
