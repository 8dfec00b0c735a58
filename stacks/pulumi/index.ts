/**
 * The example Pulumi program (`pulumi up` with Pulumi.yaml at the repository root). Every example is validated
 * before any resource is registered, so an invalid program deploys nothing.
 */
import { VirtualMachine, assertValid } from '../../constructs/pulumi';
import { renderVirtualMachine } from '../../constructs';
import { EXAMPLES } from '../examples';

assertValid(
  Object.entries(EXAMPLES).map(([name, props]) => ({ path: name, object: renderVirtualMachine(name, props) })),
);

export const vms = Object.entries(EXAMPLES).map(([name, props]) => new VirtualMachine(name, props).vmName);
