/**
 * The VirtualMachine lifecycle as a pure function: from what the controller observes (the VM, its pods, their
 * nodes, the time) to the status it should have and the actions that get it there. Level-triggered: it never
 * depends on which event caused the call, so a restarted controller resumes exactly where the last one stopped.
 *
 * Phases: '' → Pending → Scheduling (pod created) → Scheduled (pod bound) → Running/Paused (node daemon) →
 * Succeeded | Failed, or Stopped when the VM must not run. runPolicy and spec.power decide what follows a stop:
 *
 * | runPolicy      | at creation        | after Failed         | after Succeeded      |
 * |----------------|--------------------|----------------------|----------------------|
 * | Always         | start              | start (with backoff) | start                |
 * | RerunOnFailure | start              | start (with backoff) | on restartRequest    |
 * | Once           | start              | on restartRequest    | on restartRequest    |
 * | Manual         | on restartRequest  | on restartRequest    | on restartRequest    |
 * | Halted         | never (Stopped)    | never                | never                |
 */
import type { VirtualMachineSpec, VirtualMachineStatus, VmPhase } from '../../api';
import { RUN_LABEL } from '../pod-layout';

export const VM_FINALIZER = 'kubevisor.io/vm-protection';

/** A pod as far as the lifecycle reads it. */
export interface PodView {
  metadata: {
    name: string;
    uid?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { uid: string; controller?: boolean }[];
  };
  spec?: { nodeName?: string };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      name: string;
      state?: { terminated?: { reason?: string; message?: string; exitCode?: number; finishedAt?: string } };
    }[];
  };
}

/** A node as far as the lifecycle reads it. */
export interface NodeView {
  /** Labels: only those the controller reads (the CPU features a migration's receiving node must match). */
  metadata: { name: string; labels?: Record<string, string> };
  status?: { conditions?: { type: string; status: string; lastTransitionTime?: string }[] };
}

export interface VmView {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    generation?: number;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
  spec: VirtualMachineSpec;
  status?: VirtualMachineStatus;
}

export interface LifecycleConfig {
  /** How long a VM pod's node may be NotReady/Unknown (or gone) before the VM counts as lost and is recovered. */
  readonly nodeLossGraceMs: number;
  /** Restart backoff after a failure: base × 2^(consecutive failures − 1), at most max. */
  readonly restartBackoffBaseMs: number;
  readonly restartBackoffMaxMs: number;
  /** A run whose guest stayed up this long resets the consecutive-failure count (as the kubelet's crash-loop backoff). */
  readonly stableRunMs: number;
  /**
   * Cloud Hypervisor exits 0 whether the guest powered off or crashed; only the node daemon can tell (its event
   * monitor and CH's log). How long after the pod ended to wait for its word before taking the exit as a power-off.
   */
  readonly guestExitReportMs: number;
}

export const DEFAULT_LIFECYCLE: LifecycleConfig = {
  nodeLossGraceMs: 60_000,
  restartBackoffBaseMs: 5_000,
  restartBackoffMaxMs: 300_000,
  stableRunMs: 600_000,
  guestExitReportMs: 30_000,
};

export type VmAction =
  | { type: 'addFinalizer' }
  | { type: 'removeFinalizer' }
  | { type: 'createPod'; run: number }
  | { type: 'deletePod'; name: string; force: boolean; reason: string }
  | { type: 'event'; reason: string; message: string; warning: boolean };

export interface VmDecision {
  status: VirtualMachineStatus;
  actions: VmAction[];
  /** Look again after this long even if nothing changes (node-loss grace, restart backoff). */
  requeueAfterMs?: number;
}

type Condition = NonNullable<VirtualMachineStatus['conditions']>[number];

const TERMINAL: ReadonlySet<VmPhase> = new Set(['Succeeded', 'Failed', 'Stopped']);

