/**
 * The KubevisorCluster lifecycle as a pure function (Cluster API infrastructure contract v1beta2): from the object,
 * its owner Cluster and the control-plane Service to the status it should have and the actions that get it there.
 *
 * Externally managed (label cluster.x-k8s.io/managed-by) → nothing at all. Paused (Cluster spec.paused, or the
 * cluster.x-k8s.io/paused annotation) → only the Paused condition. Deleted → Ready False Deleting while the Service
 * goes, then the finalizer. Otherwise: wait for Cluster API to set the owner Cluster, and for that Cluster (its UID) to
 * name this object back in spec.infrastructureRef → finalizer → a LoadBalancer Service only where the platform allows
 * it → keep the control-plane Service (created when absent, and put back whenever someone edits what the provider
 * declares) → the endpoint: the user's, else the Service's load balancer address or cluster IP, written once to
 * spec.controlPlaneEndpoint → status.initialization.provisioned.
 */
import { createHash } from 'node:crypto';
import type { ApiEndpoint, KubevisorClusterStatus } from '../../api';
import {
  CLUSTER_NAME_LABEL,
  CONTROL_PLANE_PORT,
  DNS_1035_LABEL,
  INFRASTRUCTURE_API_VERSION,
  KUBEVISOR_CLUSTER_LABEL,
  MANAGED_BY_LABEL,
  controlPlaneSelector,
} from '../../api';
import type { CapiClusterView, KubevisorClusterObject, ServiceView } from './kubevisor-cluster-api';
import { capiOwner, controllerUid, hasFinalizer, ownerMismatch, pausedBy, readyOf } from './kubevisor-cluster-api';
import { setCondition } from './vm-lifecycle';

/** The controller flag that lets KubevisorClusters ask for LoadBalancer Services (platform prop `clusterApi`). */
export const LOAD_BALANCERS_FLAG = '--cluster-api-load-balancers';

export const KUBEVISOR_CLUSTER_FINALIZER = 'kubevisorcluster.infrastructure.cluster.x-k8s.io';
/** Name of the Service's one port (the nested API server). */
export const CONTROL_PLANE_PORT_NAME = 'kube-apiserver';

/** Reasons of the Ready condition (Cluster API mirrors it into the Cluster's InfrastructureReady). */
export const ClusterReason = {
  WaitingForCluster: 'WaitingForCluster',
  WaitingForService: 'WaitingForService',
  WaitingForLoadBalancer: 'WaitingForLoadBalancer',
  ServiceConflict: 'ServiceConflict',
  /** The owner reference's Cluster is another object (UID), or does not name this KubevisorCluster back. */
  OwnerMismatch: 'OwnerMismatch',
  /** type LoadBalancer, where the platform does not allow it ({@link LOAD_BALANCERS_FLAG}). */
  LoadBalancerNotAllowed: 'LoadBalancerNotAllowed',
  Provisioned: 'Provisioned',
  Deleting: 'Deleting',
} as const;

export type KubevisorClusterAction =
  | { type: 'addFinalizer' }
  | { type: 'removeFinalizer' }
  /** No Service of that name existed when the pass read: create it (never merged into one made meanwhile). */
  | { type: 'createService'; service: Record<string, unknown> }
  /** The provider's Service as read, put back: carries the observed UID and resourceVersion (a guarded apply). */
  | { type: 'applyService'; service: Record<string, unknown> }
  | { type: 'deleteService'; name: string; uid: string }
  | { type: 'setEndpoint'; endpoint: ApiEndpoint }
  | { type: 'event'; reason: string; message: string; warning: boolean };

export interface KubevisorClusterDecision {
  /** The status to write; undefined when nothing of the object may be written (externally managed, going away). */
  status?: KubevisorClusterStatus;
  actions: KubevisorClusterAction[];
}

export interface KubevisorClusterInput {
  readonly kc: KubevisorClusterObject;
  /** The Cluster the owner reference names, if cached. */
  readonly cluster: CapiClusterView | undefined;
  /** The Service named by {@link controlPlaneServiceName}, whoever made it. */
  readonly service: ServiceView | undefined;
  /**
   * Whether the platform lets KubevisorClusters have LoadBalancer Services ({@link LOAD_BALANCERS_FLAG}): a load
   * balancer may claim addresses (its class, the implementation's annotations) that the tenant must not choose.
   * @default false
   */
  readonly allowLoadBalancers?: boolean;
  readonly now: Date;
}

/**
 * The control-plane Service's name: the KubevisorCluster's own when it is a valid Service name (a DNS-1035 label:
 * 63 characters at most, starting with a letter, no dots), else a readable form of it with a hash of the whole name,
 * so two long names sharing their first 56 characters still get distinct Services.
 */
export function controlPlaneServiceName(kcName: string): string {
  if (kcName.length <= 63 && DNS_1035_LABEL.test(kcName)) return kcName;
  const hash = createHash('sha256').update(kcName).digest('hex').slice(0, 5);
  const readable = kcName
    .replace(/[^-a-z0-9]/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 63 - 6 - 3)
    .replace(/-+$/, '');
  return `${readable || 'kc'}-${hash}`;
}

