/** The cdk8s NestedCluster construct: a thin frontend over {@link renderNestedCluster}. */
import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { NestedClusterProps } from '../nested-cluster-props';
import { isKubevisorObject, renderNestedCluster } from '../nested-cluster';
import { nestedClusterNames } from '../nested-cluster-names';
import { ValidatedApiObject } from './validated-api-object';

/**
 * A nested Kubernetes cluster whose nodes are kubevisor VMs: the Cluster API (v1beta2) objects of one cluster — the
 * Cluster, its KubevisorCluster, a KubeadmControlPlane, a MachineDeployment per worker pool, their machine and
 * bootstrap templates (named after a hash of their content, so a change of size, image or version rolls the
 * machines), MachineHealthChecks and the CNI's ClusterResourceSet. Cluster API (core, kubeadm bootstrap and control
 * plane) and the kubevisor infrastructure provider must run in the management cluster.
 *
 * Every prop is checked when the construct is created (one `KubevisorValidationError` listing every problem with its
 * prop path); the kubevisor objects are also checked as written (after JSON patches and chart labels), as the API
 * server checks them. Each object is an ApiObject child with id `<Kind>-<name>`: `ApiObject.of()` on
 * {@link apiObjects} entries for JSON-patch escape hatches.
 *
 * @see https://cluster-api.sigs.k8s.io/
 */
export class NestedCluster extends Construct {
  /** The cluster's name (the Cluster API Cluster). */
  public readonly clusterName: string;
  /** Secret Cluster API writes the nested cluster's admin kubeconfig to (key `value`) once its control plane is up. */
  public readonly kubeconfigSecretName: string;
  /** The objects, in the order they are rendered. */
  public readonly apiObjects: readonly ApiObject[];

  constructor(scope: Construct, id: string, props: NestedClusterProps) {
    super(scope, id);
    this.clusterName = props.metadata?.name ?? id;
    this.kubeconfigSecretName = nestedClusterNames(this.clusterName).kubeconfigSecret;
    const objects = renderNestedCluster(this.clusterName, props, this.node.path);
    const validated: ValidatedApiObject[] = [];
    this.apiObjects = objects.map((o) => {
      const id = `${o.kind}-${o.metadata.name}`;
      if (!isKubevisorObject(o)) return new ApiObject(this, id, o);
      const object = new ValidatedApiObject(this, id, o);
      validated.push(object);
      return object;
    });
    // The kubevisor objects as written (JSON patches and chart labels included), as the API server checks them.
    this.node.addValidation({
      validate: () => validated.flatMap((o) => o.problems().map((p) => `${o.kind}/${o.name}: ${p}`)),
    });
  }
}
