/**
 * The real {@link Cluster}: informer caches for VirtualMachines, migrations, VM pods and nodes, and writes through
 * the API server. It also maps every cache event to the keys that must be reconciled (a pod or node change wakes
 * its VM; a VM or pod change wakes the VM's migrations).
 */
import { performance } from 'node:perf_hooks';
import type { VirtualMachineMigrationStatus, VirtualMachineStatus } from '../../api';
import { API_VERSION, CPU_FEATURES_LABEL } from '../../api';
import type { KubeClient, KubeObject, Logger } from '../kube';
import { Informer, keyOf, sameJson } from '../kube';
import { HOTPLUG_VM_LABEL, POD_VOLUMES_ANNOTATION, VM_LABEL } from '../pod-layout';
import type { Cluster, MigrationObject, VmObject, VmPodSecret } from './cluster';
import { PodCreator } from './pod-create';
import type { NodeView, PodView } from './vm-lifecycle';

type Pod = KubeObject & PodView;
type Node = KubeObject & NodeView;
type Vm = KubeObject & VmObject;
type Migration = KubeObject & MigrationObject;

const vmKeyOfAttachment = (p: Pod): string[] => {
  const vm = p.metadata.labels?.[HOTPLUG_VM_LABEL];
  return vm ? [keyOf((p.metadata as { namespace?: string }).namespace, vm)] : [];
};

const vmKeyOfPod = (p: Pod): string[] => {
  const vm = p.metadata.labels?.[VM_LABEL];
  return vm ? [keyOf((p.metadata as { namespace?: string }).namespace, vm)] : [];
};

/** How long a pod this controller created may stay out of the pod cache before a pass takes it for gone. */
export const POD_NOT_SEEN_MS = 30_000;

export interface KubeClusterOptions {
  /** Only watch this namespace. @default all namespaces */
  readonly namespace?: string;
  readonly logger?: Logger;
  /** Full relist period of the informers. @default 300000 */
  readonly resyncMs?: number;
  /** Events sent at once (in the background). @default 4 */
  readonly eventConcurrency?: number;
  /** Events waiting to be sent; beyond this, new ones are dropped. @default 1000 */
  readonly eventBacklog?: number;
  /**
   * An Event repeating one sent for the same object (same type, reason and message) within this window is dropped:
   * the first tells it, and a repeat would cost a write (the client's count bump) per pass. @default 60000
   */
  readonly eventRepeatWindowMs?: number;
}

/**
 * Which Events repeat one queued for the same object (same type, reason and message) within a window: bounded memory
 * of the last ones ({@link KubeClusterOptions.eventRepeatWindowMs}).
 */
export class EventRepeats {
  /** Event key → when it was last queued (least recently queued first). */
  private readonly last = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly kept = 4096,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** True when the Event repeats one within the window; otherwise remembers it. */
  repeat(
    obj: { kind: string; metadata: { namespace?: string; name: string; uid?: string } },
    type: string,
    reason: string,
    message: string,
  ): boolean {
    const m = obj.metadata;
    const key = [obj.kind, m.namespace ?? '', m.name, m.uid ?? '', type, reason, message].join('\u0000');
    const now = this.clock();
    const last = this.last.get(key);
    if (last !== undefined && now - last < this.windowMs) return true;
    // Re-inserted, so the Map stays ordered least recently queued first.
    this.last.delete(key);
    this.last.set(key, now);
    if (this.last.size > this.kept) this.last.delete(this.last.keys().next().value!);
    return false;
  }
}

/** Runs tasks in the background, at most `concurrency` at once, keeping at most `backlog` waiting (newest dropped). */
class BackgroundTasks {
  private readonly waiting: (() => Promise<unknown>)[] = [];
  private running = 0;
  private dropped = 0;

  constructor(
    private readonly concurrency: number,
    private readonly backlog: number,
    private readonly logger?: Logger,
  ) {}

  push(task: () => Promise<unknown>): void {
    if (this.waiting.length >= this.backlog) {
      if (this.dropped++ % 1000 === 0)
        this.logger?.warn('event backlog full; dropping events', { dropped: this.dropped });
      return;
    }
    this.waiting.push(task);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const task = this.waiting.shift()!;
      this.running++;
      void task()
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }
}

export class KubeCluster implements Cluster {
  readonly vms: Informer<Vm>;
  readonly migrations: Informer<Migration>;
  readonly pods: Informer<Pod>;
  readonly nodes: Informer<Node>;
  readonly attachments: Informer<Pod>;
  private readonly creator: PodCreator;
  private readonly events: BackgroundTasks;
  private readonly eventRepeats: EventRepeats;
  /** VM key → versions of it this controller's own writes have replaced (until the cache shows a newer one). */
  private readonly supersededVm = new Map<string, Set<string>>();
  /** Pods created by this controller that the pod cache has not shown yet, by key: their UID and when. */
  private readonly podsNotSeen = new Map<string, { uid: string; at: number }>();
  /** VMs a pass skipped because the cache was behind: woken urgently when it catches up. */
  private readonly waitingForVmCache = new Set<string>();

