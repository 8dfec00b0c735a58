/**
 * The controller's half of a live migration, as a pure function. It checks the request, claims the VM
 * (vm.status.migration), creates the receiving pod on another node (required anti-affinity) and follows it up to
 * TargetReady; the node daemons then move the guest (Running → Sent → Succeeded). It fails the migration on a
 * timeout or a failed target pod, and always releases the VM and removes the target pod when it ends unsuccessfully.
 */
import type {
  MigrationPhase,
  VirtualMachineMigrationSpec,
  VirtualMachineMigrationStatus,
  VirtualMachineStatus,
} from '../../api';
import type { PodView, VmView } from './vm-lifecycle';
import { setCondition } from './vm-lifecycle';

export const MIGRATION_FINALIZER = 'kubevisor.io/migration-protection';

export interface MigrationView {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
  spec: VirtualMachineMigrationSpec;
  status?: VirtualMachineMigrationStatus;
}

export type MigrationAction =
  | { type: 'addFinalizer' }
  | { type: 'removeFinalizer' }
  | { type: 'setVmMigration'; migration: VirtualMachineStatus['migration'] | null }
  | { type: 'createTargetPod'; podName: string }
  | { type: 'deletePod'; name: string; reason: string }
  | { type: 'event'; reason: string; message: string; warning: boolean };

export interface MigrationDecision {
  status: VirtualMachineMigrationStatus;
  actions: MigrationAction[];
  requeueAfterMs?: number;
}

const DONE: ReadonlySet<MigrationPhase> = new Set(['Succeeded', 'Failed']);

/** Why a VM cannot be live-migrated, or undefined when it can (Cloud Hypervisor's and the pod network's limits). */
export function notMigratableReason(vm: VmView): string | undefined {
  const s = vm.spec;
  if (s.instance.cpu?.dedicatedCPUPlacement) return 'dedicated CPUs are pinned to this node';
  for (const i of s.instance.interfaces ?? []) {
    const net = s.networks?.find((n) => n.name === i.name);
    if (i.sriov || i.vhostUser) return `interface ${i.name} is bound to a device of this node`;
    if (net?.pod && !i.masquerade) return `interface ${i.name} bridges the pod network, whose IP changes with the pod`;
  }
  for (const v of s.volumes ?? []) {
    if (v.containerDisk || v.containerRootfs) return `volume ${v.name} lives on this node's ephemeral storage`;
  }
  if (s.instance.fileSystems?.length) return 'virtio-fs shares cannot be migrated';
  // The receiving pod would mount a hot-plugged claim as one of its own volumes, at another path than the one the
  // guest's disk was attached from.
  const hotplugged = vm.status?.hotplugVolumes?.find((v) => v.phase === 'Attached' || v.phase === 'Detaching');
  if (hotplugged) return `volume ${hotplugged.name} is hot-plugged: detach it, or restart the VM so its pod has it`;
  return undefined;
}

/** `targetPodName` names the receiving pod of this migration (stable, so re-creating it is harmless). */
/** How often a migration waiting for another one to release the VM looks again. */
export const WAIT_FOR_CLAIM_MS = 1000;

