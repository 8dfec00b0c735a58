/**
 * Reconciles one KubevisorCluster: reads it, its owner Cluster and its control-plane Service, asks the lifecycle what
 * to do, does it, and writes status only when it changed. Idempotent: a crash between two steps is repaired by the next
 * pass (the Service is applied again, the endpoint written once).
 */
import { isAlreadyExists, isApiError } from '../kube/errors';
import type { ClusterApiStore, ServiceView } from './kubevisor-cluster-api';
import { capiOwner } from './kubevisor-cluster-api';
import {
  KUBEVISOR_CLUSTER_FINALIZER,
  controlPlaneServiceName,
  decideKubevisorCluster,
} from './kubevisor-cluster-lifecycle';
import { setCondition } from './vm-lifecycle';

/** Ready reason when the API server refuses the Service the spec asks for (e.g. a changed load balancer class). */
export const SERVICE_INVALID = 'ServiceInvalid';

/** How soon a pass that lost a create race (the Service appeared meanwhile) looks again. */
export const CREATE_RACE_REQUEUE_MS = 1000;

export async function reconcileKubevisorClusterKey(
  store: ClusterApiStore,
  namespace: string,
  name: string,
  options: {
    readonly now?: () => Date;
    /** LoadBalancer Services allowed (controller flag --cluster-api-load-balancers). @default false */
    readonly allowLoadBalancers?: boolean;
  } = {},
): Promise<{ requeueAfterMs?: number }> {
  const cached = store.kubevisorCluster(namespace, name);
  if (!cached) return {};
  // A copy: the cache's objects are shared, and this pass tracks its own writes' resourceVersion.
  let kc = { ...cached, metadata: { ...cached.metadata, namespace } };
  const owner = capiOwner(kc.metadata, 'Cluster');
  const cluster = owner ? store.cluster(namespace, owner.name) : undefined;
  const serviceName = controlPlaneServiceName(name);
  const now = (options.now ?? (() => new Date()))();
  const allowLoadBalancers = options.allowLoadBalancers ?? false;
  let service: ServiceView | undefined = store.service(namespace, serviceName);
  let decision = decideKubevisorCluster({ kc, cluster, service, now, allowLoadBalancers });
  // The cache holds only the provider's labelled Services: before creating one, look for another object of the name
  // (the create would fail; an older Service of the provider's, made before the label, is put back instead).
  if (!service && decision.actions.some((a) => a.type === 'createService')) {
    service = await store.readService(namespace, serviceName);
    if (service) decision = decideKubevisorCluster({ kc, cluster, service, now, allowLoadBalancers });
  }
  let requeueAfterMs: number | undefined;
  const refused = (error: unknown): boolean => {
    // Refused as invalid: retrying cannot help until the spec changes, so the condition says why instead.
    if (!isApiError(error, 422) || !decision.status) return false;
    const message = `the API server refused Service ${serviceName}: ${error.serverMessage || error.message}`;
    const before = kc.status?.conditions?.find((c) => c.type === 'Ready');
    decision.status.conditions = setCondition(
      decision.status.conditions,
      'Ready',
      'False',
      SERVICE_INVALID,
      message,
      now,
      kc.metadata.generation,
    );
    if (before?.reason !== SERVICE_INVALID) {
      void store.event(kc, 'Warning', SERVICE_INVALID, message).catch(() => undefined);
    }
    return true;
  };

  for (const a of decision.actions) {
    switch (a.type) {
      case 'addFinalizer': {
        const resourceVersion = await store.addFinalizer(kc, KUBEVISOR_CLUSTER_FINALIZER);
        kc = {
          ...kc,
          metadata: {
            ...kc.metadata,
            resourceVersion,
            finalizers: [...(kc.metadata.finalizers ?? []), KUBEVISOR_CLUSTER_FINALIZER],
          },
        };
        break;
      }
      case 'removeFinalizer':
        await store.removeFinalizer(kc, KUBEVISOR_CLUSTER_FINALIZER);
        return {};
      case 'createService':
        try {
          await store.createService(a.service);
          void store.event(kc, 'Normal', 'ServiceCreated', `created Service ${serviceName}`).catch(() => undefined);
        } catch (error) {
          // Made by someone else since this pass read: never merged into; the next pass sees whose it is.
          if (isAlreadyExists(error)) requeueAfterMs = CREATE_RACE_REQUEUE_MS;
          else if (!refused(error)) throw error;
        }
        break;
      case 'applyService':
        try {
          await store.applyService(a.service);
          void store
            .event(
              kc,
              'Normal',
              'ServiceApplied',
              `applied Service ${serviceName} (the spec changed, or the Service differed from it)`,
            )
            .catch(() => undefined);
        } catch (error) {
          // A 409 (the Service changed or was replaced since it was read) fails the pass: retried from fresh reads.
          if (!refused(error)) throw error;
        }
        break;
      case 'deleteService':
        await store.deleteService(namespace, a.name, a.uid);
        break;
      case 'setEndpoint': {
        const resourceVersion = await store.patchSpec(kc, { controlPlaneEndpoint: a.endpoint });
        kc = {
          ...kc,
          metadata: { ...kc.metadata, resourceVersion },
          spec: { ...kc.spec, controlPlaneEndpoint: a.endpoint },
        };
        break;
      }
      case 'event':
        // Events are best effort: a failed Event must not fail or slow down the reconcile.
        void store.event(kc, a.warning ? 'Warning' : 'Normal', a.reason, a.message).catch(() => undefined);
        break;
    }
  }
  if (decision.status && JSON.stringify(decision.status) !== JSON.stringify(kc.status ?? {})) {
    await store.updateStatus(kc, decision.status);
  }
  return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
}
