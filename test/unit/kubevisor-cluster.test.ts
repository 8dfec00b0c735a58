/**
 * The KubevisorCluster lifecycle (operator/controller/kubevisor-cluster-lifecycle.ts) and its reconciler against an
 * in-memory store: externally managed and paused objects are left alone, the owner Cluster is waited for, the
 * control-plane Service is created, kept in sync and never taken from someone else, the endpoint is the user's or the
 * Service's (load balancer address or cluster IP) and written once, and deletion removes the Service then the finalizer.
 */
import type { Condition, KubevisorClusterStatus } from '../../api';
import { INFRASTRUCTURE_API_VERSION, INFRASTRUCTURE_GROUP } from '../../api';
import type {
  CapiClusterView,
  ClusterApiStore,
  InfrastructureObject,
  KubevisorClusterObject,
  ServiceView,
} from '../../operator/controller/kubevisor-cluster-api';
import { KubeApiError } from '../../operator/kube/errors';
import {
  KUBEVISOR_CLUSTER_FINALIZER,
  controlPlaneServiceName,
  decideKubevisorCluster,
  desiredService,
  serviceDrifted,
} from '../../operator/controller/kubevisor-cluster-lifecycle';
import type { KubevisorClusterAction } from '../../operator/controller/kubevisor-cluster-lifecycle';
import { SERVICE_INVALID, reconcileKubevisorClusterKey } from '../../operator/controller/kubevisor-cluster-reconciler';

const NOW = new Date('2026-11-22T12:00:00Z');
const NS = 'tenant-a';