/** Computes the desired status and the actions for one VM. `podName(run)` names the pod of a run. */
export function reconcileVm(
  vm: VmView,
  pods: readonly PodView[],
  nodes: ReadonlyMap<string, NodeView>,
  now: Date,
  podName: (run: number) => string,
  config: LifecycleConfig = DEFAULT_LIFECYCLE,
): VmDecision {
  const old = vm.status ?? {};
  const status: VirtualMachineStatus = { ...structuredCopy(old), observedGeneration: vm.metadata.generation };
  const actions: VmAction[] = [];
  let requeueAfterMs: number | undefined;
  const requeue = (ms: number) => (requeueAfterMs = Math.max(1, Math.min(requeueAfterMs ?? Infinity, ms)));
  /**
   * `event: false` for a Normal transition the status already shows and the pod's own Events tell (its creation, its
   * binding): under a burst such Events would double the controller's writes and tell nothing new. Warnings and
   * transitions that act (a restart, a stop) keep theirs.
   */
  const setPhase = (phase: VmPhase, reason: string, message: string, warning = false, event = true) => {
    if (status.phase === phase) return;
    status.phase = phase;
    status.phaseTransitionTime = now.toISOString();
    if (event || warning) actions.push({ type: 'event', reason, message, warning });
  };
  // Pods of a run newer than this status are the work of a pass whose status write the cache has not shown yet:
  // they are left alone, never deleted on the word of a stale status.
  const currentRun = old.restarts ?? 0;
  const known = pods.filter((p) => runOf(p) <= currentRun);
  const live = known.filter((p) => !p.metadata.deletionTimestamp);
  // Deletion and Halted stop every pod, whatever run it belongs to.
  const allLive = pods.filter((p) => !p.metadata.deletionTimestamp);
  const current = status.vmPodName ? pods.find((p) => p.metadata.name === status.vmPodName) : undefined;
  const migrationTarget = status.migration?.targetVMPodName;

  // Deletion: stop every pod (gracefully: the daemon shuts the guest down within the pod's grace period), then let go.
  if (vm.metadata.deletionTimestamp) {
    for (const p of allLive)
      actions.push({ type: 'deletePod', name: p.metadata.name, force: false, reason: 'VM deleted' });
    if (pods.length === 0 && vm.metadata.finalizers?.includes(VM_FINALIZER)) actions.push({ type: 'removeFinalizer' });
    return { status, actions };
  }
  if (!vm.metadata.finalizers?.includes(VM_FINALIZER)) actions.push({ type: 'addFinalizer' });

  const spec = vm.spec;
  const policy = spec.runPolicy ?? 'Once';
  const request = spec.power?.restartRequest;
  const newRequest = request !== undefined && request !== '' && request !== old.observedRestartRequest;

  const start = (reason: string, message: string) => {
    if (status.vmPodName) status.restarts = (status.restarts ?? 0) + 1;
    if (newRequest) status.observedRestartRequest = request;
    const run = status.restarts ?? 0;
    status.vmPodName = podName(run);
    delete status.vmPodUID;
    delete status.nodeName;
    delete status.interfaces;
    delete status.guest;
    delete status.hotplugVolumes;
    status.conditions = setCondition(
      status.conditions,
      'Ready',
      'False',
      'Starting',
      'VM pod is starting',
      now,
      vm.metadata.generation,
    );
    // The first start repeats the VM's creation (the status says Scheduling, the pod's Events say the rest); a restart
    // is an action of its own and keeps its Event.
    setPhase('Scheduling', reason, message, false, reason !== 'Starting');
    actions.push({ type: 'createPod', run });
  };

  // A running VM must stop when it is declared Halted: delete its pod gracefully; it becomes Stopped once gone.
  if (policy === 'Halted' && !TERMINAL.has(status.phase as VmPhase)) {
    for (const p of allLive)
      actions.push({ type: 'deletePod', name: p.metadata.name, force: false, reason: 'runPolicy Halted' });
    if (allLive.length === 0) {
      status.conditions = setCondition(
        status.conditions,
        'Ready',
        'False',
        'Halted',
        'runPolicy is Halted',
        now,
        vm.metadata.generation,
      );
      setPhase('Stopped', 'Stopped', 'runPolicy is Halted');
    }
    return done();
  }

  switch (status.phase) {
    case undefined:
    case 'Pending': {
      if (policy === 'Halted' || (policy === 'Manual' && !newRequest)) {
        status.conditions = setCondition(
          status.conditions,
          'Ready',
          'False',
          'NotStarted',
          `runPolicy is ${policy}`,
          now,
          vm.metadata.generation,
        );
        setPhase(
          'Stopped',
          'NotStarted',
          policy === 'Manual' ? 'runPolicy Manual: waiting for spec.power.restartRequest' : 'runPolicy is Halted',
        );
        break;
      }
      start('Starting', 'creating the VM pod');
      break;
    }
    case 'Scheduling':
    case 'Scheduled':
    case 'Running':
    case 'Paused':
    case 'Unknown': {
      if (!current) {
        if (status.phase === 'Scheduling') {
          // Created before a crash, or not yet visible in the cache: creating again is idempotent (stable name).
          actions.push({ type: 'createPod', run: status.restarts ?? 0 });
          break;
        }
        stopped('Failed', 'PodDeleted', `VM pod ${status.vmPodName} disappeared`, true);
        break;
      }
      if (current.metadata.deletionTimestamp && status.phase === 'Scheduling') break;
      const nodeName = current.spec?.nodeName;
      if (nodeName) {
        const lostFor = nodeLostForMs(nodes.get(nodeName), now);
        if (lostFor !== undefined) {
          if (lostFor >= config.nodeLossGraceMs) {
            // The node is gone or silent past the grace period: the pod cannot be stopped through the kubelet, so it is
            // force-deleted and the VM recovered elsewhere per runPolicy. Fencing the node is the operator's duty.
            actions.push({
              type: 'deletePod',
              name: current.metadata.name,
              force: true,
              reason: `node ${nodeName} lost`,
            });
            stopped(
              'Failed',
              'NodeLost',
              `node ${nodeName} has not been Ready for ${Math.round(lostFor / 1000)} s`,
              true,
            );
            break;
          }
          if (status.phase !== 'Unknown') setPhase('Unknown', 'NodeNotReady', `node ${nodeName} is not Ready`, true);
          requeue(config.nodeLossGraceMs - lostFor);
          break;
        }
        if (status.phase === 'Unknown') status.phase = 'Scheduled';
      }
      const podPhase = current.status?.phase;
      // What the node daemon saw of this pod's guest; a report about an earlier pod says nothing about this one.
      const guest = status.guest?.podName === current.metadata.name ? status.guest : undefined;
      if (podPhase === 'Failed') {
        stopped('Failed', 'PodFailed', terminationMessage(current) ?? 'VM pod failed', true);
        break;
      }
      if (podPhase === 'Succeeded' || guest?.exitReason) {
        const exit = guestExit(guest, current, Boolean(status.migration), now, config);
        if (exit.wait !== undefined) {
          requeue(exit.wait);
          break;
        }
        stopped(exit.phase, exit.reason, exit.message, exit.phase === 'Failed');
        break;
      }
      if (nodeName && status.phase === 'Scheduling') {
        status.nodeName = nodeName;
        if (current.metadata.uid) status.vmPodUID = current.metadata.uid;
        // No Event: the status shows the node, and the pod's own Scheduled Event (the scheduler's) tells the binding.
        setPhase('Scheduled', 'Scheduled', `VM pod ${current.metadata.name} bound to node ${nodeName}`, false, false);
      }
      status.conditions = setCondition(
        status.conditions,
        'Ready',
        ...readiness(status.phase, guest, current),
        now,
        vm.metadata.generation,
      );
      break;
    }
    case 'Succeeded':
    case 'Failed':
    case 'Stopped': {
      // Restart only once every pod of the previous run is gone, so two runs never share a disk.
      if (known.length > 0) {
        for (const p of live)
          actions.push({ type: 'deletePod', name: p.metadata.name, force: false, reason: `VM ${status.phase}` });
        break;
      }
      if (policy === 'Halted') break;
      const wants =
        newRequest ||
        (status.phase === 'Stopped' && policy !== 'Manual') ||
        policy === 'Always' ||
        (policy === 'RerunOnFailure' && status.phase === 'Failed');
      if (!wants) break;
      if (!newRequest) {
        const wait = backoffMs(status, now, config);
        if (wait > 0) {
          requeue(wait);
          break;
        }
      }
      start('Restarting', newRequest ? `restartRequest ${request}` : `runPolicy ${policy}`);
      break;
    }
  }

  // Pod GC: any pod of this VM other than the current one and a migration target is left over from an earlier run.
  for (const p of live) {
    const name = p.metadata.name;
    if (
      name !== status.vmPodName &&
      name !== migrationTarget &&
      !actions.some((a) => a.type === 'deletePod' && a.name === name)
    ) {
      actions.push({ type: 'deletePod', name, force: false, reason: 'left over from an earlier run' });
    }
  }
  return done();

  function stopped(phase: 'Succeeded' | 'Failed', reason: string, message: string, warning: boolean) {
    status.conditions = setCondition(status.conditions, 'Ready', 'False', reason, message, now, vm.metadata.generation);
    delete status.interfaces;
    // Crash-loop accounting: a failure, or a stop that will restart by itself (Always), counts unless the guest had
    // stayed up long enough; anything else resets the count.
    const bootTime = status.guest?.podName === status.vmPodName ? Date.parse(status.guest?.bootTime ?? '') : NaN;
    const stable = !Number.isNaN(bootTime) && now.getTime() - bootTime >= config.stableRunMs;
    const counts = !stable && (phase === 'Failed' || policy === 'Always');
    status.consecutiveFailures = counts ? (status.consecutiveFailures ?? 0) + 1 : 0;
    setPhase(phase, reason, message, warning);
    // Go on at once: the next pass deletes the pod and applies runPolicy.
    requeue(1);
  }

  function done(): VmDecision {
    return { status, actions, ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}) };
  }
}

