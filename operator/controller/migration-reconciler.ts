/** Reconciles one VirtualMachineMigration through the migration lifecycle. */
import { CPU_FEATURES_LABEL } from '../../api';
import type { VmPodOptions } from '../../constructs/vm-pod';
import { vmPodName } from '../../constructs/vm-pod';
import type { Cluster, MigrationObject, VmObject } from './cluster';
import { NameTakenError, controllerOf } from './cluster';
import { MIGRATION_FINALIZER, reconcileMigration } from './migration-lifecycle';
import { createVmPod } from './vm-pod-request';

export async function reconcileMigrationKey(
  cluster: Cluster,
  namespace: string,
  name: string,
  options: { readonly pod: VmPodOptions; readonly now?: () => Date },
): Promise<{ requeueAfterMs?: number }> {
  const cached = cluster.migration(namespace, name);
  if (!cached) return {};
  let m = { ...cached, metadata: { ...cached.metadata } };
  const vm = cluster.vm(namespace, m.spec.vmName);
  const pods = vm ? podsOf(cluster, vm, m, namespace) : [];
  const run = vm?.status?.restarts ?? 0;
  const target = vm ? vmPodName(vm.metadata.name, vm.metadata.uid, { run, migrationUid: m.metadata.uid }) : '';
  const now = (options.now ?? (() => new Date()))();
  const decision = reconcileMigration(m, vm, pods, now, target);

  for (const a of decision.actions) {
    switch (a.type) {
      case 'addFinalizer': {
        const resourceVersion = await cluster.addFinalizer(m, MIGRATION_FINALIZER);
        m = {
          ...m,
          metadata: {
            ...m.metadata,
            resourceVersion,
            finalizers: [...(m.metadata.finalizers ?? []), MIGRATION_FINALIZER],
          },
        };
        break;
      }
      case 'removeFinalizer':
        await cluster.removeFinalizer(m, MIGRATION_FINALIZER);
        return {};
      case 'setVmMigration':
        if (vm) await cluster.setVmMigration(vm, a.migration);
        break;
      case 'createTargetPod':
        if (vm) {
          const object = { ...vm, metadata: { ...vm.metadata, namespace } };
          // The name the migration recorded when it started: the VM's run may have moved on since.
          const role = { run, migrationUid: m.metadata.uid, podName: a.podName };
          try {
            // The guest keeps the CPU it booted on: the receiving node must offer the same features.
            const sourceName = decision.status.sourceNodeName ?? m.status?.sourceNodeName;
            const source = sourceName ? cluster.node(sourceName) : undefined;
            const features = source?.metadata.labels?.[CPU_FEATURES_LABEL];
            const podOptions = features
              ? { ...options.pod, requiredNodeLabels: { [CPU_FEATURES_LABEL]: features } }
              : options.pod;
            const uid = await createVmPod(cluster, object, role, podOptions);
            // From now on only the pod of this UID is the receiving pod (see podsOf).
            if (uid && decision.status.targetVMPodName === a.podName) decision.status.targetVMPodUID = uid;
          } catch (e) {
            // Someone else's pod holds the name: say so on the migration, then fail the pass (retried with backoff).
            if (e instanceof NameTakenError) {
              void cluster.event(m, 'Warning', 'PodNameTaken', e.message).catch(() => undefined);
            }
            throw e;
          }
        }
        break;
      case 'deletePod':
        await cluster.deletePod(namespace, a.name, false);
        break;
      case 'event':
        // Events are best effort: a failed Event must not fail or slow down the reconcile.
        void cluster.event(m, a.warning ? 'Warning' : 'Normal', a.reason, a.message).catch(() => undefined);
        break;
    }
  }
  if (!m.metadata.deletionTimestamp && JSON.stringify(decision.status) !== JSON.stringify(m.status ?? {})) {
    await cluster.updateMigrationStatus(m, decision.status);
  }
  return decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs } : {};
}

/**
 * The VM's pods as the migration sees them: controlled by the VM, and the receiving pod only once its UID is recorded
 * (the controller created it, or found it to be exactly the pod it renders). Until then, while the migration is
 * Scheduling, the lifecycle sees no receiving pod and asks to create it again, which checks the pod that is there. A
 * migration past Scheduling that recorded no UID started before UIDs were recorded: its pod is taken by name.
 */
function podsOf(cluster: Cluster, vm: VmObject, m: MigrationObject, namespace: string) {
  const target = m.status?.targetVMPodName;
  const recorded = m.status?.targetVMPodUID;
  const unverified = recorded === undefined && (m.status?.phase === 'Pending' || m.status?.phase === 'Scheduling');
  return cluster
    .podsOfVm(namespace, vm.metadata.name)
    .filter(
      (p) =>
        controllerOf(p)?.uid === vm.metadata.uid &&
        (p.metadata.name !== target || (recorded !== undefined ? p.metadata.uid === recorded : !unverified)),
    );
}
