/**
 * The names and the owner of a VM's pods: stable per run, so every step that creates one is idempotent and a pod of
 * that name with another controller is recognised as someone else's.
 */
import { createHash } from 'node:crypto';
import type { KubevisorObject } from '../api';
import { API_VERSION } from '../api';

/** Which pod of a VM a name is for: the pod of run `run`, or the receiving pod of a migration during that run. */
export interface VmPodNameRole {
  /** The VM's run counter (status.restarts). */
  readonly run: number;
  /** UID of the VirtualMachineMigration whose receiving pod this is. */
  readonly migrationUid?: string;
}

/** Pod names are DNS labels here too (≤ 63), so they fit wherever a label or hostname must hold one. */
const POD_NAME_MAX = 63;

/**
 * The name of one pod of a VM: `vm-<name>-<uid hash>-<run>` for run N, `…-<run>m<migration uid>` for the receiving pod
 * of a migration. Stable, so creating it twice is harmless (the second create finds it and checks its owner), and
 * distinct by construction for every run and every migration target: the role suffix is kept whole and only the
 * VM name is shortened to fit 63 characters. The VM UID hash keeps VMs apart whose shortened names coincide, and a
 * VM from a recreated one of the same name.
 */
export function vmPodName(vmName: string, vmUid: string, role: VmPodNameRole): string {
  const uid = createHash('sha256').update(vmUid).digest('hex').slice(0, 5);
  const suffix = role.migrationUid ? `${role.run}m${role.migrationUid.replace(/-/g, '').slice(0, 8)}` : `${role.run}`;
  const tail = `-${uid}-${suffix}`;
  return `vm-${vmName.slice(0, POD_NAME_MAX - 3 - tail.length)}${tail}`;
}

/** Which pod of the VM to render. */
export interface VmPodRole {
  /** The VM's run counter (status.restarts): each start gets a new pod name. */
  readonly run: number;
  /**
   * Render the receiving pod of this live migration (its UID): it must land on another node than the running pod
   * (required pod anti-affinity on the VM label) and the launcher waits for an incoming migration instead of a
   * VmConfig.
   */
  readonly migrationUid?: string;
  /** The pod's name, when it was fixed earlier (a migration records its receiving pod's name when it starts). */
  readonly podName?: string;
}

/** The pod's name for a role. */
export function podNameOf(vm: { metadata: { name: string; uid?: string } }, role: VmPodRole): string {
  return (
    role.podName ??
    vmPodName(vm.metadata.name, vm.metadata.uid ?? '', {
      run: role.run,
      ...(role.migrationUid ? { migrationUid: role.migrationUid } : {}),
    })
  );
}

/** The owner reference of everything a VM's reconciler creates for it: the VM, as controller. */
export const vmOwner = (vm: KubevisorObject & { metadata: { uid?: string } }) => ({
  apiVersion: API_VERSION,
  kind: 'VirtualMachine',
  name: vm.metadata.name,
  uid: vm.metadata.uid ?? '',
  controller: true,
  blockOwnerDeletion: true,
});
