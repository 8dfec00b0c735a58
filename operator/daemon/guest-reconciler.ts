/**
 * The node daemon's reconcile of one VM pod that runs its VM's guest: boot it once the launcher is done, keep it in
 * the declared power state, stop it gracefully when the pod terminates, and report truthfully — phase Running or
 * Paused, the guest's addresses, and how it ended. Level-triggered: it compares what CH, the pod and the VM say now
 * and does the next step, so a daemon restarted at any point carries on where the last one stopped.
 *
 * Exactly once: an action that must not repeat (reboot for a restartRequest, the power button) is first recorded in
 * the VM's status, with a write guarded by resourceVersion, and only then sent to CH. A daemon that dies between
 * the two loses the action rather than repeating it; a daemon that restarts reads the record and does not act again.
 */
import type { VirtualMachineStatus } from '../../api';
import { guestGraceOfPod } from '../../constructs/vm-pod';
import { CloudHypervisorError } from '../cloudhypervisor';
import type { VmConfig } from '../cloudhypervisor/types';
import { interfaceDeviceId } from '../launcher/vm-config';
import { bridgeName, podLinkName } from '../pod-layout';
import type { DaemonCluster, VmObject, VmStatusPatch } from './cluster';
import { type HotplugCluster, reconcileHotplug } from './hotplug';
import { memlockBytes, raiseMemlock } from './memlock';
import { chProcess } from './pod-processes';
import type { ChState, PodState } from './pod-state';
import { containerEnded, terminating } from './pod-state';

/** How long a boot may take: CH waits up to a minute for a vhost-user backend it cannot check beforehand. */
export const BOOT_TIMEOUT_MS = 120_000;
/** After the VMM is gone, how long to let the container log catch up before reading CH's last words. */
export const EXIT_LOG_GRACE_MS = 2_000;

export interface GuestReconcileResult {
  /** Look again after this long even if nothing happens (a shutdown deadline, the exit log). */
  requeueAfterMs?: number;
}

/** Counts CH power calls made (for metrics and tests). */
export interface PowerObserver {
  powerAction(action: PowerAction, vm: VmObject): void;
}
export type PowerAction = 'boot' | 'pause' | 'resume' | 'reboot' | 'power-button' | 'hard-stop';

const PHASES_OF_A_STARTED_VM = new Set(['Scheduled', 'Running', 'Paused', 'Unknown']);

/**
 * Reconciles `state` (the VM's current pod) against `vm`. Returns after at most one CH state change; the caller
 * requeues on the events that follow.
 */
export interface GuestReconcileDeps {
  readonly cluster: DaemonCluster & HotplugCluster;
  readonly observer: PowerObserver;
  readonly kubeletRoot: string;
  /** The host's /proc (VFIO VMs: the daemon raises CH's memlock limit from outside). */
  readonly procRoot?: string;
  readonly now?: () => number;
}