export function reconcileMigration(
  m: MigrationView,
  vm: VmView | undefined,
  pods: readonly PodView[],
  now: Date,
  targetPodName: string,
): MigrationDecision {
  const status: VirtualMachineMigrationStatus = {
    ...JSON.parse(JSON.stringify(m.status ?? {})),
    observedGeneration: m.metadata.generation,
  };
  const actions: MigrationAction[] = [];
  const claimedByUs = vm?.status?.migration?.uid === m.metadata.uid;
  const target = pods.find((p) => p.metadata.name === (status.targetVMPodName ?? targetPodName));

  const setPhase = (phase: MigrationPhase, reason: string, message: string, warning = false) => {
    if (status.phase === phase) return;
    status.phase = phase;
    status.conditions = setCondition(
      status.conditions,
      'Complete',
      phase === 'Succeeded' ? 'True' : 'False',
      reason,
      message,
      now,
      m.metadata.generation,
    );
    actions.push({ type: 'event', reason, message, warning });
  };
  // Ends the migration on our side: the VM is released and the receiving pod removed unless it became the VM's pod.
  const release = () => {
    if (claimedByUs) actions.push({ type: 'setVmMigration', migration: null });
    if (
      target &&
      !target.metadata.deletionTimestamp &&
      status.phase !== 'Succeeded' &&
      vm?.status?.vmPodName !== target.metadata.name
    ) {
      actions.push({ type: 'deletePod', name: target.metadata.name, reason: `migration ${status.phase ?? 'deleted'}` });
    }
  };
  const fail = (reason: string, message: string) => {
    setPhase('Failed', reason, message, true);
    release();
  };

  if (m.metadata.deletionTimestamp) {
    release();
    if (m.metadata.finalizers?.includes(MIGRATION_FINALIZER)) actions.push({ type: 'removeFinalizer' });
    return { status, actions };
  }
  if (status.phase && DONE.has(status.phase)) {
    release();
    return { status, actions };
  }
  if (!m.metadata.finalizers?.includes(MIGRATION_FINALIZER)) actions.push({ type: 'addFinalizer' });

  const timeoutMs = (m.spec.timeoutSeconds ?? 600) * 1000;
  const age = m.metadata.creationTimestamp ? now.getTime() - Date.parse(m.metadata.creationTimestamp) : 0;
  if (age >= timeoutMs) {
    fail('Timeout', `not completed within ${m.spec.timeoutSeconds ?? 600} s; the VM stays on its source node`);
    return { status, actions };
  }
  // Look again when the timeout expires, even if nothing else happens.
  const requeueAfterMs = timeoutMs - age;

  if (!status.phase) {
    if (!vm) return { ...failNow('VMNotFound', `VirtualMachine ${m.spec.vmName} does not exist`) };
    if (vm.metadata.deletionTimestamp)
      return { ...failNow('VMDeleted', `VirtualMachine ${m.spec.vmName} is being deleted`) };
    if (vm.status?.phase !== 'Running' && vm.status?.phase !== 'Paused') {
      return {
        ...failNow(
          'VMNotRunning',
          `VirtualMachine ${m.spec.vmName} is ${vm.status?.phase ?? 'not started'}, not Running`,
        ),
      };
    }
    if (vm.status?.migration?.uid && !claimedByUs) {
      // Another migration holds the VM — often one that just finished and has not released it yet. This one waits
      // (its timeout still runs) rather than failing a request that would succeed a moment later.
      const message = `VirtualMachine ${m.spec.vmName} is being migrated by ${vm.status.migration.name}; this migration starts when it ends`;
      if (status.conditions?.find((c) => c.type === 'Complete')?.reason !== 'WaitingForMigration') {
        status.conditions = setCondition(
          status.conditions,
          'Complete',
          'False',
          'WaitingForMigration',
          message,
          now,
          m.metadata.generation,
        );
        actions.push({ type: 'event', reason: 'WaitingForMigration', message, warning: false });
      }
      return { status, actions, requeueAfterMs: Math.min(WAIT_FOR_CLAIM_MS, requeueAfterMs) };
    }
    const reason = notMigratableReason(vm);
    if (reason) return { ...failNow('NotMigratable', reason) };
    status.sourceNodeName = vm.status?.nodeName;
    status.targetVMPodName = targetPodName;
    actions.push({
      type: 'setVmMigration',
      migration: { name: m.metadata.name, uid: m.metadata.uid, targetVMPodName: targetPodName },
    });
    setPhase('Pending', 'Accepted', `migrating ${m.spec.vmName} off ${status.sourceNodeName}`);
    return done();
  }

  if (!vm || vm.metadata.deletionTimestamp) {
    fail('VMDeleted', `VirtualMachine ${m.spec.vmName} was deleted`);
    return done();
  }
  if (!claimedByUs) {
    actions.push({
      type: 'setVmMigration',
      migration: { name: m.metadata.name, uid: m.metadata.uid, targetVMPodName: status.targetVMPodName },
    });
    return done();
  }
  switch (status.phase) {
    case 'Pending':
      actions.push({ type: 'createTargetPod', podName: status.targetVMPodName ?? targetPodName });
      setPhase('Scheduling', 'TargetPodCreated', `receiving pod ${status.targetVMPodName} created`);
      break;
    case 'Scheduling':
    case 'Scheduled':
    case 'TargetReady': {
      if (!target) {
        if (status.phase === 'Scheduling')
          actions.push({ type: 'createTargetPod', podName: status.targetVMPodName ?? targetPodName });
        else fail('TargetPodDeleted', `receiving pod ${status.targetVMPodName} disappeared`);
        break;
      }
      if (target.status?.phase === 'Failed' || target.status?.phase === 'Succeeded') {
        fail('TargetPodFailed', `receiving pod ${target.metadata.name} ended ${target.status.phase}`);
        break;
      }
      const node = target.spec?.nodeName;
      if (node && status.phase === 'Scheduling') {
        status.targetNodeName = node;
        setPhase('Scheduled', 'TargetScheduled', `receiving pod bound to node ${node}`);
      }
      const ready =
        target.status?.phase === 'Running' &&
        target.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (node && ready) setPhase('TargetReady', 'TargetReady', `node ${node} is ready to receive the VM`);
      break;
    }
    default:
      // Running and Sent belong to the node daemons.
      break;
  }
  return done();

  function failNow(reason: string, message: string): MigrationDecision {
    fail(reason, message);
    return done();
  }
  function done(): MigrationDecision {
    return {
      status,
      actions,
      ...(requeueAfterMs !== undefined && !DONE.has(status.phase as MigrationPhase) ? { requeueAfterMs } : {}),
    };
  }
}
