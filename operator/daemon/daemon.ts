/**
 * The node daemon's engine: informers for this node's VM pods (field selector spec.nodeName), its VMs (the CRD's
 * selectable field status.nodeName) and the migrations leaving or reaching it; a work queue keyed by pod UID, so one
 * pod is never reconciled twice at once while many pods proceed in parallel; and a watcher per pod run dir, so CH's
 * socket, events and the guest's leases wake the pod's reconcile the moment they change. No polling loop anywhere.
 */
import { API_VERSION } from '../../api';
import type { VirtualMachineMigrationStatus } from '../../api';
import type { KubeClient, KubeObject, Logger, Workers } from '../kube';
import { Informer, WorkQueue, keyOf, runWorkers, silentLogger } from '../kube';
import type { OperatorMetrics } from '../kube';
import { guestGraceOfPod } from '../../constructs/vm-pod';
import { HOTPLUG_VM_LABEL, VM_LABEL } from '../pod-layout';
import { type HotplugCluster, releaseHotplugMounts } from './hotplug';
import type { DaemonCluster, DaemonPod, MigrationObject, VmObject, VmStatusPatch } from './cluster';
import { CloudHypervisorError } from '../cloudhypervisor';
import type { PowerAction } from './guest-reconciler';
import { reconcileGuest } from './guest-reconciler';
import type { PodState } from './pod-state';
import { chStateAfter, containerEnded, newPodState, terminating } from './pod-state';
import { VmPodFiles, type VmPodPaths } from './vm-pod-files';
import { Counter } from 'prom-client';

type Pod = KubeObject & DaemonPod;

/** How often (every 250 ms) a Running pod without a run dir is looked at again before the daemon gives up on it. */
const MISSING_RUN_DIR_CHECKS = 120;
type Vm = KubeObject & VmObject;
type Migration = KubeObject & MigrationObject;

export interface DaemonOptions extends VmPodPaths {
  readonly client: KubeClient;
  readonly nodeName: string;
  /** Concurrent pod reconciles. @default 8 */
  readonly workers?: number;
  readonly logger?: Logger;
  readonly metrics?: OperatorMetrics;
  /** Migration roles (source and target side), wired in by main. */
  readonly migrations?: MigrationHooks;
}

/** The migration side of a pod's reconcile (operator/daemon/migration*.ts). */
export interface MigrationHooks {
  /** Handles the pod when a migration gives it a role; returns undefined when it has none. */
  reconcile(state: PodState, cluster: DaemonCluster): Promise<{ requeueAfterMs?: number } | undefined>;
}

export class NodeDaemon implements DaemonCluster, HotplugCluster {
  readonly nodeName: string;
  readonly pods: Informer<Pod>;
  readonly vms: Informer<Vm>;
  readonly migrationsOut: Informer<Migration>;
  readonly migrationsIn: Informer<Migration>;
  readonly attachments: Informer<Pod>;
  readonly queue = new WorkQueue({ name: 'vm-pods' });
  private readonly states = new Map<string, PodState>();
  private readonly logger: Logger;
  private readonly powerActions?: Counter<'action'>;
  private workers?: Workers;

