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

export interface Cluster {
  vm(namespace: string, name: string): VmObject | undefined;
  migration(namespace: string, name: string): MigrationObject | undefined;
  /** Pods labelled with the VM's name in its namespace (current, earlier runs, migration targets). */
  podsOfVm(namespace: string, vmName: string): PodView[];
  node(name: string): NodeView | undefined;
  /** Attachment pods of the VM's hot-plugged volumes (operator/controller/hotplug.ts). */
  attachmentPodsOfVm(namespace: string, vmName: string): PodView[];

  /**
   * Creates a pod; an existing pod of that name counts as success when it has the same controller (names are stable
   * per run), and is a {@link NameTakenError} otherwise — it is never adopted. With `secret` (a VM pod's Secret,
   * controlled by the VM), the Secret is created first and handed to the pod once the pod exists, so it goes with it.
   */
  createPod(pod: Record<string, unknown>, secret?: Record<string, unknown>): Promise<void>;
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
}

/**
 * An object kubevisor must create already exists under another controller: a tenant, or anything else, took the
 * name. It is left alone; the VM reports the problem (reason `PodNameTaken`) until the name is free.
 */
export class NameTakenError extends Error {
  override readonly name = 'NameTakenError';
  constructor(
    readonly kind: 'Pod' | 'Secret',
    readonly namespace: string,
    readonly objectName: string,
  ) {
    super(
      `${kind} ${namespace}/${objectName} already exists and is not controlled by this VM; it is not adopted: ` +
        `delete it (or recreate the VM, which changes the name) to let the VM start`,
    );
  }
}

/** Pods whose controller owner reference is the VM with this UID: the only pods a VM's reconciler looks at. */
export function controlledBy<P extends { metadata: { ownerReferences?: { uid: string; controller?: boolean }[] } }>(
  pods: readonly P[],
  uid: string,
): P[] {
  return pods.filter((p) => p.metadata.ownerReferences?.some((o) => o.controller && o.uid === uid));
}
