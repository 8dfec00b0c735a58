/**
 * What a nested cluster gets besides its machines: MachineHealthChecks (Cluster API replaces a machine whose node
 * stays unhealthy) and the CNI, applied into the nested cluster by a ClusterResourceSet.
 */
import { capiApiVersion } from './nested-cluster-names';
import type { CniProps, HealthCheckProps } from './nested-cluster-props';
import { NESTED_CLUSTER_DEFAULTS } from './nested-cluster-props';

/** A Kubernetes object as the renderer writes it. */
export interface NestedClusterObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Object metadata shared by every object of one cluster. */
export interface CommonMetadata {
  readonly namespace?: string;
  readonly labels: Record<string, string>;
}

export const meta = (name: string, common: CommonMetadata) => ({
  name,
  ...(common.namespace ? { namespace: common.namespace } : {}),
  labels: { ...common.labels },
});

/** A MachineHealthCheck of the machines `selector` picks: Node Ready Unknown or False for too long → replaced. */
export function machineHealthCheck(
  name: string,
  cluster: string,
  selector: Record<string, string>,
  props: HealthCheckProps,
  common: CommonMetadata,
): NestedClusterObject {
  const timeoutSeconds = props.unhealthySeconds ?? NESTED_CLUSTER_DEFAULTS.unhealthySeconds;
  return {
    apiVersion: capiApiVersion('core'),
    kind: 'MachineHealthCheck',
    metadata: meta(name, common),
    spec: {
      clusterName: cluster,
      selector: { matchLabels: { ...selector } },
      checks: {
        ...(props.nodeStartupSeconds !== undefined ? { nodeStartupTimeoutSeconds: props.nodeStartupSeconds } : {}),
        unhealthyNodeConditions: [
          { type: 'Ready', status: 'Unknown', timeoutSeconds },
          { type: 'Ready', status: 'False', timeoutSeconds },
        ],
      },
    },
  };
}

/** The CNI's ConfigMap (when the manifests are given inline) and the ClusterResourceSet applying it. */
export function cniObjects(
  name: string,
  clusterSelector: Record<string, string>,
  cni: CniProps,
  common: CommonMetadata,
): NestedClusterObject[] {
  const objects: NestedClusterObject[] = [];
  const resources: { kind: 'ConfigMap' | 'Secret'; name: string }[] = [];
  if (cni.manifests !== undefined) {
    objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(name, common),
      data: { 'cni.yaml': cni.manifests },
    });
    resources.push({ kind: 'ConfigMap', name });
  }
  for (const n of cni.configMaps ?? []) resources.push({ kind: 'ConfigMap', name: n });
  for (const n of cni.secrets ?? []) resources.push({ kind: 'Secret', name: n });
  objects.push({
    apiVersion: capiApiVersion('addons'),
    kind: 'ClusterResourceSet',
    metadata: meta(name, common),
    spec: {
      clusterSelector: { matchLabels: { ...clusterSelector } },
      resources,
      strategy: cni.strategy ?? NESTED_CLUSTER_DEFAULTS.cniStrategy,
    },
  });
  return objects;
}
