/**
 * What the Cluster API infrastructure provider's reconcilers (KubevisorCluster, KubevisorMachine) share: Cluster API's
 * own labels and annotations, the views of the objects they read (Cluster API's Cluster and Machine, the control-plane
 * Service, the VM), and the {@link ClusterApiStore} they read and write through. Pure: the process wires the real store
 * (operator/controller/cluster-api-cluster.ts), the tests an in-memory one.
 */
import type {
  Condition,
  KubevisorClusterSpec,
  KubevisorClusterStatus,
  KubevisorMachineSpec,
  KubevisorMachineStatus,
  VirtualMachineSpec,
  VirtualMachineStatus,
} from '../../api';
import { CLUSTER_API_GROUP, INFRASTRUCTURE_GROUP, PAUSED_ANNOTATION } from '../../api';
import type { OwnerReference } from '../kube/object';

// Cluster API's labels and annotations are declared once, beside the kinds (api/infrastructure.ts).
export {
  CLUSTER_API_VERSION,
  CLUSTER_NAME_LABEL,
  CONTROL_PLANE_LABEL,
  DEPLOYMENT_NAME_LABEL,
  MANAGED_BY_LABEL,
  PAUSED_ANNOTATION,
} from '../../api';

/** Metadata as the reconcilers read it. */
export interface ObjectView {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
  generation?: number;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** A v1beta2 contract reference (Cluster and Machine spec.infrastructureRef). */
export interface ContractReference {
  apiGroup?: string;
  kind?: string;
  name?: string;
}

/** A Cluster API Cluster (v1beta2), as far as the provider reads it. */
export interface CapiClusterView {
  metadata: ObjectView;
  spec?: { paused?: boolean; infrastructureRef?: ContractReference };
  status?: { initialization?: { infrastructureProvisioned?: boolean } };
}

/** A Cluster API Machine (v1beta2), as far as the provider reads it. */
export interface CapiMachineView {
  metadata: ObjectView;
  spec?: {
    clusterName?: string;
    bootstrap?: { dataSecretName?: string };
    infrastructureRef?: ContractReference;
  };
}

/** A Secret, as far as the provider checks it (never its data). */
export interface SecretView {
  metadata: ObjectView;
  type?: string;
}

export interface KubevisorClusterObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectView;
  spec?: KubevisorClusterSpec;
  status?: KubevisorClusterStatus;
}

export interface KubevisorMachineObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectView;
  spec: KubevisorMachineSpec;
  status?: KubevisorMachineStatus;
}

/** The control-plane Service, as far as the provider compares and reads it. */
export interface ServiceView {
  metadata: ObjectView;
  spec?: {
    type?: string;
    clusterIP?: string;
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; targetPort?: number | string; protocol?: string }[];
    loadBalancerClass?: string;
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/** A VirtualMachine, as far as the machine reconciler reads it. */
export interface MachineVmView {
  metadata: ObjectView;
  spec?: Pick<VirtualMachineSpec, 'runPolicy'>;
  status?: Pick<VirtualMachineStatus, 'phase' | 'nodeName' | 'interfaces' | 'conditions'>;
}

/** An object the provider writes status, finalizers and events to. */
export type InfrastructureObject = KubevisorClusterObject | KubevisorMachineObject;

/**
 * What the two reconcilers need: reads from the informer caches, writes through the API server. Every write of an
 * object the provider owns is guarded (resourceVersion, or a delete precondition on the UID), so a pass working from a
 * stale cache fails with 409 and is retried, never acts on an object that replaced the one it read.
 */
export interface ClusterApiStore {
  kubevisorCluster(namespace: string, name: string): KubevisorClusterObject | undefined;
  kubevisorMachine(namespace: string, name: string): KubevisorMachineObject | undefined;
  cluster(namespace: string, name: string): CapiClusterView | undefined;
  machine(namespace: string, name: string): CapiMachineView | undefined;
  /** The cached Service (only Services carrying the provider's label are cached). */
  service(namespace: string, name: string): ServiceView | undefined;
  /** A Service read from the API server: one the cache cannot hold (unlabelled, someone else's), or not yet. */
  readService(namespace: string, name: string): Promise<ServiceView | undefined>;
  vm(namespace: string, name: string): MachineVmView | undefined;
  /** A Secret's type and metadata read from the API server (the bootstrap data Secret), undefined when absent. */
  readSecret(namespace: string, name: string): Promise<SecretView | undefined>;

