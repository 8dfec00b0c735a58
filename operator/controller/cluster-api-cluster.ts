/**
 * The real {@link ClusterApiStore} (controller flag `--cluster-api`): informer caches of KubevisorClusters,
 * KubevisorMachines, Cluster API's Clusters and Machines (v1beta2) and the control-plane Services, plus the VM cache the
 * VM controller already keeps; writes through the API server. It maps every cache event to the keys it affects: a
 * Cluster wakes its KubevisorCluster and machines (paused, infrastructure provisioned), a Machine its KubevisorMachine
 * (bootstrap data), a Service its KubevisorCluster, a VM the machine it belongs to or is named after.
 *
 * Off by default: without Cluster API's CRDs the Cluster and Machine lists answer 404 (the informers retry until the
 * CRDs appear, and the provider's workers wait for them; the VM controller does not).
 */
import {
  API_VERSION,
  CLUSTER_NAME_LABEL,
  CONTROL_PLANE_LABEL,
  DEPLOYMENT_NAME_LABEL,
  INFRASTRUCTURE_API_VERSION,
  KUBEVISOR_CLUSTER_LABEL,
  PAUSED_ANNOTATION,
} from '../../api';
import type { KubeClient, KubeObject, KubeObjectRef, Logger } from '../kube';
import { Informer, keyOf } from '../kube';
import type {
  CapiClusterView,
  CapiMachineView,
  ClusterApiStore,
  InfrastructureObject,
  KubevisorClusterObject,
  KubevisorMachineObject,
  MachineVmView,
  ObjectView,
  SecretView,
  ServiceView,
} from './kubevisor-cluster-api';
import { CLUSTER_API_VERSION, capiOwner } from './kubevisor-cluster-api';
import { statusPatch, withoutManagedFields } from './kube-cluster';

type Kc = KubeObject & KubevisorClusterObject;
type Km = KubeObject & KubevisorMachineObject;
type CapiCluster = KubeObject & CapiClusterView;
type CapiMachine = KubeObject & CapiMachineView;
type Service = KubeObject & ServiceView;

const ns = (o: { metadata: { namespace?: string } }) => o.metadata.namespace;

/** Only these keys of a map (labels, annotations), or undefined when none is there. */
function only(m: Record<string, string> | undefined, keys: readonly string[]): Record<string, string> | undefined {
  const kept = Object.entries(m ?? {}).filter(([k]) => keys.includes(k));
  return kept.length ? Object.fromEntries(kept) : undefined;
}

/** The labels and annotations of Cluster API's objects the reconcilers read; nothing else of theirs is cached. */
const CAPI_LABELS_READ = [CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, DEPLOYMENT_NAME_LABEL] as const;
const CAPI_ANNOTATIONS_READ = [PAUSED_ANNOTATION] as const;

/**
 * The metadata the provider reads of a Cluster API object (a Cluster or Machine anywhere in the cluster): identity,
 * owners, Cluster API's three labels and the paused annotation. Their other labels, annotations, finalizers and
 * managedFields are not cached.
 */
function capiMetadataView(m: ObjectView): ObjectView {
  const { name, namespace, uid, resourceVersion } = m;
  const labels = only(m.labels, CAPI_LABELS_READ);
  const annotations = only(m.annotations, CAPI_ANNOTATIONS_READ);
  return {
    name,
    namespace,
    uid,
    resourceVersion,
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
    ...(m.ownerReferences ? { ownerReferences: m.ownerReferences } : {}),
  };
}

/** The metadata the provider reads of its own Service (owners, labels, deletion). */
function serviceMetadataView(m: ObjectView): ObjectView {
  const { name, namespace, uid, resourceVersion, deletionTimestamp, labels, ownerReferences } = m;
  return { name, namespace, uid, resourceVersion, deletionTimestamp, labels, ownerReferences };
}

const refView = (r: { apiGroup?: string; kind?: string; name?: string } | undefined) =>
  r && { apiGroup: r.apiGroup, kind: r.kind, name: r.name };