export async function reconcileGuest(
  state: PodState,
  vm: VmObject,
  deps: GuestReconcileDeps,
): Promise<GuestReconcileResult> {
  const { cluster, observer } = deps;
  const now = deps.now ?? Date.now;
  const pod = state.pod;
  const client = state.files.ch();
  if (!client) return {};
  let current = vm;
  const patch = async (status: VmStatusPatch) => {
    current = await cluster.patchVmStatus(current, status);
  };
  const guest = current.status?.guest?.podName === pod.metadata.name ? current.status.guest : undefined;
  const act = async (action: PowerAction, call: () => Promise<void>, next: ChState) => {
    await call();
    state.ch = next;
    observer.powerAction(action, current);
  };

  if (state.bootFailure) return bootFailed(state, current, cluster, observer, state.bootFailure);
  if (state.ch === 'gone') return reportExit(state, current, cluster, now);

  // The pod is stopping (Halted, deletion, eviction): the guest gets the ACPI power button once, and the VMM is
  // stopped hard when the grace period runs out (the pod's preStop hook holds the kubelet's SIGTERM that long).
  if (terminating(state)) {
    if (state.ch === 'NoVM' || state.ch === 'Created') {
      state.stoppedByDaemon = true;
      await act('hard-stop', () => client.vmm.shutdown(), 'gone');
      return {};
    }
    // The grace the pod was made with (its preStop hook holds SIGTERM that long), not the VM's current value, which
    // may have changed since.
    const grace = guestGraceOfPod(pod.spec?.terminationGracePeriodSeconds) * 1000;
    const recorded = guest?.shutdownRequestTime ? Date.parse(guest.shutdownRequestTime) : undefined;
    const requestedAt = state.shutdownRequestedAt ?? recorded;
    if (requestedAt === undefined) {
      const at = now();
      await patch({ guest: { podName: pod.metadata.name, shutdownRequestTime: new Date(at).toISOString() } });
      state.shutdownRequestedAt = at;
      // A paused guest cannot see the button.
      if (state.ch === 'Paused') await act('resume', () => client.vm.resume(), 'Running');
      await act('power-button', () => client.vm.powerButton(), state.ch);
      cluster.event(current, 'Normal', 'ShuttingDown', `ACPI power button pressed; hard stop in ${grace / 1000} s`);
      return { requeueAfterMs: grace };
    }
    state.shutdownRequestedAt = requestedAt;
    const left = requestedAt + grace - now();
    if (left > 0) return { requeueAfterMs: left };
    state.stoppedByDaemon = true;
    await act('hard-stop', () => client.vmm.shutdown(), 'gone');
    cluster.event(current, 'Warning', 'HardStopped', `the guest did not shut down within ${grace / 1000} s`);
    return {};
  }

  const request = current.spec.power?.restartRequest;
  const newRequest = Boolean(request) && request !== current.status?.observedRestartRequest;

  if (state.ch === 'NoVM' || state.ch === 'Created') {
    if (state.ch === 'NoVM') {
      const read = state.files.vmConfig();
      if ('problem' in read) return bootFailed(state, current, cluster, observer, read.problem);
      state.config = read.config;
      const memlock = memlockBytes(read.config);
      if (memlock !== undefined) {
        const pid = chProcess(pod.metadata.uid, deps.procRoot);
        if (pid === undefined)
          throw new Error('Cloud Hypervisor process of the pod not found: cannot raise its memlock limit');
        await raiseMemlock(pid, memlock);
      }
      await client.vm.create(read.config);
      state.ch = 'Created';
    }
    // A boot satisfies a restartRequest made before it (the guest starts fresh either way).
    if (newRequest) await patch({ observedRestartRequest: request });
    const booting = current;
    state.inflight = {
      what: 'boot',
      promise: client.vm.boot({ timeoutMs: BOOT_TIMEOUT_MS }).then(
        () => {
          state.ch = 'Running';
          observer.powerAction('boot', booting);
        },
        (error: unknown) => {
          // An answer that is an error means CH refused the config; anything else (a timeout) is retried.
          if (error instanceof CloudHypervisorError && error.kind === 'http') state.bootFailure = error.message;
        },
      ),
    };
    return {};
  }

  if (state.ch !== 'Running' && state.ch !== 'Paused') return {};

  if (newRequest) {
    await patch({ observedRestartRequest: request });
    await act('reboot', () => client.vm.reboot(), 'Running');
    cluster.event(current, 'Normal', 'Rebooted', `restartRequest ${request}`);
  }
  const paused = current.spec.power?.paused === true;
  if (paused && state.ch === 'Running') {
    await act('pause', () => client.vm.pause(), 'Paused');
    cluster.event(current, 'Normal', 'Paused', 'spec.power.paused');
  } else if (!paused && state.ch === 'Paused') {
    await act('resume', () => client.vm.resume(), 'Running');
    cluster.event(current, 'Normal', 'Resumed', 'spec.power.paused is false');
  }

  const desired = runningStatus(state, current, now);
  const hotplug = await reconcileHotplug(state, current, client, cluster, deps.kubeletRoot);
  if (hotplug.status) desired.hotplugVolumes = hotplug.status;
  if (Object.keys(desired).length) await patch(desired);
  if (!hotplug.waiting) {
    state.hotplugChecks = 0;
    return {};
  }
  return { requeueAfterMs: Math.min(30_000, 500 * 2 ** Math.min(state.hotplugChecks++, 6)) };
}

