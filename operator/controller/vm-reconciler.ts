/**
 * Reconciles one VirtualMachine: reads it, its pods and their nodes from the caches, asks the lifecycle what the
 * status should be and what to do, does it, and writes status only when it changed. Idempotent: every action is
 * safe to repeat, so a crash between two steps is repaired by the next pass.
 */
import type { VmPodOptions } from '../../constructs/vm-pod';
import { renderAttachmentPod, renderVmPod, vmPodName } from '../../constructs/vm-pod';
import { reconcileHotplug } from './hotplug';
import type { Cluster } from './cluster';
import type { LifecycleConfig } from './vm-lifecycle';
import { DEFAULT_LIFECYCLE, VM_FINALIZER, reconcileVm } from './vm-lifecycle';

export interface VmReconcilerOptions {
  readonly pod: VmPodOptions;
  readonly lifecycle?: LifecycleConfig;
  readonly now?: () => Date;
}

/** Returns how long to wait before looking again, if the lifecycle asked for it. */
export async function reconcileVmKey(
  cluster: Cluster,
  namespace: string,
  name: string,
  options: VmReconcilerOptions,
): Promise<{ requeueAfterMs?: number }> {
  const cached = cluster.vm(namespace, name);
  if (!cached) return {};
  // A copy: the cache's objects are shared and read-only, and this pass tracks its own writes' resourceVersion.
  let vm = { ...cached, metadata: { ...cached.metadata } };
  const pods = cluster.podsOfVm(namespace, name);
  const nodes = new Map(
    pods.flatMap((p) => {
      const n = p.spec?.nodeName ? cluster.node(p.spec.nodeName) : undefined;
      return n ? [[n.metadata.name, n] as const] : [];
    }),
  );
  const now = (options.now ?? (() => new Date()))();
  const decision = reconcileVm(
    vm,
    pods,
    nodes,
    now,
    (run) => vmPodName(name, vm.metadata.uid, { run }),
    options.lifecycle ?? DEFAULT_LIFECYCLE,
  );

  for (const a of decision.actions) {
    switch (a.type) {
      case 'addFinalizer': {
        const resourceVersion = await cluster.addFinalizer(vm, VM_FINALIZER);
        vm = {
          ...vm,
          metadata: { ...vm.metadata, resourceVersion, finalizers: [...(vm.metadata.finalizers ?? []), VM_FINALIZER] },
        };
        break;
      }
      case 'removeFinalizer':
        await cluster.removeFinalizer(vm, VM_FINALIZER);
        return {};
      case 'createPod':
        await cluster.createPod(
          renderVmPod({ ...vm, metadata: { ...vm.metadata, namespace } }, { run: a.run }, options.pod),
        );
        break;
      case 'deletePod':
        await cluster.deletePod(namespace, a.name, a.force);
        break;
      case 'event':
        // Events are best effort: a failed Event must not fail or slow down the reconcile.
        void cluster.event(vm, a.warning ? 'Warning' : 'Normal', a.reason, a.message).catch(() => undefined);
        break;
    }
  }
  const current = pods.find((p) => p.metadata.name === decision.status.vmPodName);
  if (!vm.metadata.deletionTimestamp) {
    for (const a of reconcileHotplug(vm.spec, decision.status, current, cluster.attachmentPodsOfVm(namespace, name))) {
      if (a.type === 'createAttachmentPod' && current?.metadata.uid && current.spec?.nodeName) {
        const target = { name: current.metadata.name, uid: current.metadata.uid, nodeName: current.spec.nodeName };
        await cluster.createPod(
          renderAttachmentPod({ ...vm, metadata: { ...vm.metadata, namespace } }, target, a.volume, options.pod),
        );
      } else if (a.type === 'deleteAttachmentPod') {
        await cluster.deletePod(namespace, a.name, false);
      }
    }
  }
  if (!vm.metadata.deletionTimestamp && JSON.stringify(decision.status) !== JSON.stringify(vm.status ?? {})) {
    await cluster.updateVmStatus(vm, decision.status);
  }
  return decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs } : {};
}