  constructor(
    private readonly client: KubeClient,
    options: KubeClusterOptions = {},
  ) {
    this.creator = new PodCreator(client);
    this.events = new BackgroundTasks(options.eventConcurrency ?? 4, options.eventBacklog ?? 1000, options.logger);
    this.eventRepeats = new EventRepeats(options.eventRepeatWindowMs ?? 60_000);
    const ns = options.namespace ? `/namespaces/${encodeURIComponent(options.namespace)}` : '';
    const common = {
      client,
      logger: options.logger,
      transform: withoutManagedFields,
      ...(options.resyncMs !== undefined ? { resyncMs: options.resyncMs } : {}),
    };
    this.vms = new Informer<Vm>({
      ...common,
      name: 'virtualmachines',
      path: `/apis/${API_VERSION}${ns}/virtualmachines`,
      apiVersion: API_VERSION,
      kind: 'VirtualMachine',
    });
    this.migrations = new Informer<Migration>({
      ...common,
      name: 'virtualmachinemigrations',
      path: `/apis/${API_VERSION}${ns}/virtualmachinemigrations`,
      apiVersion: API_VERSION,
      kind: 'VirtualMachineMigration',
      indexers: { vm: (m) => [keyOf(m.metadata.namespace, m.spec.vmName)] },
    });
    this.pods = new Informer<Pod>({
      ...common,
      name: 'vm-pods',
      path: `/api/v1${ns}/pods`,
      labelSelector: VM_LABEL,
      apiVersion: 'v1',
      kind: 'Pod',
      indexers: { vm: vmKeyOfPod, node: (p) => (p.spec?.nodeName ? [p.spec.nodeName] : []) },
      transform: podView,
    });
    this.attachments = new Informer<Pod>({
      ...common,
      name: 'attachment-pods',
      path: `/api/v1${ns}/pods`,
      labelSelector: HOTPLUG_VM_LABEL,
      apiVersion: 'v1',
      kind: 'Pod',
      indexers: { vm: vmKeyOfAttachment },
      transform: podView,
    });
    this.nodes = new Informer<Node>({
      ...common,
      name: 'nodes',
      path: '/api/v1/nodes',
      apiVersion: 'v1',
      kind: 'Node',
      transform: nodeView,
    });
  }

  get informers(): Informer<KubeObject>[] {
    return [this.vms, this.migrations, this.pods, this.nodes, this.attachments] as unknown as Informer<KubeObject>[];
  }

  /** Calls `vm(key)` and `migration(key)` for every key a cache change may affect. */
  route(enqueue: { vm(key: string, urgent: boolean): void; migration(key: string): void }): void {
    const vmChanged = (v: Vm) => {
      const key = keyOf(v.metadata.namespace, v.metadata.name);
      const rv = v.metadata.resourceVersion;
      let caughtUp = false;
      if (rv === undefined || !this.supersededVm.get(key)?.has(rv)) {
        this.supersededVm.delete(key);
        caughtUp = this.waitingForVmCache.delete(key);
      }
      enqueue.vm(key, caughtUp);
      for (const m of this.migrations.byIndex('vm', key))
        enqueue.migration(keyOf(m.metadata.namespace, m.metadata.name));
    };
    // Pod and node changes are progress of VMs already started: urgent, so a flood of new VMs cannot starve them.
    const podChanged = (p: Pod) => {
      for (const key of vmKeyOfPod(p)) {
        enqueue.vm(key, true);
        for (const m of this.migrations.byIndex('vm', key))
          enqueue.migration(keyOf(m.metadata.namespace, m.metadata.name));
      }
    };
    const nodeChanged = (n: Node) => {
      for (const p of this.pods.byIndex('node', n.metadata.name)) podChanged(p);
    };
    const migrationChanged = (m: Migration) => enqueue.migration(keyOf(m.metadata.namespace, m.metadata.name));
    this.vms.onAdd(vmChanged);
    this.vms.onUpdate((_o, n) => vmChanged(n));
    this.vms.onDelete(vmChanged);
    // A pod this controller created is no longer expected once the cache has seen it (or its deletion).
    const podSeen = (p: Pod) => {
      const key = keyOf((p.metadata as { namespace?: string }).namespace, p.metadata.name);
      if (this.podsNotSeen.get(key)?.uid === p.metadata.uid) this.podsNotSeen.delete(key);
    };
    this.pods.onAdd((p) => (podSeen(p), podChanged(p)));
    this.pods.onUpdate((o, n) => (podSeen(n), podChanged(o), podChanged(n)));
    this.pods.onDelete((p) => (podSeen(p), podChanged(p)));
    // Only readiness matters for nodes; heartbeats that change nothing else wake nobody.
    this.nodes.onUpdate((o, n) => {
      if (readyOf(o) !== readyOf(n)) nodeChanged(n);
    });
    this.nodes.onDelete(nodeChanged);
    const attachmentChanged = (p: Pod) => {
      for (const key of vmKeyOfAttachment(p)) enqueue.vm(key, true);
    };
    this.attachments.onAdd(attachmentChanged);
    this.attachments.onUpdate((_o, n) => attachmentChanged(n));
    this.attachments.onDelete(attachmentChanged);
    this.migrations.onAdd(migrationChanged);
    this.migrations.onUpdate((_o, n) => migrationChanged(n));
    this.migrations.onDelete(migrationChanged);
  }