function kubevisorCluster(over: Partial<KubevisorClusterObject> = {}): KubevisorClusterObject {
  return {
    apiVersion: INFRASTRUCTURE_API_VERSION,
    kind: 'KubevisorCluster',
    ...over,
    metadata: {
      name: 'demo',
      namespace: NS,
      uid: 'kc-uid',
      generation: 1,
      resourceVersion: '10',
      finalizers: [KUBEVISOR_CLUSTER_FINALIZER],
      ownerReferences: [{ apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', name: 'demo', uid: 'cluster-uid' }],
      ...over.metadata,
    },
    spec: over.spec ?? {},
  };
}

const capiCluster = (paused = false): CapiClusterView => ({
  metadata: { name: 'demo', namespace: NS, uid: 'cluster-uid' },
  spec: { paused, infrastructureRef: { apiGroup: INFRASTRUCTURE_GROUP, kind: 'KubevisorCluster', name: 'demo' } },
});

/** The Service the provider made for `kc`, as the API server holds it (allocated cluster IP, defaults). */
function ownService(
  kc: KubevisorClusterObject,
  over: { clusterIP?: string; ingress?: { ip?: string; hostname?: string }[] } = {},
): ServiceView {
  const desired = desiredService(kc, 'demo') as unknown as ServiceView;
  return {
    metadata: { ...desired.metadata, uid: 'svc-uid', resourceVersion: '7' },
    spec: { ...desired.spec, clusterIP: over.clusterIP ?? '10.96.0.10' },
    status: { loadBalancer: { ingress: over.ingress ?? [] } },
  };
}

const ready = (s: KubevisorClusterStatus | undefined): Condition | undefined =>
  s?.conditions?.find((c) => c.type === 'Ready');
const paused = (s: KubevisorClusterStatus | undefined): Condition | undefined =>
  s?.conditions?.find((c) => c.type === 'Paused');
const types = (actions: KubevisorClusterAction[]) => actions.map((a) => a.type);

describe('the Service name', () => {
  test('is the KubevisorCluster name when it is a valid Service name', () => {
    expect(controlPlaneServiceName('demo')).toBe('demo');
  });
  test('is bounded to 63 characters with a hash, distinct for long names that share a prefix', () => {
    const a = controlPlaneServiceName(`${'a'.repeat(70)}-one`);
    const b = controlPlaneServiceName(`${'a'.repeat(70)}-two`);
    for (const n of [a, b]) expect(n).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(a).not.toBe(b);
  });
  test('turns a name a Service cannot take (dots, a leading digit) into a DNS-1035 label', () => {
    for (const name of ['1cluster', 'my.cluster.example']) {
      expect(controlPlaneServiceName(name)).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    }
    expect(controlPlaneServiceName('my.cluster')).not.toBe(controlPlaneServiceName('my-cluster'));
  });
});

describe('the control-plane Service', () => {
  test('selects the cluster’s control-plane VM pods on 6443, controlled by the KubevisorCluster', () => {
    const s = desiredService(kubevisorCluster(), 'demo') as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(s.metadata).toEqual({
      name: 'demo',
      namespace: NS,
      labels: { 'cluster.x-k8s.io/cluster-name': 'demo', 'infrastructure.cluster.x-k8s.io/kubevisor-cluster': 'demo' },
      ownerReferences: [
        {
          apiVersion: INFRASTRUCTURE_API_VERSION,
          kind: 'KubevisorCluster',
          name: 'demo',
          uid: 'kc-uid',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(s.spec).toEqual({
      type: 'ClusterIP',
      selector: { 'cluster.x-k8s.io/cluster-name': 'demo', 'cluster.x-k8s.io/control-plane': '' },
      ports: [{ name: 'kube-apiserver', port: 6443, targetPort: 6443, protocol: 'TCP' }],
    });
  });
  test('takes type and load balancer class from spec.controlPlaneService, and no annotations from anywhere', () => {
    const kc = kubevisorCluster({
      spec: {
        // An object written before the field was removed: whatever it holds never reaches the Service.
        controlPlaneService: {
          type: 'LoadBalancer',
          loadBalancerClass: 'example.com/lb',
          annotations: { 'metallb.universe.tf/loadBalancerIPs': '192.0.2.1' },
        } as never,
      },
    });
    const s = desiredService(kc, 'demo') as { metadata: { annotations?: object }; spec: object };
    expect(s.spec).toEqual(expect.objectContaining({ type: 'LoadBalancer', loadBalancerClass: 'example.com/lb' }));
    expect(s.metadata.annotations).toBeUndefined();
  });
  test('a load balancer class a webhook set is not drift when the spec names none; a declared one is compared', () => {
    const lb = kubevisorCluster({ spec: { controlPlaneService: { type: 'LoadBalancer' } } });
    const own = ownService(lb);
    const defaulted = { ...own, spec: { ...own.spec, loadBalancerClass: 'example.com/default' } };
    expect(serviceDrifted(defaulted, desiredService(lb, 'demo'))).toBe(false);
    const declared = kubevisorCluster({
      spec: { controlPlaneService: { type: 'LoadBalancer', loadBalancerClass: 'example.com/lb' } },
    });
    expect(serviceDrifted(defaulted, desiredService(declared, 'demo'))).toBe(true);
  });
  test('counts as drifted when an edit changes what the provider declares, not when others add to it', () => {
    const kc = kubevisorCluster();
    const desired = desiredService(kc, 'demo');
    const own = ownService(kc);
    expect(serviceDrifted(own, desired)).toBe(false);
    expect(
      serviceDrifted({ ...own, metadata: { ...own.metadata, annotations: { 'someone/else': 'x' } } }, desired),
    ).toBe(false);
    expect(serviceDrifted({ ...own, spec: { ...own.spec, selector: { app: 'other' } } }, desired)).toBe(true);
    expect(
      serviceDrifted(
        { ...own, spec: { ...own.spec, ports: [{ name: 'kube-apiserver', port: 443, targetPort: 6443 }] } },
        desired,
      ),
    ).toBe(true);
    expect(serviceDrifted({ ...own, spec: { ...own.spec, type: 'NodePort' } }, desired)).toBe(true);
  });
});

describe('the lifecycle', () => {
  test('an externally managed KubevisorCluster is not touched at all', () => {
    const kc = kubevisorCluster({ metadata: { labels: { 'cluster.x-k8s.io/managed-by': 'someone' } } as never });
    const d = decideKubevisorCluster({ kc, cluster: capiCluster(), service: undefined, now: NOW });
    expect(d).toEqual({ actions: [] });
  });

  test('without an owner Cluster it waits (Ready False WaitingForCluster) and adds no finalizer', () => {
    const kc = kubevisorCluster({ metadata: { ownerReferences: [], finalizers: [] } as never });
    const d = decideKubevisorCluster({ kc, cluster: undefined, service: undefined, now: NOW });
    expect(types(d.actions)).toEqual([]);
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'WaitingForCluster' }));
    expect(paused(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'NotPaused' }));
  });

  test('an owner reference of another group is not a Cluster API Cluster', () => {
    const kc = kubevisorCluster({
      metadata: {
        ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Cluster', name: 'demo', uid: 'x' }],
      } as never,
    });
    const d = decideKubevisorCluster({ kc, cluster: capiCluster(), service: undefined, now: NOW });
    expect(ready(d.status)?.reason).toBe('WaitingForCluster');
  });

  test.each([
    ['the Cluster has spec.paused', kubevisorCluster(), true],
    [
      'the object carries the paused annotation',
      kubevisorCluster({ metadata: { annotations: { 'cluster.x-k8s.io/paused': '' } } as never }),
      false,
    ],
  ])('paused when %s: only the Paused condition, deletion included', (_why, kc, clusterPaused) => {
    const deleting = { ...kc, metadata: { ...kc.metadata, deletionTimestamp: NOW.toISOString() } };
    for (const obj of [kc, deleting]) {
      const d = decideKubevisorCluster({
        kc: obj,
        cluster: capiCluster(clusterPaused),
        service: ownService(kc),
        now: NOW,
      });
      expect(d.actions).toEqual([]);
      expect(paused(d.status)).toEqual(expect.objectContaining({ status: 'True', reason: 'Paused' }));
      expect(ready(d.status)).toBeUndefined();
    }
  });

  test('first pass: finalizer, then the Service; waits for its cluster IP', () => {
    const kc = kubevisorCluster({ metadata: { finalizers: [] } as never });
    const d = decideKubevisorCluster({ kc, cluster: capiCluster(), service: undefined, now: NOW });
    expect(types(d.actions)).toEqual(['addFinalizer', 'createService']);
    expect(d.status?.serviceName).toBe('demo');
    expect(d.status?.initialization?.provisioned).toBeUndefined();
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'WaitingForService' }));
  });

  test('ClusterIP: the cluster IP on 6443 becomes the endpoint, written once, then provisioned', () => {
    const kc = kubevisorCluster();
    // The Service applied in an earlier pass (Ready observed this generation), with its cluster IP allocated.
    const seen = {
      ...kc,
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'WaitingForService',
            message: '',
            lastTransitionTime: NOW.toISOString(),
            observedGeneration: 1,
          },
        ],
      },
    } as KubevisorClusterObject;
    const d = decideKubevisorCluster({ kc: seen, cluster: capiCluster(), service: ownService(kc), now: NOW });
    expect(d.actions.filter((a) => a.type !== 'event')).toEqual([
      { type: 'setEndpoint', endpoint: { host: '10.96.0.10', port: 6443 } },
    ]);
    expect(d.status?.initialization).toEqual({ provisioned: true });
    expect(ready(d.status)).toEqual(
      expect.objectContaining({ status: 'True', reason: 'Provisioned', observedGeneration: 1 }),
    );
    // Once in spec, it is never written again.
    const after = { ...seen, spec: { controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 } }, status: d.status };
    const again = decideKubevisorCluster({ kc: after, cluster: capiCluster(), service: ownService(kc), now: NOW });
    expect(again.actions).toEqual([]);
    expect(again.status).toEqual(d.status);
  });

  test('LoadBalancer: waits for an ingress address (WaitingForLoadBalancer), then takes the first ip or hostname', () => {
    const kc = kubevisorCluster({ spec: { controlPlaneService: { type: 'LoadBalancer' } } });
    const lb = { allowLoadBalancers: true };
    const waiting = decideKubevisorCluster({ kc, cluster: capiCluster(), service: ownService(kc), now: NOW, ...lb });
    expect(ready(waiting.status)).toEqual(
      expect.objectContaining({ status: 'False', reason: 'WaitingForLoadBalancer' }),
    );
    expect(waiting.status?.initialization?.provisioned).toBeUndefined();
    expect(types(waiting.actions)).not.toContain('setEndpoint');

    const withIp = decideKubevisorCluster({
      kc,
      cluster: capiCluster(),
      service: ownService(kc, { ingress: [{ ip: '203.0.113.7' }] }),
      now: NOW,
      ...lb,
    });
    expect(withIp.actions).toContainEqual({ type: 'setEndpoint', endpoint: { host: '203.0.113.7', port: 6443 } });
    const withName = decideKubevisorCluster({
      kc,
      cluster: capiCluster(),
      service: ownService(kc, { ingress: [{ hostname: 'lb.example.com' }] }),
      now: NOW,
      ...lb,
    });
    expect(withName.actions).toContainEqual({ type: 'setEndpoint', endpoint: { host: 'lb.example.com', port: 6443 } });
  });

  test('a Service still of the old type offers no endpoint while it is being changed', () => {
    const kc = kubevisorCluster({ spec: { controlPlaneService: { type: 'LoadBalancer' } } });
    const stale = ownService(kubevisorCluster());
    const d = decideKubevisorCluster({
      kc,
      cluster: capiCluster(),
      service: stale,
      now: NOW,
      allowLoadBalancers: true,
    });
    expect(types(d.actions)).toEqual(['applyService']);
    expect(ready(d.status)?.reason).toBe('WaitingForService');
  });

  test('a user-set endpoint is respected: provisioned at once, no endpoint written, the Service still kept', () => {
    const kc = kubevisorCluster({ spec: { controlPlaneEndpoint: { host: 'api.example.com', port: 443 } } });
    const d = decideKubevisorCluster({ kc, cluster: capiCluster(), service: undefined, now: NOW });
    expect(types(d.actions)).toEqual(['createService']);
    expect(d.status?.initialization).toEqual({ provisioned: true });
    expect(ready(d.status)).toEqual(
      expect.objectContaining({ status: 'True', message: expect.stringContaining('api.example.com:443') }),
    );
  });

  test('an edited Service is put back; an unchanged one is left alone', () => {
    const kc = kubevisorCluster({ spec: { controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 } } });
    const status = decideKubevisorCluster({ kc, cluster: capiCluster(), service: ownService(kc), now: NOW }).status;
    const settled = { ...kc, status };
    expect(
      decideKubevisorCluster({ kc: settled, cluster: capiCluster(), service: ownService(kc), now: NOW }).actions,
    ).toEqual([]);
    const edited = ownService(kc);
    edited.spec = { ...edited.spec, selector: { 'cluster.x-k8s.io/cluster-name': 'demo' } };
    const d = decideKubevisorCluster({ kc: settled, cluster: capiCluster(), service: edited, now: NOW });
    expect(types(d.actions)).toEqual(['applyService']);
    // Guarded by what was read: a Service replaced or changed since is refused by the API server, not rewritten.
    const applied = (d.actions[0] as unknown as { service: { metadata: Record<string, unknown> } }).service;
    expect(applied.metadata).toEqual(expect.objectContaining({ uid: 'svc-uid', resourceVersion: '7' }));
  });

  test('LoadBalancer without the platform’s leave: Ready False LoadBalancerNotAllowed naming the flag, no Service', () => {
    const kc = kubevisorCluster({ spec: { controlPlaneService: { type: 'LoadBalancer' } } });
    const d = decideKubevisorCluster({ kc, cluster: capiCluster(), service: undefined, now: NOW });
    expect(types(d.actions)).toEqual([]);
    expect(ready(d.status)).toEqual(
      expect.objectContaining({
        status: 'False',
        reason: 'LoadBalancerNotAllowed',
        message: expect.stringContaining('--cluster-api-load-balancers'),
      }),
    );
    expect(ready(d.status)?.message).toContain('loadBalancers: true');
    // An existing Service is not turned into a load balancer either.
    const existing = decideKubevisorCluster({
      kc,
      cluster: capiCluster(),
      service: ownService(kubevisorCluster()),
      now: NOW,
    });
    expect(types(existing.actions)).toEqual([]);
  });

  test.each([
    ['another Cluster of the same name (UID)', { metadata: { name: 'demo', namespace: NS, uid: 'someone-else' } }],
    [
      'a Cluster naming another KubevisorCluster',
      { spec: { infrastructureRef: { apiGroup: INFRASTRUCTURE_GROUP, kind: 'KubevisorCluster', name: 'other' } } },
    ],
    ['a Cluster naming no infrastructure', { spec: {} }],
  ])('an owner reference to %s is not trusted: Ready False OwnerMismatch, nothing made', (_why, over) => {
    const cluster = { ...capiCluster(), ...over } as CapiClusterView;
    const kc = kubevisorCluster({ metadata: { finalizers: [] } as never });
    const d = decideKubevisorCluster({ kc, cluster, service: undefined, now: NOW });
    expect(d.actions).toEqual([]);
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'OwnerMismatch' }));
  });

  test('a spec change is applied even when every declared field still matches (an annotation taken out)', () => {
    const kc = kubevisorCluster({ spec: { controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 } } });
    const status = decideKubevisorCluster({ kc, cluster: capiCluster(), service: ownService(kc), now: NOW }).status;
    const changed = { ...kc, metadata: { ...kc.metadata, generation: 2 }, status };
    const d = decideKubevisorCluster({ kc: changed, cluster: capiCluster(), service: ownService(kc), now: NOW });
    expect(types(d.actions)).toEqual(['applyService']);
  });

  test('a Service of that name someone else controls is not adopted: Ready False ServiceConflict, one Event', () => {
    const kc = kubevisorCluster();
    const foreign: ServiceView = {
      metadata: { name: 'demo', namespace: NS, uid: 'other', ownerReferences: [] },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.99' },
    };
    const d = decideKubevisorCluster({ kc, cluster: capiCluster(), service: foreign, now: NOW });
    expect(types(d.actions)).toEqual(['event']);
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'ServiceConflict' }));
    expect(d.status?.initialization?.provisioned).toBeUndefined();
    const again = decideKubevisorCluster({
      kc: { ...kc, status: d.status },
      cluster: capiCluster(),
      service: foreign,
      now: NOW,
    });
    expect(again.actions).toEqual([]);
  });

  test('deletion: Ready False Deleting while the Service goes, then the finalizer, without waiting for the Cluster', () => {
    const kc = kubevisorCluster({ metadata: { deletionTimestamp: NOW.toISOString() } as never });
    const d = decideKubevisorCluster({ kc, cluster: undefined, service: ownService(kc), now: NOW });
    expect(d.actions).toEqual([{ type: 'deleteService', name: 'demo', uid: 'svc-uid' }]);
    expect(ready(d.status)).toEqual(expect.objectContaining({ status: 'False', reason: 'Deleting' }));
    const going = ownService(kc);
    going.metadata = { ...going.metadata, deletionTimestamp: NOW.toISOString() };
    const waiting = decideKubevisorCluster({ kc, cluster: undefined, service: going, now: NOW });
    expect(waiting.actions).toEqual([]);
    expect(ready(waiting.status)?.reason).toBe('Deleting');
    expect(decideKubevisorCluster({ kc, cluster: undefined, service: undefined, now: NOW }).actions).toEqual([
      { type: 'removeFinalizer' },
    ]);
    // Someone else's Service of that name stays.
    const foreign: ServiceView = { metadata: { name: 'demo', uid: 'other' } };
    expect(decideKubevisorCluster({ kc, cluster: undefined, service: foreign, now: NOW }).actions).toEqual([
      { type: 'removeFinalizer' },
    ]);
    // Without the finalizer there is nothing left to do.
    const gone = { ...kc, metadata: { ...kc.metadata, finalizers: [] } };
    expect(decideKubevisorCluster({ kc: gone, cluster: undefined, service: undefined, now: NOW }).actions).toEqual([]);
  });
});