  constructor(private readonly options: DaemonOptions) {
    this.nodeName = options.nodeName;
    this.logger = (options.logger ?? silentLogger).child({ node: options.nodeName });
    const common = { client: options.client, logger: this.logger, transform: withoutManagedFields };
    const node = encodeURIComponent(options.nodeName);
    this.pods = new Informer<Pod>({
      ...common,
      name: 'vm-pods',
      path: '/api/v1/pods',
      labelSelector: VM_LABEL,
      fieldSelector: `spec.nodeName=${node}`,
      apiVersion: 'v1',
      kind: 'Pod',
      indexers: { vm: (p) => vmKeyOfPod(p) },
    });
    this.vms = new Informer<Vm>({
      ...common,
      name: 'virtualmachines',
      path: `/apis/${API_VERSION}/virtualmachines`,
      fieldSelector: `status.nodeName=${node}`,
      apiVersion: API_VERSION,
      kind: 'VirtualMachine',
    });
    const migrations = (side: 'source' | 'target') =>
      new Informer<Migration>({
        ...common,
        name: `migrations-${side}`,
        path: `/apis/${API_VERSION}/virtualmachinemigrations`,
        fieldSelector: `status.${side}NodeName=${node}`,
        apiVersion: API_VERSION,
        kind: 'VirtualMachineMigration',
        indexers: { vm: (m) => [keyOf(m.metadata.namespace, m.spec.vmName)] },
      });
    this.attachments = new Informer<Pod>({
      ...common,
      name: 'attachment-pods',
      path: '/api/v1/pods',
      labelSelector: HOTPLUG_VM_LABEL,
      fieldSelector: `spec.nodeName=${node}`,
      apiVersion: 'v1',
      kind: 'Pod',
      indexers: { vm: (p) => [keyOf(p.metadata.namespace, p.metadata.labels?.[HOTPLUG_VM_LABEL] ?? '')] },
    });
    this.migrationsOut = migrations('source');
    this.migrationsIn = migrations('target');
    if (options.metrics) {
      this.powerActions = new Counter({
        name: 'kubevisor_daemon_power_actions_total',
        help: 'Cloud Hypervisor power calls made by the node daemon, by action.',
        labelNames: ['action'],
        registers: [options.metrics.registry],
      });
    }
    this.route();
  }

  get informers(): Informer<KubeObject>[] {
    return [
      this.pods,
      this.vms,
      this.migrationsOut,
      this.migrationsIn,
      this.attachments,
    ] as unknown as Informer<KubeObject>[];
  }

  /** Starts the informers and, once they have synced, the workers. */
  async start(syncTimeoutMs = 60_000): Promise<void> {
    for (const i of this.informers) i.start();
    await Promise.all(this.informers.map((i) => i.waitForSync(syncTimeoutMs)));
    this.workers = runWorkers(this.queue, this.options.workers ?? 8, (uid) => this.reconcile(uid), {
      controller: 'node-daemon',
      logger: this.logger,
      ...(this.options.metrics ? { observer: this.options.metrics } : {}),
    });
  }

  /** Stops informers, workers and every pod watcher. */
  async stop(): Promise<void> {
    this.queue.shutdown();
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.workers?.stopped;
    for (const s of this.states.values()) s.files.close();
    this.states.clear();
  }

  // --- routing ---------------------------------------------------------------------------------------------

  private route(): void {
    const podChanged = (p: Pod, deleted = false) => {
      const uid = p.metadata.uid;
      let state = this.states.get(uid);
      if (!state) {
        if (deleted) return;
        const files = new VmPodFiles(p.metadata, this.options, () => this.queue.add(uid, { urgent: true }));
        state = newPodState(p, files);
        this.states.set(uid, state);
      }
      state.pod = p;
      state.deleted ||= deleted;
      this.queue.add(uid, { urgent: true });
    };
    this.pods.onAdd((p) => podChanged(p));
    this.pods.onUpdate((_o, p) => podChanged(p));
    this.pods.onDelete((p) => podChanged(p, true));
    const vmChanged = (namespace: string | undefined, name: string) => {
      for (const p of this.pods.byIndex('vm', keyOf(namespace, name))) this.queue.add(p.metadata.uid);
    };
    this.vms.onAdd((v) => vmChanged(v.metadata.namespace, v.metadata.name));
    this.vms.onUpdate((_o, v) => vmChanged(v.metadata.namespace, v.metadata.name));
    const attachmentChanged = (p: Pod) => vmChanged(p.metadata.namespace, p.metadata.labels?.[HOTPLUG_VM_LABEL] ?? '');
    this.attachments.onAdd(attachmentChanged);
    this.attachments.onUpdate((_o, p) => attachmentChanged(p));
    this.attachments.onDelete(attachmentChanged);
    for (const informer of [this.migrationsOut, this.migrationsIn]) {
      const changed = (m: Migration) => vmChanged(m.metadata.namespace, m.spec.vmName);
      informer.onAdd(changed);
      informer.onUpdate((_o, m) => changed(m));
      informer.onDelete(changed);
    }
  }