/** The control-plane Service the provider keeps: selects the cluster's control-plane VM pods, port 6443. */
export function desiredService(kc: KubevisorClusterObject, clusterName: string): Record<string, unknown> {
  const cps = kc.spec?.controlPlaneService ?? {};
  const type = cps.type ?? 'ClusterIP';
  const name = controlPlaneServiceName(kc.metadata.name);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: kc.metadata.namespace,
      // The provider's own label (its Service cache selects by it), and Cluster API's.
      labels: { [CLUSTER_NAME_LABEL]: clusterName, [KUBEVISOR_CLUSTER_LABEL]: name },
      ownerReferences: [
        {
          apiVersion: INFRASTRUCTURE_API_VERSION,
          kind: 'KubevisorCluster',
          name: kc.metadata.name,
          uid: kc.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      type,
      // The VM pods carry their VM's labels, which the machine reconciler sets from the Machine's.
      selector: controlPlaneSelector(clusterName),
      ports: [
        { name: CONTROL_PLANE_PORT_NAME, port: CONTROL_PLANE_PORT, targetPort: CONTROL_PLANE_PORT, protocol: 'TCP' },
      ],
      ...(type === 'LoadBalancer' && cps.loadBalancerClass ? { loadBalancerClass: cps.loadBalancerClass } : {}),
    },
  };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const includes = (have: Record<string, string> | undefined, want: Record<string, string> | undefined) =>
  Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);

/**
 * Whether the Service differs from the provider's declaration in anything the provider declares (an edit, or a spec
 * change). What others add (annotations, finalizers, allocated node ports, a load balancer class a webhook defaults
 * where the spec names none) is theirs and stays.
 */
export function serviceDrifted(service: ServiceView, desired: Record<string, unknown>): boolean {
  const want = desired as {
    metadata: { labels: Record<string, string> };
    spec: { type: string; selector: Record<string, string>; loadBalancerClass?: string; ports: unknown[] };
  };
  const ports = (service.spec?.ports ?? []).map(({ name, port, targetPort, protocol }) => ({
    name,
    port,
    targetPort,
    protocol: protocol ?? 'TCP',
  }));
  return (
    (service.spec?.type ?? 'ClusterIP') !== want.spec.type ||
    !sameJson(service.spec?.selector ?? {}, want.spec.selector) ||
    !sameJson(ports, want.spec.ports) ||
    (want.spec.loadBalancerClass !== undefined && service.spec?.loadBalancerClass !== want.spec.loadBalancerClass) ||
    !includes(service.metadata.labels, want.metadata.labels)
  );
}

/**
 * The endpoint the Service offers, or why there is none yet. Read only from a Service of the declared type: a Service
 * about to change type (applied in this pass) offers nothing until the next pass sees it changed.
 */
export function serviceEndpoint(
  service: ServiceView | undefined,
  type: 'ClusterIP' | 'LoadBalancer',
): { endpoint: ApiEndpoint } | { reason: string; message: string } {
  if (!service || (service.spec?.type ?? 'ClusterIP') !== type) {
    return { reason: ClusterReason.WaitingForService, message: `waiting for the control-plane Service (${type})` };
  }
  if (type === 'LoadBalancer') {
    const ingress = service.status?.loadBalancer?.ingress?.find((i) => i.ip || i.hostname);
    const host = ingress?.ip || ingress?.hostname;
    if (!host) {
      return {
        reason: ClusterReason.WaitingForLoadBalancer,
        message:
          `waiting for a load balancer address on Service ${service.metadata.name} (status.loadBalancer.ingress); ` +
          'is a load balancer implementation installed for its class?',
      };
    }
    return { endpoint: { host, port: CONTROL_PLANE_PORT } };
  }
  const ip = service.spec?.clusterIP;
  if (!ip || ip === 'None') {
    return { reason: ClusterReason.WaitingForService, message: `Service ${service.metadata.name} has no cluster IP` };
  }
  return { endpoint: { host: ip, port: CONTROL_PLANE_PORT } };
}

