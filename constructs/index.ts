/** Renderers shared by the cdk8s constructs, the Pulumi components and the operator. */
export * from './metadata';
export * from './virtual-machine';
export * from './virtual-machine-migration';
export * from './validation';
