/** The Pulumi VirtualMachine component: a thin frontend over {@link renderVirtualMachine}. */
import * as pulumi from '@pulumi/pulumi';
import { CustomResource } from '@pulumi/kubernetes/apiextensions';
import type { VirtualMachineProps } from '../virtual-machine';
import { renderVirtualMachine } from '../virtual-machine';
import { assertValid } from '../validation';

/**
 * Arguments of the VirtualMachine component: the same props as the cdk8s construct. Values must be known when
 * the program runs, because every rule is checked before anything is registered.
 */
export type VirtualMachineArgs = VirtualMachineProps;

/**
 * A Cloud Hypervisor virtual machine (`kubevisor.io/v1alpha1` VirtualMachine) as a Pulumi component.
 * Registers one child CustomResource `${name}` with exactly the object the cdk8s construct synthesizes.
 * Throws a `KubevisorValidationError` listing every error, before registering anything, when the args are invalid.
 */
export class VirtualMachine extends pulumi.ComponentResource {
  /** The VM's Kubernetes name. */
  public readonly vmName: pulumi.Output<string>;
  /** The VM's CustomResource. */
  public readonly resource: CustomResource;

  constructor(name: string, args: VirtualMachineArgs, opts?: pulumi.ComponentResourceOptions) {
    const object = renderVirtualMachine(name, args);
    assertValid([{ path: name, object }]);
    super('kubevisor:index:VirtualMachine', name, {}, opts);
    this.resource = new CustomResource(name, object, { parent: this });
    this.vmName = this.resource.metadata.name;
    this.registerOutputs({ vmName: this.vmName });
  }
}