/** An in-memory store: the KubevisorCluster's writes land on it, so the next pass reads them. */
class FakeStore implements ClusterApiStore {
  calls: string[] = [];
  applied: Record<string, unknown>[] = [];
  applyError?: Error;
  createError?: Error;
  constructor(
    public kc: KubevisorClusterObject,
    public clusterView: CapiClusterView | undefined,
    public cached?: ServiceView,
    public live?: ServiceView,
  ) {}
  kubevisorCluster() {
    return this.kc;
  }
  kubevisorMachine() {
    return undefined;
  }
  cluster() {
    return this.clusterView;
  }
  machine() {
    return undefined;
  }
  service() {
    return this.cached;
  }
  async readService() {
    this.calls.push('readService');
    return this.live;
  }
  vm() {
    return undefined;
  }
  async readSecret() {
    return undefined;
  }
  async createService(service: Record<string, unknown>) {
    this.calls.push('createService');
    if (this.createError) throw this.createError;
    this.applied.push(service);
  }
  async applyService(service: Record<string, unknown>) {
    this.calls.push('applyService');
    if (this.applyError) throw this.applyError;
    this.applied.push(service);
  }
  async deleteService(_ns: string, name: string, uid: string) {
    this.calls.push(`deleteService ${name} ${uid}`);
  }
  async createVm() {
    throw new Error('not a cluster write');
  }
  async deleteVm() {
    throw new Error('not a cluster write');
  }
  async patchSpec(_obj: InfrastructureObject, spec: Record<string, unknown>) {
    this.calls.push(`patchSpec ${JSON.stringify(spec)}`);
    this.kc = { ...this.kc, spec: { ...this.kc.spec, ...spec } };
    return '11';
  }
  async updateStatus(_obj: InfrastructureObject, status: object) {
    this.calls.push('updateStatus');
    this.kc = { ...this.kc, status: status as KubevisorClusterStatus };
  }
  async addFinalizer(_obj: InfrastructureObject, f: string) {
    this.calls.push(`addFinalizer ${f}`);
    this.kc = { ...this.kc, metadata: { ...this.kc.metadata, finalizers: [f] } };
    return '11';
  }
  async removeFinalizer(_obj: InfrastructureObject, f: string) {
    this.calls.push(`removeFinalizer ${f}`);
  }
  events: string[] = [];
  async event(_obj: InfrastructureObject, type: string, reason: string) {
    this.events.push(`${type} ${reason}`);
  }
}

