/**
 * What the node daemon keeps about one VM pod between reconciles: the latest pod object, its files, and Cloud
 * Hypervisor's state as followed through the event monitor (and `vm.info` when the daemon (re)attaches). Nothing here
 * is the truth of record: after a daemon restart all of it is rebuilt from the pod, CH and the VM's status.
 */
import type { VmConfig } from '../cloudhypervisor/types';
import type { DaemonPod } from './cluster';
import type { ChEvent, VmmHistory } from './event-monitor';
import { emptyHistory } from './event-monitor';
import type { VmPodFiles } from './vm-pod-files';

/** CH's VM as a client observes it (reference/cloud-hypervisor.md §2), plus "not known yet" and "the VMM is gone". */
export type ChState = 'unknown' | 'NoVM' | 'Created' | 'Running' | 'Paused' | 'gone';

export interface PodState {
  pod: DaemonPod;
  /** The pod is gone from the API server (its files may outlive it briefly). */
  deleted: boolean;
  readonly files: VmPodFiles;
  ch: ChState;
  history: VmmHistory;
  /** The VmConfig sent with vm.create, once read (for NIC MACs and ids). */
  config?: VmConfig;
  /** A long CH call in progress (boot, receive-migration): the pod is left alone until it settles. */
  inflight?: { what: string; promise: Promise<void> };
  /** The daemon pressed the power button for this pod (ms since epoch); also recorded in the VM's status. */
  shutdownRequestedAt?: number;
  /** The daemon ended the VMM itself (hard stop, failed boot): its exit is no guest verdict. */
  stoppedByDaemon: boolean;
  /** When the daemon first saw the VMM gone, to give the container log a moment to catch up. */
  goneAt?: number;
  /** Why the guest could not boot, once known. */
  bootFailure?: string;
  /** Times the pod was found Running without its run dir (see NodeDaemon.reconcile). */
  missingRunDirChecks: number;
  /** Probes of CH that got no answer, for the backoff between them. */
  probes: number;
  /** Looks for the pod's network namespace that found no process of the pod yet. */
  netnsChecks: number;
  /** Network preparations run for this pod (bounded). */
  networkRuns: number;
  /** Looks at a hot-plugged volume still waiting to be bound or mounted, for the backoff between them. */
  hotplugChecks: number;
}

export function newPodState(pod: DaemonPod, files: VmPodFiles): PodState {
  return {
    pod,
    deleted: false,
    files,
    ch: 'unknown',
    history: emptyHistory(),
    stoppedByDaemon: false,
    missingRunDirChecks: 0,
    probes: 0,
    netnsChecks: 0,
    networkRuns: 0,
    hotplugChecks: 0,
  };
}

/** The VM state an event from CH's event monitor implies (reference §2, §7). */
export function chStateAfter(state: ChState, e: ChEvent): ChState {
  if (e.source === 'vmm') return e.event === 'shutdown' ? 'gone' : state;
  switch (e.event) {
    case 'booted':
    case 'resumed':
    case 'rebooted':
    case 'migration-receive-finished':
      return 'Running';
    case 'paused':
      return 'Paused';
    case 'restored':
      return 'Paused';
    case 'shutdown':
      return 'Created';
    // After a successful send the source VMM exits (reference/cloud-hypervisor.md §9).
    case 'migration-finished':
      return 'gone';
    case 'deleted':
      return 'NoVM';
    default:
      return state;
  }
}

/** Whether the pod is being stopped: deleted, or terminating. */
export const terminating = (s: PodState) => s.deleted || Boolean(s.pod.metadata.deletionTimestamp);

/** Whether the pod's launcher container has ended (the kubelet saw CH exit). */
export const containerEnded = (s: PodState) =>
  s.pod.status?.containerStatuses?.some((c) => c.state?.terminated) ?? false;