/** The status fields a running guest shows, as far as they differ from what the VM has. */
function runningStatus(state: PodState, vm: VmObject, now: () => number): VmStatusPatch {
  const out: VmStatusPatch = {};
  const s = vm.status ?? {};
  const podName = state.pod.metadata.name;
  const phase = state.ch === 'Paused' ? 'Paused' : 'Running';
  if (s.phase !== phase && PHASES_OF_A_STARTED_VM.has(s.phase ?? '')) {
    out.phase = phase;
    out.phaseTransitionTime = new Date(now()).toISOString();
  }
  const guest = s.guest?.podName === podName ? s.guest : undefined;
  const reboots = state.history.reboots;
  if (!guest?.bootTime || (guest.reboots ?? 0) !== reboots || guest.podName !== podName) {
    out.guest = {
      podName,
      bootTime: guest?.bootTime ?? new Date(now()).toISOString(),
      reboots,
      // A guest seen for the first time in this pod replaces what the status said about an earlier one.
      ...(guest ? {} : { shutdownRequestTime: null, exitReason: null, exitMessage: null }),
    };
  }
  const interfaces = guestInterfaces(state, vm);
  if (JSON.stringify(interfaces) !== JSON.stringify(s.interfaces ?? [])) out.interfaces = interfaces;
  return out;
}

/**
 * The guest's NICs and the addresses its DHCP leases gave them. The MAC is the one in the VmConfig (for bridge
 * binding that is the pod interface's own MAC, which only the launcher knew).
 */
function guestInterfaces(state: PodState, vm: VmObject): NonNullable<VirtualMachineStatus['interfaces']> {
  const config: VmConfig | undefined = state.config ?? readConfig(state);
  const networks = vm.spec.networks ?? [];
  const bridges = networks.map((n, i) => bridgeName(podLinkName(n, i)));
  const leases = state.files.leases(bridges);
  return (vm.spec.instance.interfaces ?? []).flatMap((iface) => {
    const nic = config?.net?.find((n) => n.id === interfaceDeviceId(iface.name));
    if (!nic?.mac) return [];
    const mac = nic.mac.toLowerCase();
    const ips = leases.filter((l) => l.mac === mac).map((l) => l.ip);
    return [{ name: iface.name, mac, ...(ips.length ? { ipAddresses: [...new Set(ips)].slice(0, 16) } : {}) }];
  });
}

function readConfig(state: PodState): VmConfig | undefined {
  const read = state.files.vmConfig();
  if ('config' in read) state.config = read.config;
  return state.config;
}

/**
 * The guest cannot boot (an unusable VmConfig, or CH refused it at vm.boot): say why in the VM's status, then end
 * the VMM so the pod ends and the controller applies the runPolicy.
 */
async function bootFailed(
  state: PodState,
  vm: VmObject,
  cluster: DaemonCluster,
  observer: PowerObserver,
  problem: string,
): Promise<GuestReconcileResult> {
  state.bootFailure = problem;
  const podName = state.pod.metadata.name;
  const recorded = vm.status?.guest?.podName === podName && vm.status.guest.exitReason === 'BootFailed';
  if (!recorded) {
    await cluster.patchVmStatus(vm, {
      guest: { podName, exitReason: 'BootFailed', exitMessage: problem.slice(0, 1024) },
    });
    cluster.event(vm, 'Warning', 'BootFailed', problem);
  }
  const client = state.files.ch();
  if (state.ch !== 'gone' && client) {
    state.stoppedByDaemon = true;
    await client.vmm.shutdown();
    observer.powerAction('hard-stop', vm);
    state.ch = 'gone';
  }
  return {};
}

/**
 * The VMM is gone. Unless the daemon stopped it (pod termination, failed boot) or the guest moved away, say how the
 * guest ended: Cloud Hypervisor v53.0 exits 0 with the same events after a power-off and after a vCPU failure; only
 * its error log in the container log tells them apart (reference §14).
 */
async function reportExit(
  state: PodState,
  vm: VmObject,
  cluster: DaemonCluster,
  now: () => number,
): Promise<GuestReconcileResult> {
  const podName = state.pod.metadata.name;
  const guest = vm.status?.guest?.podName === podName ? vm.status.guest : undefined;
  if (guest?.exitReason || state.stoppedByDaemon || terminating(state) || state.history.migratedAway) return {};
  state.goneAt ??= now();
  const crash = state.files.crashLine();
  if (!crash && !containerEnded(state)) {
    const left = state.goneAt + EXIT_LOG_GRACE_MS - now();
    if (left > 0) return { requeueAfterMs: left };
  }
  await cluster.patchVmStatus(vm, {
    guest: crash
      ? { podName, exitReason: 'Crashed', exitMessage: crash }
      : { podName, exitReason: 'PoweredOff', exitMessage: '' },
  });
  cluster.event(
    vm,
    crash ? 'Warning' : 'Normal',
    crash ? 'GuestCrashed' : 'GuestPoweredOff',
    crash ?? 'the guest shut itself down',
  );
  return {};
}