function clusterView(c: CapiCluster): CapiCluster {
  const infrastructureProvisioned = c.status?.initialization?.infrastructureProvisioned;
  return {
    apiVersion: c.apiVersion,
    kind: c.kind,
    metadata: capiMetadataView(c.metadata),
    spec: { paused: c.spec?.paused, infrastructureRef: refView(c.spec?.infrastructureRef) },
    status: { initialization: { infrastructureProvisioned } },
  } as CapiCluster;
}

function machineView(m: CapiMachine): CapiMachine {
  return {
    apiVersion: m.apiVersion,
    kind: m.kind,
    metadata: capiMetadataView(m.metadata),
    spec: {
      clusterName: m.spec?.clusterName,
      bootstrap: { dataSecretName: m.spec?.bootstrap?.dataSecretName },
      infrastructureRef: refView(m.spec?.infrastructureRef),
    },
  } as CapiMachine;
}

function serviceView(s: Service): Service {
  const spec = s.spec;
  return {
    apiVersion: s.apiVersion,
    kind: s.kind,
    metadata: serviceMetadataView(s.metadata),
    spec: spec && {
      type: spec.type,
      clusterIP: spec.clusterIP,
      selector: spec.selector,
      ports: spec.ports,
      loadBalancerClass: spec.loadBalancerClass,
    },
    status: s.status,
  } as Service;
}

/** What of a Cluster or Machine the reconcilers act on; its other changes (status heartbeats) wake nobody. */
const relevant = (o: CapiCluster | CapiMachine) => {
  const { resourceVersion: _rv, ...metadata } = o.metadata;
  return JSON.stringify([metadata, o.spec, 'status' in o ? o.status : undefined]);
};

export interface ClusterApiClusterOptions {
  /** Only watch this namespace. @default all namespaces */
  readonly namespace?: string;
  readonly logger?: Logger;
  /** Full relist period of the informers. @default 300000 */
  readonly resyncMs?: number;
}

export class KubeClusterApi implements ClusterApiStore {
  readonly kubevisorClusters: Informer<Kc>;
  readonly kubevisorMachines: Informer<Km>;
  readonly clusters: Informer<CapiCluster>;
  readonly machines: Informer<CapiMachine>;
  readonly services: Informer<Service>;

  /** `vms`: the VM controller's cache (kube-cluster.ts), shared rather than watched twice. */
  constructor(
    private readonly client: KubeClient,
    private readonly vms: Informer<KubeObject>,
    options: ClusterApiClusterOptions = {},
  ) {
    const path = options.namespace ? `/namespaces/${encodeURIComponent(options.namespace)}` : '';
    const common = {
      client,
      logger: options.logger,
      ...(options.resyncMs !== undefined ? { resyncMs: options.resyncMs } : {}),
    };
    this.kubevisorClusters = new Informer<Kc>({
      ...common,
      name: 'kubevisorclusters',
      path: `/apis/${INFRASTRUCTURE_API_VERSION}${path}/kubevisorclusters`,
      apiVersion: INFRASTRUCTURE_API_VERSION,
      kind: 'KubevisorCluster',
      transform: withoutManagedFields,
      indexers: { owner: (o) => ownerKey(o, 'Cluster') },
    });
    this.kubevisorMachines = new Informer<Km>({
      ...common,
      name: 'kubevisormachines',
      path: `/apis/${INFRASTRUCTURE_API_VERSION}${path}/kubevisormachines`,
      apiVersion: INFRASTRUCTURE_API_VERSION,
      kind: 'KubevisorMachine',
      transform: withoutManagedFields,
      indexers: {
        owner: (o) => ownerKey(o, 'Machine'),
        cluster: (o) => {
          const cluster = o.metadata.labels?.[CLUSTER_NAME_LABEL];
          return cluster ? [keyOf(ns(o), cluster)] : [];
        },
      },
    });
    this.clusters = new Informer<CapiCluster>({
      ...common,
      name: 'clusters',
      path: `/apis/${CLUSTER_API_VERSION}${path}/clusters`,
      apiVersion: CLUSTER_API_VERSION,
      kind: 'Cluster',
      transform: clusterView,
    });
    this.machines = new Informer<CapiMachine>({
      ...common,
      name: 'machines',
      path: `/apis/${CLUSTER_API_VERSION}${path}/machines`,
      apiVersion: CLUSTER_API_VERSION,
      kind: 'Machine',
      transform: machineView,
    });
    // Only Services carrying the provider's own label: not every Service of the cluster, nor every Service someone
    // labelled with a cluster name.
    this.services = new Informer<Service>({
      ...common,
      name: 'control-plane-services',
      path: `/api/v1${path}/services`,
      labelSelector: KUBEVISOR_CLUSTER_LABEL,
      apiVersion: 'v1',
      kind: 'Service',
      transform: serviceView,
    });
  }