describe('the reconciler', () => {
  test('creates the Service, then sets the endpoint once the Service shows its cluster IP', async () => {
    const store = new FakeStore(kubevisorCluster({ metadata: { finalizers: [] } as never }), capiCluster());
    await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(store.calls).toEqual([
      'readService',
      `addFinalizer ${KUBEVISOR_CLUSTER_FINALIZER}`,
      'createService',
      'updateStatus',
    ]);
    expect(store.events).toEqual(['Normal ServiceCreated']);
    store.calls = [];
    store.cached = ownService(store.kc);
    await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(store.calls).toEqual([
      'patchSpec {"controlPlaneEndpoint":{"host":"10.96.0.10","port":6443}}',
      'updateStatus',
    ]);
    expect(store.kc.status?.initialization?.provisioned).toBe(true);
    store.calls = [];
    await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(store.calls).toEqual([]);
  });

  test('a Service the cache cannot see (unlabelled, someone else’s) is found before any apply and left alone', async () => {
    const foreign: ServiceView = { metadata: { name: 'demo', namespace: NS, uid: 'other' }, spec: {} };
    const store = new FakeStore(kubevisorCluster(), capiCluster(), undefined, foreign);
    await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(store.calls).toEqual(['readService', 'updateStatus']);
    expect(ready(store.kc.status)?.reason).toBe('ServiceConflict');
    expect(store.events).toEqual(['Warning ServiceConflict']);
  });

  test('a Service made by someone else between the read and the create is not merged into: requeued', async () => {
    const store = new FakeStore(kubevisorCluster(), capiCluster());
    store.createError = new KubeApiError(409, 'AlreadyExists', 'services "demo" already exists', [], 'POST', '/x', {});
    const r = await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(store.calls).toEqual(['readService', 'createService', 'updateStatus']);
    expect(store.applied).toEqual([]);
    expect(r.requeueAfterMs).toBeGreaterThan(0);
    expect(store.events).toEqual([]);
  });

  test('a guarded apply refused with 409 (Service replaced meanwhile) fails the pass; nothing else is written', async () => {
    const kc = kubevisorCluster();
    const edited = ownService(kc);
    edited.spec = { ...edited.spec, selector: {} };
    const store = new FakeStore(kc, capiCluster(), edited);
    store.applyError = new KubeApiError(409, 'Conflict', 'the object has been modified', [], 'PATCH', '/x', {});
    await expect(reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW })).rejects.toThrow('modified');
    expect(store.calls).toEqual(['applyService']);
  });

  test('a Service the API server refuses as invalid is reported on Ready (ServiceInvalid), not retried blindly', async () => {
    const kc = kubevisorCluster({ spec: { controlPlaneEndpoint: { host: '10.96.0.10', port: 6443 } } });
    const store = new FakeStore(kc, capiCluster(), ownService(kc));
    store.applyError = new KubeApiError(
      422,
      'Invalid',
      'spec.loadBalancerClass: may not change once set',
      [],
      'PATCH',
      '/x',
      {},
    );
    await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(ready(store.kc.status)).toEqual(
      expect.objectContaining({
        status: 'False',
        reason: SERVICE_INVALID,
        message: expect.stringContaining('loadBalancerClass'),
      }),
    );
    expect(store.events).toEqual([`Warning ${SERVICE_INVALID}`]);
    // Other errors fail the pass (retried with backoff).
    store.applyError = new KubeApiError(500, 'InternalError', 'boom', [], 'PATCH', '/x', {});
    store.kc = { ...store.kc, metadata: { ...store.kc.metadata, generation: 2 } };
    await expect(reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW })).rejects.toThrow('boom');
  });

  test('deletion removes the Service (by UID) with Ready False Deleting, then the finalizer once it is gone', async () => {
    const kc = kubevisorCluster({ metadata: { deletionTimestamp: NOW.toISOString() } as never });
    const store = new FakeStore(kc, undefined, ownService(kc));
    await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(store.calls).toEqual(['deleteService demo svc-uid', 'updateStatus']);
    expect(ready(store.kc.status)?.reason).toBe('Deleting');
    store.calls = [];
    store.cached = undefined;
    await reconcileKubevisorClusterKey(store, NS, 'demo', { now: () => NOW });
    expect(store.calls).toEqual([`removeFinalizer ${KUBEVISOR_CLUSTER_FINALIZER}`]);
  });
});
