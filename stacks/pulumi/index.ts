/**
 * The example Pulumi program (`pulumi up` with Pulumi.yaml at the repository root): the platform and node setup,
 * then the example VMs, which depend on the platform (its CRDs). Every example is validated before any resource is
 * registered, so an invalid program deploys nothing.
 */
import { KubevisorPlatform, NodeSetup, VirtualMachine, assertValid } from '../../constructs/pulumi';
import { renderVirtualMachine } from '../../constructs';
import { EXAMPLES } from '../examples';

assertValid(
  Object.entries(EXAMPLES).map(([name, props]) => ({ path: name, object: renderVirtualMachine(name, props) })),
);

const platform = new KubevisorPlatform('kubevisor');
new NodeSetup('node-setup', {}, { dependsOn: platform });

export const namespace = platform.namespace;
export const vms = Object.entries(EXAMPLES).map(
  ([name, props]) => new VirtualMachine(name, props, { dependsOn: platform }).vmName,
);
