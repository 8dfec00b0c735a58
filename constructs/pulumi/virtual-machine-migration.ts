/** The Pulumi VirtualMachineMigration component. */
import * as pulumi from '@pulumi/pulumi';
import { CustomResource } from '@pulumi/kubernetes/apiextensions';
import type { VirtualMachineMigrationStatus } from '../../api';
import { API_VERSION, MIGRATION_IMMUTABLE_FIELDS } from '../../api';
import type { VirtualMachineMigrationProps } from '../virtual-machine-migration';
import { renderVirtualMachineMigration } from '../virtual-machine-migration';
import type { DeepInputs } from './inputs';
import { assertKnownArgsValid, renderedObject } from './inputs';

/**
 * Arguments of the VirtualMachineMigration component: the cdk8s construct's props, each value also accepted as a
 * `pulumi.Input` (e.g. `vmName: vm.vmName`).
 */
export type VirtualMachineMigrationArgs = DeepInputs<VirtualMachineMigrationProps>;

/**
 * A live migration of one VirtualMachine, registered as one child CustomResource `${name}`; checked like
 * {@link VirtualMachine}. Its spec is immutable, so a changed arg replaces it (a new migration).
 */
export class VirtualMachineMigration extends pulumi.ComponentResource {
  /** The migration's Kubernetes name. */
  public readonly migrationName: pulumi.Output<string>;
  /** Migration phase as of the last `up` or `refresh`. */
  public readonly phase: pulumi.Output<string | undefined>;
  /** The migration's CustomResource. */
  public readonly resource: CustomResource;

  constructor(name: string, args: VirtualMachineMigrationArgs, opts?: pulumi.ComponentResourceOptions) {
    assertKnownArgsValid(name, args, renderVirtualMachineMigration);
    super('kubevisor:index:VirtualMachineMigration', name, args, opts);
    const object = renderedObject(name, args, renderVirtualMachineMigration, this);
    this.resource = new CustomResource(
      name,
      {
        apiVersion: API_VERSION,
        kind: 'VirtualMachineMigration',
        metadata: object.metadata,
        spec: object.apply((o) => o.spec),
        status: undefined,
      },
      { parent: this, replaceOnChanges: [...MIGRATION_IMMUTABLE_FIELDS], deleteBeforeReplace: true },
    );
    const status = (this.resource as unknown as { status: pulumi.Output<VirtualMachineMigrationStatus | undefined> })
      .status;
    this.migrationName = this.resource.metadata.name;
    this.phase = status.apply((s) => s?.phase);
    this.registerOutputs({ migrationName: this.migrationName, phase: this.phase });
  }
}