/** Milliseconds the node has been lost (missing, or Ready not True), undefined when it is Ready. */
/** The run a pod belongs to (its run label); pods without one count as the oldest. */
function runOf(pod: PodView): number {
  const run = Number(pod.metadata.labels?.[RUN_LABEL]);
  return Number.isInteger(run) ? run : -1;
}

function nodeLostForMs(node: NodeView | undefined, now: Date): number | undefined {
  if (!node) return Infinity;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return undefined;
  const since = ready?.lastTransitionTime ? Date.parse(ready.lastTransitionTime) : NaN;
  return Number.isNaN(since) ? 0 : Math.max(0, now.getTime() - since);
}

/** How long an automatic restart still waits: base × 2^(n−1) after n consecutive failures (none after none). */
function backoffMs(status: VirtualMachineStatus, now: Date, c: LifecycleConfig): number {
  const failures = Math.min(status.consecutiveFailures ?? 0, 16);
  if (failures === 0) return 0;
  const delay = Math.min(c.restartBackoffBaseMs * 2 ** (failures - 1), c.restartBackoffMaxMs);
  const since = status.phaseTransitionTime ? Date.parse(status.phaseTransitionTime) : now.getTime();
  return Math.max(0, since + delay - now.getTime());
}

type GuestStatus = NonNullable<VirtualMachineStatus['guest']>;
type GuestExit =
  { wait: number } | { wait?: undefined; phase: 'Succeeded' | 'Failed'; reason: string; message: string };

