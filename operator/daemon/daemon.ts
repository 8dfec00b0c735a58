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
import { join } from 'node:path';
import {
  HOTPLUG_VM_LABEL,
  HOTPLUG_VOLUME,
  HOTPLUG_VOLUME_LABEL,
  POD_VOLUMES_ANNOTATION,
  VM_LABEL,
} from '../pod-layout';
import { mountsBelow } from './mounts';
import { pendingNetworkRequest, prepareVmNetwork } from '../netprep';
import { podNetns } from './pod-processes';
import { type HotplugCluster, releaseHotplugMounts } from './hotplug';
import type { DaemonCluster, DaemonPod, MigrationObject, VmObject, VmStatusPatch } from './cluster';
import { CloudHypervisorError } from '../cloudhypervisor';
import type { PowerAction } from './guest-reconciler';
import { reconcileGuest } from './guest-reconciler';
import type { PodState } from './pod-state';
import { chStateAfter, containerEnded, newPodState } from './pod-state';
import { VmPodFiles, type VmPodPaths } from './vm-pod-files';
import { Counter } from 'prom-client';

type Pod = KubeObject & DaemonPod;

/** Network preparations a pod gets (its launcher asks once; a restarted daemon may answer again). */
const MAX_NETWORK_RUNS = 3;
/** How often (every 250 ms) a Running pod without a run dir is looked at again before the daemon gives up on it. */
const MISSING_RUN_DIR_CHECKS = 120;
type Vm = KubeObject & VmObject;
type Migration = KubeObject & MigrationObject;