  vm(namespace: string, name: string): VmObject | undefined {
    return this.vms.get(namespace, name);
  }
  migration(namespace: string, name: string): MigrationObject | undefined {
    return this.migrations.get(namespace, name);
  }
  podsOfVm(namespace: string, vmName: string): PodView[] {
    return this.pods.byIndex('vm', keyOf(namespace, vmName));
  }
  node(name: string): NodeView | undefined {
    return this.nodes.get(undefined, name);
  }
  attachmentPodsOfVm(namespace: string, vmName: string): PodView[] {
    return this.attachments.byIndex('vm', keyOf(namespace, vmName));
  }

  async createPod(pod: Record<string, unknown>, secret?: VmPodSecret): Promise<string | undefined> {
    const uid = await this.creator.createPod(pod, secret);
    const { name, namespace, labels } = pod.metadata as {
      name: string;
      namespace?: string;
      labels?: Record<string, string>;
    };
    // Only VM pods: the pod cache never shows the others (attachment pods have a cache of their own).
    if (uid && labels?.[VM_LABEL] && this.pods.get(namespace, name)?.metadata.uid !== uid) {
      this.podsNotSeen.set(keyOf(namespace, name), { uid, at: performance.now() });
    }
    return uid;
  }

  /**
   * True while pod `name`, created by this controller as `uid`, has not reached the pod cache yet (for at most
   * {@link POD_NOT_SEEN_MS}): a pass that misses it there must not take it for gone and create it again.
   */
  podCreatedNotSeen(namespace: string, name: string, uid: string): boolean {
    const key = keyOf(namespace, name);
    const expected = this.podsNotSeen.get(key);
    if (!expected) return false;
    if (expected.uid === uid && performance.now() - expected.at < POD_NOT_SEEN_MS) return true;
    this.podsNotSeen.delete(key);
    return false;
  }
  settleVmSecret(namespace: string, name: string, vmUid: string, podUid?: string): Promise<void> {
    return this.creator.settleVmSecret(namespace, name, vmUid, podUid);
  }
  async deletePod(namespace: string, name: string, force: boolean): Promise<void> {
    await this.client.delete('v1', 'Pod', name, namespace, {
      ignoreNotFound: true,
      ...(force ? { gracePeriodSeconds: 0 } : {}),
    });
  }
  async updateVmStatus(vm: VmObject, status: VirtualMachineStatus): Promise<void> {
    const written = await this.client.patchStatus(vm as unknown as KubeObject, statusPatch(vm, vm.status, status));
    this.wroteVm(vm, written.metadata.resourceVersion);
  }
  async updateMigrationStatus(m: MigrationObject, status: VirtualMachineMigrationStatus): Promise<void> {
    await this.client.patchStatus(m as unknown as KubeObject, statusPatch(m, m.status, status));
  }
  async setVmMigration(vm: VmObject, migration: VirtualMachineStatus['migration'] | null): Promise<void> {
    const written = await this.client.patchStatus(vm as unknown as KubeObject, {
      metadata: { resourceVersion: vm.metadata.resourceVersion },
      status: { migration },
    });
    this.wroteVm(vm, written.metadata.resourceVersion);
  }
  async addFinalizer(obj: VmObject | MigrationObject, finalizer: string): Promise<string | undefined> {
    const rv = (await this.client.addFinalizer(obj as unknown as KubeObject, finalizer)).metadata.resourceVersion;
    if (obj.kind === 'VirtualMachine') this.wroteVm(obj as VmObject, rv);
    return rv;
  }

