/** The Pulumi VirtualMachineMigration component. */
import * as pulumi from '@pulumi/pulumi';
import { CustomResource } from '@pulumi/kubernetes/apiextensions';
import type { VirtualMachineMigrationProps } from '../virtual-machine-migration';
import { renderVirtualMachineMigration } from '../virtual-machine-migration';
import { assertValid } from '../validation';

/** Arguments of the VirtualMachineMigration component: the same props as the cdk8s construct. */
export type VirtualMachineMigrationArgs = VirtualMachineMigrationProps;

/** A live migration of one VirtualMachine, registered as one child CustomResource `${name}`. */
export class VirtualMachineMigration extends pulumi.ComponentResource {
  /** The migration's Kubernetes name. */
  public readonly migrationName: pulumi.Output<string>;
  /** The migration's CustomResource. */
  public readonly resource: CustomResource;

  constructor(name: string, args: VirtualMachineMigrationArgs, opts?: pulumi.ComponentResourceOptions) {
    const object = renderVirtualMachineMigration(name, args);
    assertValid([{ path: name, object }]);
    super('kubevisor:index:VirtualMachineMigration', name, {}, opts);
    this.resource = new CustomResource(name, object, { parent: this });
    this.migrationName = this.resource.metadata.name;
    this.registerOutputs({ migrationName: this.migrationName });
  }
}