  /** Creates the Service the provider keeps (fails with 409 AlreadyExists when the name is taken). */
  createService(service: Record<string, unknown>): Promise<void>;
  /**
   * Server-side apply of the Service the provider keeps (force: the provider's fields are the provider's). The
   * Service carries the observed `metadata.uid` and `metadata.resourceVersion`: a Service replaced or changed since it
   * was read is refused (409), never rewritten.
   */
  applyService(service: Record<string, unknown>): Promise<void>;
  /** Deletes the Service of this UID; a missing one counts as deleted. */
  deleteService(namespace: string, name: string, uid: string): Promise<void>;
  createVm(vm: Record<string, unknown>): Promise<void>;
  /** Deletes the VM of this UID; a missing one counts as deleted. */
  deleteVm(namespace: string, name: string, uid: string): Promise<void>;
  /** Merge-patches the object's spec (guarded by resourceVersion); returns the new resourceVersion. */
  patchSpec(obj: InfrastructureObject, spec: Record<string, unknown>): Promise<string | undefined>;
  /** Writes the changed top-level status fields through /status (guarded by resourceVersion). */
  updateStatus(obj: InfrastructureObject, status: object): Promise<void>;
  addFinalizer(obj: InfrastructureObject, finalizer: string): Promise<string | undefined>;
  removeFinalizer(obj: InfrastructureObject, finalizer: string): Promise<void>;
  event(obj: InfrastructureObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/** The owner reference of `kind` in Cluster API's group (any version: Cluster API may move to a newer one). */
export function capiOwner(metadata: ObjectView, kind: 'Cluster' | 'Machine'): OwnerReference | undefined {
  return metadata.ownerReferences?.find((r) => r.kind === kind && r.apiVersion.split('/')[0] === CLUSTER_API_GROUP);
}

/**
 * Whether the owner is the object the owner reference names (its UID) and names this object back as its
 * infrastructure (spec.infrastructureRef): a reference by name alone lets anyone claim another's Cluster or Machine.
 */
export function ownerMismatch(
  owner: OwnerReference,
  ownerView: { metadata: ObjectView; spec?: { infrastructureRef?: ContractReference } },
  self: { kind: 'KubevisorCluster' | 'KubevisorMachine'; name: string },
): string | undefined {
  const kind = self.kind === 'KubevisorCluster' ? 'Cluster' : 'Machine';
  if (owner.uid !== ownerView.metadata.uid) {
    return `the owner reference names ${kind} ${owner.name} with UID ${owner.uid}, but ${kind} ${owner.name} has UID ${ownerView.metadata.uid}`;
  }
  const ref = ownerView.spec?.infrastructureRef;
  if (
    !ref ||
    ref.kind !== self.kind ||
    ref.name !== self.name ||
    (ref.apiGroup !== undefined && ref.apiGroup !== INFRASTRUCTURE_GROUP)
  ) {
    const names = ref ? `${ref.kind ?? '?'} ${ref.name ?? '?'}` : 'nothing';
    return `${kind} ${owner.name} does not name this ${self.kind} in spec.infrastructureRef (it names ${names})`;
  }
  return undefined;
}

/** The controller owner reference of an object (the API server allows one). */
export function controllerUid(metadata: ObjectView): string | undefined {
  return metadata.ownerReferences?.find((r) => r.controller)?.uid;
}

/** Why reconciling is paused (Cluster spec.paused or the object's own annotation), or undefined. */
export function pausedBy(
  metadata: ObjectView,
  cluster: CapiClusterView | undefined,
  kind: 'KubevisorCluster' | 'KubevisorMachine',
): string | undefined {
  if (cluster?.spec?.paused) return `Cluster ${cluster.metadata.name} is paused (spec.paused)`;
  if (metadata.annotations?.[PAUSED_ANNOTATION] !== undefined) {
    return `the ${kind} carries the ${PAUSED_ANNOTATION} annotation`;
  }
  return undefined;
}

export const hasFinalizer = (metadata: ObjectView, finalizer: string) =>
  metadata.finalizers?.includes(finalizer) ?? false;

/** The Ready condition of a list, if any. */
export const readyOf = (conditions: readonly Condition[] | undefined) => conditions?.find((c) => c.type === 'Ready');