  // --- reconcile -------------------------------------------------------------------------------------------

  private async reconcile(uid: string): Promise<{ requeueAfter: number } | void> {
    const state = this.states.get(uid);
    if (!state) return;
    if (!state.files.watch()) {
      // No run dir: a deleted pod's is gone for good. A kubelet creates it before the pod's containers start, so a
      // pod reported Running without one is a race with a slow volume setup: look again shortly, for a bounded time.
      if (state.deleted) this.forget(uid);
      else if (state.pod.status?.phase === 'Running' && state.missingRunDirChecks++ < MISSING_RUN_DIR_CHECKS) {
        return { requeueAfter: 250 };
      }
      return;
    }
    const { fresh, history } = state.files.events();
    state.history = history;
    for (const e of fresh) state.ch = chStateAfter(state.ch, e);
    if (state.inflight) return;
    if (!state.files.launcherDone()) return;
    const client = state.files.ch();
    if (!client) return;
    if (state.ch === 'unknown') state.ch = await probe(state);

    let result: { requeueAfter: number } | void;
    try {
      result = await this.reconcileRole(state);
    } catch (error) {
      if (error instanceof CloudHypervisorError && error.kind === 'transport') {
        // CH went away under us (its socket no longer answers): learn where it stands from its events and vm.info.
        state.ch = 'unknown';
      }
      throw error;
    } finally {
      // A long call started in this pass (boot, receive-migration): look again when it settles.
      const started = state.inflight as PodState['inflight'];
      void started?.promise.finally(() => {
        state.inflight = undefined;
        this.queue.add(uid, { urgent: true });
      });
    }
    if (state.ch === 'gone') {
      // CH no longer uses the hot-plugged volumes; their mounts must go before the kubelet removes the emptyDir.
      await releaseHotplugMounts(this.options.kubeletRoot, uid);
      if (state.deleted) this.forget(uid);
    } else if (state.deleted && containerEnded(state)) this.forget(uid);
    return result;
  }

  /** What the pod is to its VM decides the reconcile: a migration's end, the VM's current pod, or a leftover. */
  private async reconcileRole(state: PodState): Promise<{ requeueAfter: number } | void> {
    // A migration gives the pod a role first; its target side needs no answer from CH (which serves nothing else
    // while it receives a VM).
    const migration = await this.options.migrations?.reconcile(state, this);
    if (migration) return after(migration.requeueAfterMs);
    // A socket that does not answer (CH starting, or something else listening): look again, backing off.
    if (state.ch === 'unknown') return { requeueAfter: Math.min(30_000, 200 * 2 ** Math.min(state.probes++, 8)) };
    const vm = this.currentVm(state);
    if (vm) {
      const deps = { cluster: this, observer: this, kubeletRoot: this.options.kubeletRoot };
      return after((await reconcileGuest(state, vm, deps)).requeueAfterMs);
    }
    // Not (or no longer) its VM's pod — an earlier run's, or a migration source left behind: stop it gracefully
    // when it terminates, as any VM pod.
    if (terminating(state) && state.ch !== 'gone') return after(await this.stopOrphan(state));
  }

  /** The VM whose current pod this is, from this node's cache. */
  private currentVm(state: PodState): Vm | undefined {
    const vmName = state.pod.metadata.labels?.[VM_LABEL];
    if (!vmName) return undefined;
    const vm = this.vms.get(state.pod.metadata.namespace, vmName);
    return vm?.status?.vmPodName === state.pod.metadata.name ? vm : undefined;
  }

  /** A terminating pod that runs no current guest: power button, then the hard stop after the pod's grace period. */
  private async stopOrphan(state: PodState): Promise<number | undefined> {
    const client = state.files.ch();
    if (!client) return undefined;
    const grace = guestGraceOfPod(state.pod.spec?.terminationGracePeriodSeconds) * 1000;
    if (state.ch === 'Running' && state.shutdownRequestedAt === undefined) {
      state.shutdownRequestedAt = Date.now();
      await client.vm.powerButton();
      return grace;
    }
    const left = (state.shutdownRequestedAt ?? 0) + grace - Date.now();
    if (left > 0 && state.ch === 'Running') return left;
    state.stoppedByDaemon = true;
    await client.vmm.shutdown();
    state.ch = 'gone';
    return undefined;
  }

