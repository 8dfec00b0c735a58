/** Reconciles one VirtualMachineMigration through the migration lifecycle. */
import type { VmPodOptions } from '../../constructs/vm-pod';
import { renderVmPod, renderVmPodSecret, vmPodName } from '../../constructs/vm-pod';
import type { Cluster } from './cluster';
import { NameTakenError, controlledBy } from './cluster';
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
  // Only the VM's own pods (controller reference), never one that merely carries its label.
  const pods = vm ? controlledBy(cluster.podsOfVm(namespace, vm.metadata.name), vm.metadata.uid) : [];
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
            await cluster.createPod(renderVmPod(object, role, options.pod), renderVmPodSecret(object, role));
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
