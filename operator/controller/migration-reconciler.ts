/** Reconciles one VirtualMachineMigration through the migration lifecycle. */
import type { VmPodOptions } from '../../constructs/vm-pod';
import { renderVmPod, vmPodName } from '../../constructs/vm-pod';
import type { Cluster } from './cluster';
import { MIGRATION_FINALIZER, reconcileMigration } from './migration-lifecycle';

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
  const pods = vm ? cluster.podsOfVm(namespace, vm.metadata.name) : [];
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
          const pod = renderVmPod(
            { ...vm, metadata: { ...vm.metadata, namespace } },
            { run, migrationUid: m.metadata.uid },
            options.pod,
          );
          // The name the migration recorded when it started: the VM's run may have moved on since.
          (pod.metadata as { name: string }).name = a.podName;
          await cluster.createPod(pod);
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
