/**
 * The Pulumi NestedCluster component: a thin frontend over {@link renderNestedCluster}, registering each object it
 * renders as a child (the ConfigMap as `kubernetes:core/v1:ConfigMap`, the Cluster API and kubevisor kinds as
 * CustomResources), so `pulumi up` applies exactly what the cdk8s construct synthesizes.
 */
import * as pulumi from '@pulumi/pulumi';
import { CustomResource } from '@pulumi/kubernetes/apiextensions';
import { ConfigMap } from '@pulumi/kubernetes/core/v1';
import type { NestedClusterObject } from '../nested-cluster';
import { renderNestedCluster } from '../nested-cluster';
import { nestedClusterNames } from '../nested-cluster-names';
import type { NestedClusterProps } from '../nested-cluster-props';
import { nodeImagesFor } from '../nested-cluster-props';

/**
 * Arguments of {@link NestedCluster}: the cdk8s construct's props, as plain values known when the program runs (the
 * graph is rendered at construction, so that preview shows every object and every template's hashed name).
 */
export type NestedClusterArgs = NestedClusterProps;

/**
 * A nested Kubernetes cluster whose nodes are kubevisor VMs, as a Pulumi component; see the cdk8s `NestedCluster` for
 * the objects. Throws a `KubevisorValidationError` listing every problem of the args before registering anything.
 * Children are named `<name>-<Kind>-<object name>`: a changed machine template has a new (hashed) name, so Pulumi
 * creates the new template before it deletes the old one, while Cluster API rolls the machines. Needs Cluster API
 * and the kubevisor infrastructure provider installed (make the component depend on them with `dependsOn`).
 */
export class NestedCluster extends pulumi.ComponentResource {
  /** The cluster's name (the Cluster API Cluster). */
  public readonly clusterName: string;
  /** Secret Cluster API writes the nested cluster's admin kubeconfig to (key `value`) once its control plane is up. */
  public readonly kubeconfigSecretName: string;
  /** The registered objects, in the order they are rendered. */
  public readonly resources: readonly (CustomResource | ConfigMap)[];

  constructor(name: string, args: NestedClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    const clusterName = args.metadata?.name ?? name;
    const objects = renderNestedCluster(clusterName, args, name);
    // The args as recorded in the state: plain data, so an images function is recorded as what it gave.
    const images = nodeImagesFor(args.images, args.kubernetesVersion)!;
    super('kubevisor:index:NestedCluster', name, { ...args, images: { [args.kubernetesVersion]: images } }, opts);
    this.clusterName = clusterName;
    this.kubeconfigSecretName = nestedClusterNames(clusterName).kubeconfigSecret;
    this.resources = objects.map((o) => register(this, `${name}-${o.kind}-${o.metadata.name}`, o));
    this.registerOutputs({ clusterName: this.clusterName, kubeconfigSecretName: this.kubeconfigSecretName });
  }
}

function register(parent: pulumi.ComponentResource, name: string, o: NestedClusterObject): CustomResource | ConfigMap {
  if (o.apiVersion === 'v1' && o.kind === 'ConfigMap') {
    return new ConfigMap(name, { metadata: o.metadata, data: o.data as Record<string, string> }, { parent });
  }
  const { apiVersion, kind, metadata, ...rest } = o;
  return new CustomResource(name, { apiVersion, kind, metadata, ...rest }, { parent });
}
