/**
 * What the node daemon needs from the cluster: its caches (VM pods and VMs on this node, migrations touching it) and
 * the few writes it makes — status of VMs and migrations, Events. The reconcilers depend on this interface only, so
 * their tests can run against an in-memory cluster.
 */
import type { VirtualMachineMigrationStatus, VirtualMachineStatus } from '../../api';
import type { MigrationObject, VmObject } from '../controller/cluster';

/** A VM pod as the daemon reads it. */
export interface DaemonPod {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { uid: string; controller?: boolean }[];
  };
  spec?: {
    nodeName?: string;
    terminationGracePeriodSeconds?: number;
    volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[];
  };
  status?: {
    phase?: string;
    containerStatuses?: { name: string; state?: { terminated?: { exitCode?: number; finishedAt?: string } } }[];
  };
}

export type { MigrationObject, VmObject };

export interface DaemonCluster {
  readonly nodeName: string;
  /** A VM of this node (its status.nodeName), from the cache. */
  vm(namespace: string, name: string): VmObject | undefined;
  /** Any VM, from the API server: the VM a migration brings here is not this node's until it arrives. */
  fetchVm(namespace: string, name: string): Promise<VmObject | undefined>;
  /** The node a pod is bound to, from the API server (a migration's receiving pod is on another node). */
  podNodeName(namespace: string, name: string): Promise<string | undefined>;
  /** Migrations whose source or target is this node, from the cache. */
  migrationsOfVm(namespace: string, vmName: string): MigrationObject[];
  /**
   * Merges `status` into the VM's status (a JSON merge patch guarded by the VM's resourceVersion, so a write based
   * on a stale view fails with 409 instead of undoing someone else's). Returns the VM as stored.
   */
  patchVmStatus(vm: VmObject, status: VmStatusPatch): Promise<VmObject>;
  patchMigrationStatus(m: MigrationObject, status: Partial<VirtualMachineMigrationStatus>): Promise<MigrationObject>;
  /** Best effort: never throws, never delays the caller. */
  event(obj: VmObject | MigrationObject, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

type Guest = NonNullable<VirtualMachineStatus['guest']>;

/** A merge patch of VM status: top-level keys replace, `guest` merges key by key; null removes a key. */
export type VmStatusPatch = Partial<Omit<VirtualMachineStatus, 'guest'>> & {
  guest?: { [K in keyof Guest]?: Guest[K] | null };
};