export function decideKubevisorCluster(input: KubevisorClusterInput): KubevisorClusterDecision {
  const { kc, cluster, service, now, allowLoadBalancers = false } = input;
  const meta = kc.metadata;
  // Another system owns this infrastructure (contract): not even a condition is written.
  if (meta.labels?.[MANAGED_BY_LABEL] !== undefined) return { actions: [] };

  const old = kc.status ?? {};
  const status: KubevisorClusterStatus = JSON.parse(JSON.stringify(old)) as KubevisorClusterStatus;
  const actions: KubevisorClusterAction[] = [];
  const generation = meta.generation;
  const condition = (type: string, s: 'True' | 'False', reason: string, message: string) =>
    (status.conditions = setCondition(status.conditions, type, s, reason, message, now, generation));
  const ready = (s: 'True' | 'False', reason: string, message: string) => condition('Ready', s, reason, message);

  const paused = pausedBy(meta, cluster, 'KubevisorCluster');
  if (paused) {
    // Nothing else, deletion included: clusterctl move pauses a cluster while it copies and deletes its objects.
    condition('Paused', 'True', 'Paused', paused);
    return { status, actions };
  }
  condition('Paused', 'False', 'NotPaused', 'reconciling');

  const ours = service !== undefined && controllerUid(service.metadata) === meta.uid;
  if (meta.deletionTimestamp) {
    if (!hasFinalizer(meta, KUBEVISOR_CLUSTER_FINALIZER)) return { actions };
    // The Service is owner-referenced too, so the garbage collector would take it; deleting it here (and waiting for
    // it to be gone: a load balancer is released first) makes the cluster's deletion complete when Cluster API sees
    // this object gone.
    if (ours) {
      if (!service.metadata.deletionTimestamp) {
        actions.push({ type: 'deleteService', name: service.metadata.name, uid: service.metadata.uid });
      }
      ready('False', ClusterReason.Deleting, `waiting for Service ${service.metadata.name} to be deleted`);
      return { status, actions };
    }
    actions.push({ type: 'removeFinalizer' });
    return { actions };
  }

  const owner = capiOwner(meta, 'Cluster');
  if (!owner) {
    ready('False', ClusterReason.WaitingForCluster, 'waiting for Cluster API to set the owner Cluster');
    return { status, actions };
  }
  if (!cluster) {
    ready('False', ClusterReason.WaitingForCluster, `waiting for Cluster ${owner.name}`);
    return { status, actions };
  }
  const mismatch = ownerMismatch(owner, cluster, { kind: 'KubevisorCluster', name: meta.name });
  if (mismatch) {
    ready('False', ClusterReason.OwnerMismatch, `${mismatch}; waiting for Cluster API to set the owner`);
    return { status, actions };
  }
  if (!hasFinalizer(meta, KUBEVISOR_CLUSTER_FINALIZER)) actions.push({ type: 'addFinalizer' });

  const type = kc.spec?.controlPlaneService?.type ?? 'ClusterIP';
  if (type === 'LoadBalancer' && !allowLoadBalancers) {
    ready(
      'False',
      ClusterReason.LoadBalancerNotAllowed,
      'spec.controlPlaneService.type LoadBalancer is not allowed on this platform: the controller runs without ' +
        `${LOAD_BALANCERS_FLAG} (platform prop clusterApi: { loadBalancers: true }); use ClusterIP, or ask the ` +
        'platform operator',
    );
    return { status, actions };
  }

  const name = controlPlaneServiceName(meta.name);
  status.serviceName = name;
  if (service && !ours) {
    const message =
      `Service ${name} already exists and is not controlled by this KubevisorCluster; it is not adopted: ` +
      'delete it (or set spec.controlPlaneEndpoint and remove the conflict) so the provider can create its own';
    if (readyOf(old.conditions)?.reason !== ClusterReason.ServiceConflict) {
      actions.push({ type: 'event', reason: ClusterReason.ServiceConflict, message, warning: true });
    }
    ready('False', ClusterReason.ServiceConflict, message);
    return { status, actions };
  }
  if (service?.metadata.deletionTimestamp) {
    ready('False', ClusterReason.WaitingForService, `Service ${name} is being deleted; it is created again once gone`);
    return { status, actions };
  }
  const desired = desiredService(kc, cluster.metadata.name);
  // A spec change since the last pass is applied even when every declared field still matches: server-side apply
  // then also removes what the provider no longer declares (an annotation taken out of the spec).
  const specChanged = readyOf(old.conditions)?.observedGeneration !== generation;
  if (!service) {
    actions.push({ type: 'createService', service: desired });
  } else if (specChanged || serviceDrifted(service, desired)) {
    const metadata = desired.metadata as Record<string, unknown>;
    // Guarded: a Service deleted and made again (by anyone) since this pass read it is never rewritten.
    const guarded = {
      ...desired,
      metadata: { ...metadata, uid: service.metadata.uid, resourceVersion: service.metadata.resourceVersion },
    };
    actions.push({ type: 'applyService', service: guarded });
  }

  const set = kc.spec?.controlPlaneEndpoint;
  let endpoint: ApiEndpoint | undefined = set?.host ? set : undefined;
  if (!endpoint) {
    const offered = serviceEndpoint(service, type);
    if (!('endpoint' in offered)) {
      ready('False', offered.reason, offered.message);
      return { status, actions };
    }
    endpoint = offered.endpoint;
    actions.push({ type: 'setEndpoint', endpoint });
    actions.push({
      type: 'event',
      reason: 'ControlPlaneEndpointSet',
      message: `control-plane endpoint ${endpoint.host}:${endpoint.port} (Service ${name})`,
      warning: false,
    });
  }
  status.initialization = { ...status.initialization, provisioned: true };
  ready('True', ClusterReason.Provisioned, `control-plane endpoint ${endpoint.host}:${endpoint.port}, Service ${name}`);
  return { status, actions };
}