/**
 * How the guest of a pod ended, from the node daemon's report; a pod that ended (CH exited 0) without one is
 * waited for a while (during a migration, as long as the migration lasts), then taken as a power-off.
 */
function guestExit(
  guest: GuestStatus | undefined,
  pod: PodView,
  migrating: boolean,
  now: Date,
  c: LifecycleConfig,
): GuestExit {
  switch (guest?.exitReason) {
    case 'PoweredOff':
      return { phase: 'Succeeded', reason: 'GuestPoweredOff', message: 'the guest shut itself down' };
    case 'Crashed':
      return {
        phase: 'Failed',
        reason: 'GuestCrashed',
        message: guest.exitMessage || 'Cloud Hypervisor stopped the guest on an error',
      };
    case 'BootFailed':
      return { phase: 'Failed', reason: 'BootFailed', message: guest.exitMessage || 'the guest could not boot' };
  }
  // A source pod ends when its guest has moved; until the migration ends, only the daemons' word decides.
  if (migrating) return { wait: 1000 };
  const finished = Date.parse(
    pod.status?.containerStatuses?.find((s) => s.state?.terminated)?.state?.terminated?.finishedAt ?? '',
  );
  const waited = Number.isNaN(finished) ? 0 : now.getTime() - finished;
  if (waited < c.guestExitReportMs) return { wait: c.guestExitReportMs - waited };
  return {
    phase: 'Succeeded',
    reason: 'Shutdown',
    message: `Cloud Hypervisor exited and the node daemon reported nothing within ${Math.round(c.guestExitReportMs / 1000)} s; taken as a guest shutdown`,
  };
}

/** The Ready condition: the guest runs in this pod (node daemon) and the pod is ready (the VM's readiness probe). */
function readiness(
  phase: VmPhase | undefined,
  guest: GuestStatus | undefined,
  pod: PodView,
): ['True' | 'False', string, string] {
  if (phase === 'Paused') return ['False', 'Paused', 'the guest is paused (spec.power.paused)'];
  // Until the pod is bound the condition stays as the pod's creation set it: one status write fewer per VM.
  if (phase === 'Scheduling') return ['False', 'Starting', 'VM pod is starting'];
  if (phase !== 'Running' || !guest?.bootTime) {
    return ['False', 'GuestNotRunning', 'waiting for the node daemon to boot the guest'];
  }
  const podReady = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  return podReady
    ? ['True', 'GuestReady', 'the guest is running and ready']
    : ['False', 'GuestNotReady', 'the guest is running; its readiness probe does not pass yet'];
}

function terminationMessage(pod: PodView): string | undefined {
  const t = pod.status?.containerStatuses?.find((c) => c.state?.terminated)?.state?.terminated;
  return t?.message?.trim() || t?.reason;
}

/** Sets a condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  conditions: Condition[] | undefined,
  type: string,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message: string,
  now: Date,
  observedGeneration?: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type,
    status,
    reason,
    message,
    lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now.toISOString(),
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

function structuredCopy<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
