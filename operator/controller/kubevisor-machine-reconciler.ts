/**
 * Reconciles one KubevisorMachine: reads it, its owner Machine, its Cluster and the VM of its name, asks the lifecycle
 * what to do, does it, and writes status only when it changed. Idempotent: a crash between two steps is repaired by the
 * next pass (the VM is found and checked, the providerID written once).
 */
import { isAlreadyExists, isApiError } from '../kube/errors';
import type { ClusterApiStore } from './kubevisor-cluster-api';
import { CLUSTER_NAME_LABEL, capiOwner } from './kubevisor-cluster-api';
import {
  KUBEVISOR_MACHINE_FINALIZER,
  MachineReason,
  clusterNameOf,
  decideKubevisorMachine,
} from './kubevisor-machine-lifecycle';
import { setCondition } from './vm-lifecycle';

export async function reconcileKubevisorMachineKey(
  store: ClusterApiStore,
  namespace: string,
  name: string,
  options: { readonly now?: () => Date } = {},
): Promise<{ requeueAfterMs?: number }> {
  const cached = store.kubevisorMachine(namespace, name);
  if (!cached) return {};
  // A copy: the cache's objects are shared, and this pass tracks its own writes' resourceVersion.
  let km = { ...cached, metadata: { ...cached.metadata, namespace } };
  const owner = capiOwner(km.metadata, 'Machine');
  const machine = owner ? store.machine(namespace, owner.name) : undefined;
  // Without its Machine the machine only waits (or is deleted); its own label then finds the Cluster that may pause it.
  const clusterName = clusterNameOf(km, machine) ?? (machine ? undefined : km.metadata.labels?.[CLUSTER_NAME_LABEL]);
  const cluster = clusterName ? store.cluster(namespace, clusterName) : undefined;
  const vm = store.vm(namespace, name);
  const now = (options.now ?? (() => new Date()))();
  let decision = decideKubevisorMachine({ km, machine, cluster, vm, now });
  const dataSecretName = machine?.spec?.bootstrap?.dataSecretName;
  if (decision.needsBootstrapSecret && dataSecretName) {
    const bootstrapSecret = (await store.readSecret(namespace, dataSecretName)) ?? null;
    decision = decideKubevisorMachine({ km, machine, cluster, vm, bootstrapSecret, now });
  }
  if (decision.needsBootstrapSecret) throw new Error(`KubevisorMachine ${namespace}/${name}: bootstrap Secret unread`);

  for (const a of decision.actions) {
    switch (a.type) {
      case 'addFinalizer': {
        const resourceVersion = await store.addFinalizer(km, KUBEVISOR_MACHINE_FINALIZER);
        km = {
          ...km,
          metadata: {
            ...km.metadata,
            resourceVersion,
            finalizers: [...(km.metadata.finalizers ?? []), KUBEVISOR_MACHINE_FINALIZER],
          },
        };
        break;
      }
      case 'removeFinalizer':
        await store.removeFinalizer(km, KUBEVISOR_MACHINE_FINALIZER);
        return {};
      case 'createVm':
        try {
          await store.createVm(a.vm as unknown as Record<string, unknown>);
          void store
            .event(km, 'Normal', 'VirtualMachineCreated', `created VirtualMachine ${name}`)
            .catch(() => undefined);
        } catch (error) {
          // The VM cache is behind: its add event brings the VM, and the next pass checks whose it is.
          if (isAlreadyExists(error)) break;
          // Refused as invalid (a rule only the API server checks): retrying cannot help, the condition says why.
          if (!isApiError(error, 422) || !decision.status) throw error;
          const reason = MachineReason.InvalidVirtualMachine;
          const message = `the API server refused VirtualMachine ${name}: ${error.serverMessage || error.message}`;
          const before = km.status?.conditions?.find((c) => c.type === 'Ready');
          decision.status.conditions = setCondition(
            decision.status.conditions,
            'Ready',
            'False',
            reason,
            message,
            now,
            km.metadata.generation,
          );
          if (before?.reason !== reason || before.message !== message) {
            void store.event(km, 'Warning', reason, message).catch(() => undefined);
          }
        }
        break;
      case 'deleteVm':
        await store.deleteVm(namespace, a.name, a.uid);
        break;
      case 'setProviderID': {
        const resourceVersion = await store.patchSpec(km, { providerID: a.providerID });
        km = { ...km, metadata: { ...km.metadata, resourceVersion }, spec: { ...km.spec, providerID: a.providerID } };
        break;
      }
      case 'event':
        // Events are best effort: a failed Event must not fail or slow down the reconcile.
        void store.event(km, a.warning ? 'Warning' : 'Normal', a.reason, a.message).catch(() => undefined);
        break;
    }
  }
  if (decision.status && JSON.stringify(decision.status) !== JSON.stringify(km.status ?? {})) {
    await store.updateStatus(km, decision.status);
  }
  return decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs } : {};
}
