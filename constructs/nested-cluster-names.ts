/**
 * The names of a nested cluster's objects, the Cluster API groups and labels they use, and the budget that keeps every
 * name derived from them — including the Machines, KubevisorMachines and VMs Cluster API names at run time — a DNS
 * label of at most 63 characters without truncation.
 */
import { createHash } from 'node:crypto';
import {
  CLUSTER_API_CONTRACT,
  CLUSTER_API_GROUP,
  CLUSTER_NAME_LABEL,
  CONTROL_PLANE_LABEL,
  DEPLOYMENT_NAME_LABEL,
  INFRASTRUCTURE_GROUP,
} from '../api';

/** Cluster API's groups (v1beta2 references name the group and kind, not the apiVersion). */
export const CAPI_GROUPS = {
  core: CLUSTER_API_GROUP,
  controlPlane: 'controlplane.cluster.x-k8s.io',
  bootstrap: 'bootstrap.cluster.x-k8s.io',
  addons: 'addons.cluster.x-k8s.io',
  infrastructure: INFRASTRUCTURE_GROUP,
} as const;

/** The version of Cluster API's kinds the renderer writes (Cluster API v1.14). */
export const CAPI_VERSION = CLUSTER_API_CONTRACT;

/** `group/version` of a Cluster API group. */
export const capiApiVersion = (group: keyof Omit<typeof CAPI_GROUPS, 'infrastructure'>) =>
  `${CAPI_GROUPS[group]}/${CAPI_VERSION}`;

/** The labels Cluster API puts on machines and that select them. */
export const CAPI_LABELS = {
  clusterName: CLUSTER_NAME_LABEL,
  controlPlane: CONTROL_PLANE_LABEL,
  deploymentName: DEPLOYMENT_NAME_LABEL,
} as const;

/** On the Cluster: the CNI ClusterResourceSet selects the cluster by it. */
export const NESTED_CLUSTER_LABEL = 'kubevisor.io/nested-cluster';

/** Suffix of the control plane's objects; no worker pool may take this name. */
export const CONTROL_PLANE_SUFFIX = 'control-plane';
/** Suffix of the CNI's ClusterResourceSet and ConfigMap. */
export const CNI_SUFFIX = 'cni';

/** Length of the random suffix Cluster API appends to MachineSet and Machine names (`-` excluded). */
const CAPI_RANDOM = 5;
/** Length of the content hash of template names. */
const HASH = 8;
const DNS_LABEL_MAX = 63;

/** Longest cluster name: `<name>-control-plane-<hash>` must be a DNS label. */
export const MAX_CLUSTER_NAME = DNS_LABEL_MAX - CONTROL_PLANE_SUFFIX.length - HASH - 2;
/**
 * Longest `<cluster name><pool name>`: a worker Machine (and its VM) is `<cluster>-<pool>-<5>-<5>` (the MachineSet's
 * and the Machine's random suffixes); longer, Cluster API would cut the name and the MachineSet's suffix with it.
 */
export const MAX_CLUSTER_AND_POOL_NAME = DNS_LABEL_MAX - 3 - 2 * CAPI_RANDOM;

/** The content-hash suffix of a template: the first 8 hex digits of the SHA-256 of its canonical JSON. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, HASH);
}

/** JSON with object keys sorted at every depth, so equal content hashes equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The names of a nested cluster's objects. */
export const nestedClusterNames = (cluster: string) => ({
  cluster,
  infrastructureCluster: cluster,
  controlPlane: `${cluster}-${CONTROL_PLANE_SUFFIX}`,
  controlPlaneHealthCheck: `${cluster}-${CONTROL_PLANE_SUFFIX}`,
  /** `<cluster>-control-plane-<hash>`. */
  controlPlaneTemplate: (hash: string) => `${cluster}-${CONTROL_PLANE_SUFFIX}-${hash}`,
  pool: (pool: string) => `${cluster}-${pool}`,
  /** `<cluster>-<pool>-<hash>`, for the KubevisorMachineTemplate and the KubeadmConfigTemplate. */
  poolTemplate: (pool: string, hash: string) => `${cluster}-${pool}-${hash}`,
  cni: `${cluster}-${CNI_SUFFIX}`,
  /** Written by Cluster API once the control plane is up (key `value`). */
  kubeconfigSecret: `${cluster}-kubeconfig`,
});

/**
 * Every name the cluster's objects get, and those Cluster API derives at run time (Machines of the control plane
 * `<kcp>-xxxxx`, MachineSets `<md>-xxxxx`, their Machines `<ms>-xxxxx`; KubevisorMachines, KubeadmConfigs and VMs
 * take their Machine's name), with `x` standing for the random characters and the hash.
 */
export function derivedNames(cluster: string, pools: readonly string[]): string[] {
  const n = nestedClusterNames(cluster);
  const hash = 'h'.repeat(HASH);
  const random = 'x'.repeat(CAPI_RANDOM);
  return [
    n.cluster,
    n.controlPlane,
    n.controlPlaneTemplate(hash),
    `${n.controlPlane}-${random}`,
    n.cni,
    n.kubeconfigSecret,
    ...pools.flatMap((p) => [
      n.pool(p),
      n.poolTemplate(p, hash),
      `${n.pool(p)}-${random}`,
      `${n.pool(p)}-${random}-${random}`,
    ]),
  ];
}