  private forget(uid: string): void {
    this.states.get(uid)?.files.close();
    this.states.delete(uid);
  }

  // --- DaemonCluster ---------------------------------------------------------------------------------------

  vm(namespace: string, name: string): VmObject | undefined {
    return this.vms.get(namespace, name);
  }

  async fetchVm(namespace: string, name: string): Promise<VmObject | undefined> {
    return this.options.client.tryGet<Vm>(API_VERSION, 'VirtualMachine', name, namespace);
  }

  migrationsOfVm(namespace: string, vmName: string): MigrationObject[] {
    const key = keyOf(namespace, vmName);
    const seen = new Map<string, Migration>();
    for (const m of [...this.migrationsOut.byIndex('vm', key), ...this.migrationsIn.byIndex('vm', key)]) {
      seen.set(m.metadata.uid, m);
    }
    return [...seen.values()];
  }

  attachmentPods(namespace: string, vmName: string): DaemonPod[] {
    return this.attachments.byIndex('vm', keyOf(namespace, vmName));
  }

  async claim(namespace: string, name: string): Promise<{ volumeName?: string; volumeMode?: string } | undefined> {
    const pvc = await this.options.client.tryGet<KubeObject & { spec?: { volumeName?: string; volumeMode?: string } }>(
      'v1',
      'PersistentVolumeClaim',
      name,
      namespace,
    );
    return pvc?.spec;
  }

  async patchVmStatus(vm: VmObject, status: VmStatusPatch): Promise<VmObject> {
    return this.options.client.patchStatus<Vm>(vm as unknown as KubeObject, {
      metadata: { resourceVersion: vm.metadata.resourceVersion },
      status,
    });
  }

  async patchMigrationStatus(
    m: MigrationObject,
    status: Partial<VirtualMachineMigrationStatus>,
  ): Promise<MigrationObject> {
    return this.options.client.patchStatus<Migration>(m as unknown as KubeObject, {
      metadata: { resourceVersion: m.metadata.resourceVersion },
      status,
    });
  }

  event(obj: VmObject | MigrationObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.options.client
      .createEvent(obj as unknown as KubeObject, { type, reason, message: message.slice(0, 1024) })
      .catch((error: unknown) => this.logger.debug('event not recorded', { reason, error: String(error) }));
  }

  /** PowerObserver: counts every power call the daemon makes. */
  powerAction(action: PowerAction, vm: VmObject): void {
    this.powerActions?.inc({ action });
    this.logger.info('power action', { action, vm: `${vm.metadata.namespace}/${vm.metadata.name}` });
  }
}

/** CH's state on (re)attaching: vm.info answers with it, or 404 when CH holds no VM yet. */
async function probe(state: PodState): Promise<PodState['ch']> {
  if (state.history.vmmShutdown) return 'gone';
  const client = state.files.ch();
  if (!client) return 'unknown';
  try {
    const info = await client.vm.info({ timeoutMs: 5_000 });
    return info.state === 'Shutdown' ? 'Created' : info.state;
  } catch (error) {
    if (error instanceof CloudHypervisorError && error.kind === 'http' && error.statusCode === 404) return 'NoVM';
    // The socket is there but nothing answers: CH is still starting, or it exited without telling the event monitor
    // (killed); the kubelet's view of the container decides which.
    return containerEnded(state) ? 'gone' : 'unknown';
  }
}

function after(ms: number | undefined): { requeueAfter: number } | void {
  return ms !== undefined ? { requeueAfter: ms } : undefined;
}

function vmKeyOfPod(p: Pod): string[] {
  const vm = p.metadata.labels?.[VM_LABEL];
  return vm ? [keyOf(p.metadata.namespace, vm)] : [];
}

function withoutManagedFields<T extends KubeObject>(o: T): T {
  if (!o.metadata?.managedFields) return o;
  const { managedFields: _dropped, ...metadata } = o.metadata;
  return { ...o, metadata } as T;
}
