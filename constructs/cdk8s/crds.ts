/** The kubevisor CRDs as a cdk8s construct, for charts that install the API without the operator (or before it). */
import type { ApiObjectProps } from 'cdk8s';
import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { KINDS, customResourceDefinition } from '../../api';

/**
 * The CustomResourceDefinitions of every kubevisor kind (VirtualMachine, VirtualMachineMigration), exactly as
 * `deploy/crds/*.yaml` holds them. {@link KubevisorPlatform} includes them; use this construct alone to install the
 * API first (`vmsChart.addDependency(crdsChart)`), e.g. where the operator is installed another way.
 */
export class Crds extends Construct {
  /** One ApiObject per CRD, by plural (`virtualmachines`, `virtualmachinemigrations`). */
  public readonly objects: Readonly<Record<string, ApiObject>>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.objects = Object.fromEntries(
      KINDS.map((info) => [
        info.plural,
        new ApiObject(this, info.plural, customResourceDefinition(info) as ApiObjectProps),
      ]),
    );
  }
}