  /** The informers this store starts (the VM cache is the VM controller's). */
  get informers(): Informer<KubeObject>[] {
    return [
      this.kubevisorClusters,
      this.kubevisorMachines,
      this.clusters,
      this.machines,
      this.services,
    ] as unknown as Informer<KubeObject>[];
  }

  /** Calls `cluster(key)` and `machine(key)` for every KubevisorCluster and KubevisorMachine a change may affect. */
  route(enqueue: { cluster(key: string): void; machine(key: string): void }): void {
    const kcChanged = (o: Kc) => enqueue.cluster(keyOf(ns(o), o.metadata.name));
    const kmChanged = (o: Km) => enqueue.machine(keyOf(ns(o), o.metadata.name));
    const clusterChanged = (c: CapiCluster) => {
      const key = keyOf(ns(c), c.metadata.name);
      for (const kc of this.kubevisorClusters.byIndex('owner', key)) kcChanged(kc);
      for (const km of this.kubevisorMachines.byIndex('cluster', key)) kmChanged(km);
    };
    const machineChanged = (m: CapiMachine) => {
      for (const km of this.kubevisorMachines.byIndex('owner', keyOf(ns(m), m.metadata.name))) kmChanged(km);
    };
    const serviceChanged = (s: Service) => {
      const owner = s.metadata.ownerReferences?.find((r) => r.controller && r.kind === 'KubevisorCluster');
      if (owner && owner.apiVersion.split('/')[0] === INFRASTRUCTURE_API_VERSION.split('/')[0]) {
        enqueue.cluster(keyOf(ns(s), owner.name));
      }
    };
    // A VM wakes the machine that controls it, and the machine of its name: a foreign VM holding the name
    // (VirtualMachineConflict) must wake the machine when it goes.
    const vmChanged = (v: KubeObject) => {
      const namespace = ns(v);
      const owner = v.metadata.ownerReferences?.find((r) => r.controller && r.kind === 'KubevisorMachine');
      if (owner) enqueue.machine(keyOf(namespace, owner.name));
      const name = v.metadata.name ?? '';
      if (owner?.name !== name && this.kubevisorMachines.get(namespace, name)) enqueue.machine(keyOf(namespace, name));
    };
    this.kubevisorClusters.onAdd(kcChanged);
    this.kubevisorClusters.onUpdate((_o, n) => kcChanged(n));
    this.kubevisorClusters.onDelete(kcChanged);
    this.kubevisorMachines.onAdd(kmChanged);
    this.kubevisorMachines.onUpdate((_o, n) => kmChanged(n));
    this.kubevisorMachines.onDelete(kmChanged);
    this.clusters.onAdd(clusterChanged);
    this.clusters.onUpdate((o, n) => {
      if (relevant(o) !== relevant(n)) clusterChanged(n);
    });
    this.clusters.onDelete(clusterChanged);
    this.machines.onAdd(machineChanged);
    this.machines.onUpdate((o, n) => {
      if (relevant(o) !== relevant(n)) machineChanged(n);
    });
    this.machines.onDelete(machineChanged);
    this.services.onAdd(serviceChanged);
    this.services.onUpdate((_o, n) => serviceChanged(n));
    this.services.onDelete(serviceChanged);
    this.vms.onAdd(vmChanged);
    this.vms.onUpdate((_o, n) => vmChanged(n));
    this.vms.onDelete(vmChanged);
  }