export interface DaemonOptions extends VmPodPaths {
  readonly client: KubeClient;
  readonly nodeName: string;
  /** The host's /proc (the daemon runs with the host's PID namespace). @default /proc */
  readonly procRoot?: string;
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
    const pods = { ...common, transform: podView };
    const node = encodeURIComponent(options.nodeName);
    this.pods = new Informer<Pod>({
      ...pods,
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
      ...pods,
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
    await this.releaseStaleMounts();
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
    // Only pods the cluster says this daemon drives are touched at all: a VM's current pod, or the receiving pod of a
    // migration in progress. Anything else that merely carries the VM label — an earlier run's pod, a leftover of a
    // migration, a pod a tenant made up — is never read, connected to or probed.
    const role = this.roleOf(state);
    if (!role) {
      state.files.close();
      await releaseHotplugMounts(this.options.kubeletRoot, uid);
      if (state.deleted) this.forget(uid);
      return;
    }
    if (!state.files.watch()) {
      // No run dir: a deleted pod's is gone for good. A kubelet creates it before the pod's containers start, so a
      // pod reported Running without one is a race with a slow volume setup: look again shortly, for a bounded time.
      if (state.deleted) {
        await releaseHotplugMounts(this.options.kubeletRoot, uid);
        this.forget(uid);
      } else if (state.pod.status?.phase === 'Running' && state.missingRunDirChecks++ < MISSING_RUN_DIR_CHECKS) {
        return { requeueAfter: 250 };
      }
      return;
    }
    const { fresh, history } = state.files.events();
    state.history = history;
    for (const e of fresh) state.ch = chStateAfter(state.ch, e);
    if (state.inflight) return;
    if (!state.files.launcherDone()) return this.prepareNetwork(state, role);
    if (!state.files.ch()) return;
    // The receiving side of a migration needs no answer from CH, which serves nothing else while it receives a VM.
    if (state.ch === 'unknown' && role === 'current') {
      state.ch = await probe(state);
      if (state.ch !== 'unknown') state.probes = 0;
    }

    let result: { requeueAfter: number } | void;
    try {
      result = await this.reconcileRole(state, role);
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
    } else if (state.deleted && containerEnded(state)) {
      await releaseHotplugMounts(this.options.kubeletRoot, uid);
      this.forget(uid);
    }
    return result;
  }

  private async reconcileRole(state: PodState, role: 'current' | 'target'): Promise<{ requeueAfter: number } | void> {
    const migration = await this.options.migrations?.reconcile(state, this);
    if (migration || role === 'target') return after(migration?.requeueAfterMs);
    // A socket that does not answer (CH starting, or something else listening): look again, backing off.
    if (state.ch === 'unknown') return { requeueAfter: Math.min(30_000, 200 * 2 ** Math.min(state.probes++, 8)) };
    const vm = this.currentVm(state);
    if (!vm) return;
    const deps = { cluster: this, observer: this, kubeletRoot: this.options.kubeletRoot };
    return after((await reconcileGuest(state, vm, deps)).requeueAfterMs);
  }

  /**
   * The launcher asked for its network (it holds no NET_ADMIN): build it inside the pod's network namespace, found
   * from the host by the pod's cgroup. netprep answers in the run dir itself, also with a failure's reason; the
   * launcher's next step follows from that answer. A pod whose sandbox has no process yet is looked at again shortly.
   */
  private async prepareNetwork(state: PodState, role: 'current' | 'target'): Promise<{ requeueAfter: number } | void> {
    if (pendingNetworkRequest(state.files.runDir) === undefined) return;
    // A launcher asks once (the pod never restarts); a pod that keeps asking, or whose answer cannot be written,
    // gets a bounded number of tries, not the daemon's whole attention.
    if (state.networkRuns >= MAX_NETWORK_RUNS) {
      if (state.networkRuns++ === MAX_NETWORK_RUNS) {
        this.logger.warn('pod keeps asking for its network; not answered again', { pod: state.pod.metadata.name });
      }
      return;
    }
    state.networkRuns++;
    const netnsPath = podNetns(state.pod.metadata.uid, this.options.procRoot);
    if (!netnsPath) return state.netnsChecks++ < MISSING_RUN_DIR_CHECKS ? { requeueAfter: 250 } : undefined;
    const { namespace } = state.pod.metadata;
    const vmName = state.pod.metadata.labels?.[VM_LABEL] ?? '';
    // A receiving pod's VM is another node's until the migration ends; its network (immutable) is the same.
    const vm = role === 'current' ? this.currentVm(state) : await this.fetchVm(namespace, vmName);
    if (!vm) return;
    const started = Date.now();
    state.inflight = {
      what: 'network',
      promise: prepareVmNetwork({
        vm: { metadata: { name: vm.metadata.name, namespace, uid: vm.metadata.uid }, spec: vm.spec },
        netnsPath,
        runDir: state.files.runDir,
      }).then(
        (ready) =>
          this.logger.info('pod network prepared', {
            pod: state.pod.metadata.name,
            ms: Date.now() - started,
            ...('error' in ready ? { error: ready.error } : {}),
          }),
        (error: unknown) =>
          this.logger.error('pod network not prepared', { pod: state.pod.metadata.name, error: String(error) }),
      ),
    };
    void state.inflight.promise.finally(() => {
      state.inflight = undefined;
      // Not urgent, and after a pause: the answer is in the run dir, whose watch wakes the pod when it matters.
      this.queue.addAfter(state.pod.metadata.uid, 250 * state.networkRuns);
    });
  }

  /** What this daemon is to drive in the pod, from the caches alone (no I/O). */
  private roleOf(state: PodState): 'current' | 'target' | undefined {
    if (this.currentVm(state)) return 'current';
    const vmName = state.pod.metadata.labels?.[VM_LABEL] ?? '';
    const receiving = this.migrationsIn
      .byIndex('vm', keyOf(state.pod.metadata.namespace, vmName))
      .some(
        (m) =>
          m.status?.targetVMPodName === state.pod.metadata.name &&
          m.status.targetNodeName === this.nodeName &&
          !['Succeeded', 'Failed'].includes(m.status.phase ?? '') &&
          !m.metadata.deletionTimestamp,
      );
    return receiving ? 'target' : undefined;
  }

  /** The VM whose current pod this is (by name and, once recorded, UID), from this node's cache. */
  private currentVm(state: PodState): Vm | undefined {
    const vmName = state.pod.metadata.labels?.[VM_LABEL];
    if (!vmName) return undefined;
    const vm = this.vms.get(state.pod.metadata.namespace, vmName);
    const s = vm?.status;
    if (s?.vmPodName !== state.pod.metadata.name) return undefined;
    return !s.vmPodUID || s.vmPodUID === state.pod.metadata.uid ? vm : undefined;
  }

  /**
   * Hot-plug mounts whose VM pod is gone (the daemon was down when it ended): released at start, before the kubelet's
   * cleanup of the pod's emptyDir runs into them.
   */
  private async releaseStaleMounts(): Promise<void> {
    const live = new Set(this.pods.list().map((p) => p.metadata.uid));
    const pattern = new RegExp(`/pods/([^/]+)/volumes/kubernetes\\.io~empty-dir/${HOTPLUG_VOLUME}/[^/]+$`);
    const stale = new Set(
      mountsBelow(join(this.options.kubeletRoot, 'pods'))
        .map((m) => pattern.exec(m)?.[1])
        .filter((uid): uid is string => uid !== undefined && !live.has(uid)),
    );
    for (const uid of stale) {
      this.logger.info('releasing hot-plug mounts of a VM pod that is gone', { pod: uid });
      await releaseHotplugMounts(this.options.kubeletRoot, uid);
    }
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

  async podNodeName(namespace: string, name: string): Promise<string | undefined> {
    return (await this.options.client.tryGet<Pod>('v1', 'Pod', name, namespace))?.spec?.nodeName;
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

  async boundVolume(namespace: string, claim: string): Promise<{ pvName: string; volumeMode?: string } | undefined> {
    type Pvc = KubeObject & { spec?: { volumeName?: string; volumeMode?: string }; status?: { phase?: string } };
    type Pv = KubeObject & { spec?: { claimRef?: { uid?: string; namespace?: string; name?: string } } };
    const pvc = await this.options.client.tryGet<Pvc>('v1', 'PersistentVolumeClaim', claim, namespace);
    const pvName = pvc?.spec?.volumeName;
    if (!pvc || !pvName || pvc.status?.phase !== 'Bound') return undefined;
    // A claim can name any PV in spec.volumeName; only a PV that names this claim back is really its volume.
    const pv = await this.options.client.tryGet<Pv>('v1', 'PersistentVolume', pvName);
    const ref = pv?.spec?.claimRef;
    if (!ref || ref.uid !== pvc.metadata.uid || ref.namespace !== namespace || ref.name !== claim) return undefined;
    return { pvName, ...(pvc.spec?.volumeMode ? { volumeMode: pvc.spec.volumeMode } : {}) };
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

/**
 * Of a pod, the daemon keeps only what it reads: anyone who may create pods can label one as a VM pod and bind it to
 * this node, and a cache of whole pod objects would be theirs to grow.
 */
function podView(p: Pod): Pod {
  const m = p.metadata;
  const volumes = p.spec?.volumes?.slice(0, 64).map((v) => ({
    name: v.name,
    ...(v.persistentVolumeClaim ? { persistentVolumeClaim: { claimName: v.persistentVolumeClaim.claimName } } : {}),
  }));
  return {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
      labels: pick(m.labels, [VM_LABEL, HOTPLUG_VM_LABEL, HOTPLUG_VOLUME_LABEL]),
      annotations: pick(m.annotations, [POD_VOLUMES_ANNOTATION]),
      ownerReferences: m.ownerReferences?.slice(0, 8).map((o) => ({ uid: o.uid, controller: o.controller })),
    },
    spec: {
      nodeName: p.spec?.nodeName,
      terminationGracePeriodSeconds: p.spec?.terminationGracePeriodSeconds,
      ...(volumes ? { volumes } : {}),
    },
    status: {
      phase: p.status?.phase,
      containerStatuses: p.status?.containerStatuses?.slice(0, 16).map((c) => ({
        name: c.name,
        ...(c.state?.terminated ? { state: { terminated: c.state.terminated } } : {}),
      })),
    },
  } as Pod;
}

function pick(from: Record<string, string> | undefined, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (from?.[k] !== undefined) out[k] = from[k].slice(0, 4096);
  return out;
}

function withoutManagedFields<T extends KubeObject>(o: T): T {
  if (!o.metadata?.managedFields) return o;
  const { managedFields: _dropped, ...metadata } = o.metadata;
  return { ...o, metadata } as T;
}