  /**
   * True while the VM cache still shows a version this controller has already replaced by a write of its own. A pass
   * on it would redo what that write did (create its pod again, write its status again with a stale resourceVersion:
   * a conflict); the watch event of the write wakes the VM again, urgently, so the wait costs no place in the queue.
   */
  vmCacheBehind(namespace: string, name: string): boolean {
    const key = keyOf(namespace, name);
    const superseded = this.supersededVm.get(key);
    if (!superseded) return false;
    const cached = this.vms.get(namespace, name)?.metadata.resourceVersion;
    if (cached !== undefined && superseded.has(cached)) {
      this.waitingForVmCache.add(key);
      return true;
    }
    this.supersededVm.delete(key);
    return false;
  }

  /** Records that `vm` (as this pass read it) was replaced by version `written`. */
  private wroteVm(vm: VmObject, written: string | undefined): void {
    const before = vm.metadata.resourceVersion;
    // A write that changed nothing keeps the version: the cache is not behind it.
    if (before === undefined || written === undefined || written === before) return;
    const key = keyOf(vm.metadata.namespace, vm.metadata.name);
    let superseded = this.supersededVm.get(key);
    if (!superseded) this.supersededVm.set(key, (superseded = new Set()));
    superseded.add(before);
  }
  async removeFinalizer(obj: VmObject | MigrationObject, finalizer: string): Promise<void> {
    await this.client.removeFinalizer(obj as unknown as KubeObject, finalizer);
  }
  /**
   * Events are sent in the background, a few at a time, so they never hold up a reconcile nor compete with its writes
   * under a burst (as client-go's broadcaster, a full backlog drops the newest: an Event is best effort).
   */
  event(obj: VmObject | MigrationObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    if (this.eventRepeats.repeat(obj, type, reason, message)) return Promise.resolve();
    this.events.push(() => this.client.createEvent(obj as unknown as KubeObject, { type, reason, message }));
    return Promise.resolve();
  }
}

/**
 * A JSON merge patch to /status that turns `old` into `next`: changed keys carry their new value, removed keys null.
 * The resourceVersion makes it conditional, so a reconcile working from a stale cache gets 409 and retries.
 */
export function statusPatch(
  obj: { metadata: { resourceVersion?: string } },
  old: object | undefined,
  next: object,
): Record<string, unknown> {
  const status: Record<string, unknown> = {};
  const before = (old ?? {}) as Record<string, unknown>;
  const after = next as Record<string, unknown>;
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (after[k] === undefined) status[k] = null;
    else if (!sameJson(after[k], before[k])) status[k] = after[k];
  }
  return { metadata: { resourceVersion: obj.metadata.resourceVersion }, status };
}

/**
 * The cache keeps only what the lifecycle reads of a pod (a VM pod's spec is long — init containers, volumes — and
 * every pod carries its managedFields): a fraction of the memory per VM.
 */
function podView(p: Pod): Pod {
  const { name, namespace, uid, resourceVersion, labels, ownerReferences, deletionTimestamp, annotations } =
    p.metadata as Pod['metadata'] & {
      namespace?: string;
      ownerReferences?: unknown;
    };
  // Of the annotations, only the one hot-plug reads (a VM pod carries the VM's own, which nothing here needs).
  const volumes = annotations?.[POD_VOLUMES_ANNOTATION];
  const status = p.status && {
    phase: p.status.phase,
    conditions: p.status.conditions?.map(({ type, status: s }) => ({ type, status: s })),
    containerStatuses: p.status.containerStatuses?.map(({ name: n, state }) => ({ name: n, state })),
  };
  return {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: {
      name,
      namespace,
      uid,
      resourceVersion,
      labels,
      ownerReferences,
      deletionTimestamp,
      ...(volumes !== undefined ? { annotations: { [POD_VOLUMES_ANNOTATION]: volumes } } : {}),
    },
    spec: { nodeName: p.spec?.nodeName },
    ...(status ? { status } : {}),
  } as Pod;
}

/**
 * Of a node, the lifecycle reads only its Ready condition (real nodes also carry image lists, addresses…), and the
 * migration reconciler its CPU features label.
 */
function nodeView(n: Node): Node {
  const features = n.metadata.labels?.[CPU_FEATURES_LABEL];
  return {
    apiVersion: n.apiVersion,
    kind: n.kind,
    metadata: {
      name: n.metadata.name,
      uid: n.metadata.uid,
      resourceVersion: n.metadata.resourceVersion,
      ...(features ? { labels: { [CPU_FEATURES_LABEL]: features } } : {}),
    },
    status: { conditions: n.status?.conditions?.filter((c) => c.type === 'Ready') },
  } as Node;
}

/** managedFields are a large share of each cached object and no reconciler reads them. */
export function withoutManagedFields<T extends KubeObject>(o: T): T {
  if (!o.metadata?.managedFields) return o;
  const { managedFields: _dropped, ...metadata } = o.metadata;
  return { ...o, metadata } as T;
}

function readyOf(n: Node): string | undefined {
  return n.status?.conditions?.find((c) => c.type === 'Ready')?.status;
}