  kubevisorCluster(namespace: string, name: string): KubevisorClusterObject | undefined {
    return this.kubevisorClusters.get(namespace, name);
  }
  kubevisorMachine(namespace: string, name: string): KubevisorMachineObject | undefined {
    return this.kubevisorMachines.get(namespace, name);
  }
  cluster(namespace: string, name: string): CapiClusterView | undefined {
    return this.clusters.get(namespace, name);
  }
  machine(namespace: string, name: string): CapiMachineView | undefined {
    return this.machines.get(namespace, name);
  }
  service(namespace: string, name: string): ServiceView | undefined {
    return this.services.get(namespace, name);
  }
  async readService(namespace: string, name: string): Promise<ServiceView | undefined> {
    const s = await this.client.tryGet<Service>('v1', 'Service', name, namespace);
    return s && serviceView(s);
  }
  vm(namespace: string, name: string): MachineVmView | undefined {
    return this.vms.get(namespace, name) as unknown as MachineVmView | undefined;
  }

  async readSecret(namespace: string, name: string): Promise<SecretView | undefined> {
    // `get` of Secrets is the controller's already (CONTROLLER_RULES); only the type and metadata are kept.
    const s = await this.client.tryGet<KubeObject & { type?: string }>('v1', 'Secret', name, namespace);
    return s && { metadata: serviceMetadataView(s.metadata as ObjectView), type: s.type };
  }

  async createService(service: Record<string, unknown>): Promise<void> {
    await this.client.create(service as unknown as KubeObject);
  }
  async applyService(service: Record<string, unknown>): Promise<void> {
    // metadata.uid and metadata.resourceVersion in the applied object are preconditions (409 when they differ).
    await this.client.apply(service as unknown as KubeObject, { force: true });
  }
  async deleteService(namespace: string, name: string, uid: string): Promise<void> {
    await this.client.delete('v1', 'Service', name, namespace, { ignoreNotFound: true, preconditions: { uid } });
  }
  async createVm(vm: Record<string, unknown>): Promise<void> {
    await this.client.create(vm as unknown as KubeObject);
  }
  async deleteVm(namespace: string, name: string, uid: string): Promise<void> {
    await this.client.delete(API_VERSION, 'VirtualMachine', name, namespace, {
      ignoreNotFound: true,
      preconditions: { uid },
    });
  }
  async patchSpec(obj: InfrastructureObject, spec: Record<string, unknown>): Promise<string | undefined> {
    const patched = await this.client.patch(asRef(obj), 'merge', {
      metadata: { resourceVersion: obj.metadata.resourceVersion },
      spec,
    });
    return patched.metadata.resourceVersion;
  }
  async updateStatus(obj: InfrastructureObject, status: object): Promise<void> {
    await this.client.patchStatus(asRef(obj), statusPatch(obj, obj.status, status));
  }
  async addFinalizer(obj: InfrastructureObject, finalizer: string): Promise<string | undefined> {
    return (await this.client.addFinalizer(obj as unknown as KubeObject, finalizer)).metadata.resourceVersion;
  }
  async removeFinalizer(obj: InfrastructureObject, finalizer: string): Promise<void> {
    await this.client.removeFinalizer(obj as unknown as KubeObject, finalizer);
  }
  async event(obj: InfrastructureObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await this.client.createEvent(obj as unknown as KubeObject, { type, reason, message });
  }
}

function ownerKey(o: Kc | Km, kind: 'Cluster' | 'Machine'): string[] {
  const owner = capiOwner(o.metadata, kind);
  return owner ? [keyOf(ns(o), owner.name)] : [];
}

const asRef = (obj: InfrastructureObject): KubeObjectRef => ({
  apiVersion: obj.apiVersion,
  kind: obj.kind,
  metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
});
