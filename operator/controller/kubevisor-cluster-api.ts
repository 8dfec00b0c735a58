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
import { CLUSTER_API_GROUP } from '../../api';
import type { OwnerReference } from '../kube/object';

/** Cluster API's labels and annotations (the contract names them; Cluster API sets them on Machines). */
export const CLUSTER_NAME_LABEL = `${CLUSTER_API_GROUP}/cluster-name`;
export const CONTROL_PLANE_LABEL = `${CLUSTER_API_GROUP}/control-plane`;
export const DEPLOYMENT_NAME_LABEL = `${CLUSTER_API_GROUP}/deployment-name`;
/** On an infrastructure cluster: another system owns it, and the provider must not touch it at all. */
export const MANAGED_BY_LABEL = `${CLUSTER_API_GROUP}/managed-by`;
/** On any Cluster API object: reconcile nothing of it (clusterctl move, a user holding it). */
export const PAUSED_ANNOTATION = `${CLUSTER_API_GROUP}/paused`;
/** The version of Cluster API's own kinds the provider reads (contract v1beta2). */
export const CLUSTER_API_VERSION = `${CLUSTER_API_GROUP}/v1beta2`;

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

/** A Cluster API Cluster (v1beta2), as far as the provider reads it. */
export interface CapiClusterView {
  metadata: ObjectView;
  spec?: { paused?: boolean };
  status?: { initialization?: { infrastructureProvisioned?: boolean } };
}

/** A Cluster API Machine (v1beta2), as far as the provider reads it. */
export interface CapiMachineView {
  metadata: ObjectView;
  spec?: { clusterName?: string; bootstrap?: { dataSecretName?: string } };
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
  /** The cached Service (only Services labelled with a cluster name are cached). */
  service(namespace: string, name: string): ServiceView | undefined;
  /** A Service read from the API server: one the cache cannot hold (unlabelled, someone else's), or not yet. */
  readService(namespace: string, name: string): Promise<ServiceView | undefined>;
  vm(namespace: string, name: string): MachineVmView | undefined;

  /** Server-side apply of the Service the provider keeps (force: the provider's fields are the provider's). */
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
