/**
 * What the reconcilers need from the cluster: reads from the informer caches, writes through the API server. The
 * reconcilers depend on this interface only, so their tests run against an in-memory cluster and the process
 * wires the real one (operator/controller/kube-cluster.ts).
 */
import type { VirtualMachineMigrationStatus, VirtualMachineStatus } from '../../api';
import type { MigrationView } from './migration-lifecycle';
import type { NodeView, PodView, VmView } from './vm-lifecycle';

/** A VM as cached: the view the lifecycle reads plus what writes need. */
export type VmObject = VmView & {
  apiVersion: string;
  kind: string;
  metadata: VmView['metadata'] & {
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
};
export type MigrationObject = MigrationView & {
  apiVersion: string;
  kind: string;
  metadata: MigrationView['metadata'] & { resourceVersion?: string };
};

/** A VM pod's Secret, and how to check a Secret an earlier attempt left under its name. */
export interface VmPodSecret {
  readonly secret: Record<string, unknown>;
  /**
   * The pod as rendered from the VM that an existing Secret of this name records — the VM as it was when an earlier
   * attempt created the pair, which may differ from the VM now — or undefined when the record cannot be one of this
   * VM's. An existing pod is accepted when it matches either this or the pod rendered now.
   */
  readonly podFromSecret: (existing: Record<string, unknown>) => Record<string, unknown> | undefined;
  /**
   * A write that must have succeeded before the pod is created (the VM's finalizer, so that no pod exists without it).
   * The Secret is created meanwhile; should the write fail, the Secret is removed again and its error thrown.
   */
  readonly before?: Promise<unknown>;
  /**
   * Resolve as soon as the pod exists and hand the Secret over in the background (the caller's next write need not
   * wait for it). Should the hand-over fail, the Secret stays unsettled and settleVmSecret hands it over later.
   */
  readonly handOverInBackground?: boolean;
}

export interface Cluster {
  vm(namespace: string, name: string): VmObject | undefined;
  migration(namespace: string, name: string): MigrationObject | undefined;
  /** Pods labelled with the VM's name in its namespace (current, earlier runs, migration targets). */
  podsOfVm(namespace: string, vmName: string): PodView[];
  node(name: string): NodeView | undefined;
  /** Attachment pods of the VM's hot-plugged volumes (operator/controller/hotplug.ts). */
  attachmentPodsOfVm(namespace: string, vmName: string): PodView[];

  /**
   * Creates a pod and resolves to its UID. An existing pod of that name counts as success only when it is the pod this
   * pod request would have made — the same controller and the same security-relevant spec, give or take what the API
   * server defaults and others set (operator/controller/adoption.ts) — and is a {@link NameTakenError} otherwise: it
   * is never adopted. With `secret` (a VM pod's Secret, controlled by the VM), the Secret is created first, never
   * replaced once its pod exists, and handed to the pod once the pod exists, so it goes with it.
   */
  createPod(pod: Record<string, unknown>, secret?: VmPodSecret): Promise<string | undefined>;
  /**
   * Settles the Secret of VM pod `name` if it is still controlled by the VM (a create that stopped half-way): handed
   * to the pod when the pod of that name is `podUid` (one the reconciler knows as the VM's), deleted when no pod of that
   * name exists. Cheap to call again: a name once settled is not looked up again.
   */
  settleVmSecret(namespace: string, name: string, vmUid: string, podUid?: string): Promise<void>;
  /** Deletes a pod; a missing pod counts as success. `force` deletes at once (grace period 0). */
  deletePod(namespace: string, name: string, force: boolean): Promise<void>;
  /** Writes status through /status, guarded by resourceVersion (a conflict throws, so the key is requeued). */
  updateVmStatus(vm: VmObject, status: VirtualMachineStatus): Promise<void>;
  updateMigrationStatus(m: MigrationObject, status: VirtualMachineMigrationStatus): Promise<void>;
  /** Sets or clears vm.status.migration only (the migration reconciler never touches the rest of the VM's status). */
  setVmMigration(vm: VmObject, migration: VirtualMachineStatus['migration'] | null): Promise<void>;
  /** Adds a finalizer; returns the object's new resourceVersion, so later writes of the same pass do not conflict. */
  addFinalizer(obj: VmObject | MigrationObject, finalizer: string): Promise<string | undefined>;
  /** Removes a finalizer with a JSON patch guarded by a `test` of the resourceVersion. */
  removeFinalizer(obj: VmObject | MigrationObject, finalizer: string): Promise<void>;
  event(obj: VmObject | MigrationObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
  /**
   * True while the cached VM is a version this controller has itself replaced (its write's watch event has not come
   * yet): a pass now would work from a stale status. The cluster wakes the VM once the cache catches up.
   */
  vmCacheBehind?(namespace: string, name: string): boolean;
  /**
   * True while pod `name`, which this controller created as `uid`, has not reached the pod cache yet: a pass that does
   * not see it must not take it for gone (and create it again: a conflict and two reads).
   */
  podCreatedNotSeen?(namespace: string, name: string, uid: string): boolean;
}

/**
 * An object kubevisor must create already exists and is not its own: a tenant, or anything else, took the name —
 * under another controller, or naming this VM as controller but not the object the VM needs (`detail` says where it
 * differs). It is left alone; the VM reports the problem (reason `PodNameTaken`) until the name is free.
 */
export class NameTakenError extends Error {
  override readonly name = 'NameTakenError';
  constructor(
    readonly kind: 'Pod' | 'Secret',
    readonly namespace: string,
    readonly objectName: string,
    readonly detail = 'another controller',
  ) {
    super(
      `${kind} ${namespace}/${objectName} already exists and is not controlled by this VM (${detail}); it is not ` +
        `adopted: delete it (or recreate the VM, which changes the name) to let the VM start`,
    );
  }
}

/** An owner reference as far as kubevisor reads it. */
export interface OwnerReference {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly name?: string;
  readonly uid: string;
  readonly controller?: boolean;
}

/**
 * The controller owner reference of an object (the API server allows at most one). A pod or Secret is a VM's only
 * when this names the VM; the reconcilers look at no other pods.
 */
export function controllerOf(o: {
  readonly metadata?: { readonly ownerReferences?: readonly OwnerReference[] };
}): OwnerReference | undefined {
  return o.metadata?.ownerReferences?.find((r) => r.controller);
}
