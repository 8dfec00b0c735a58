/**
 * The launch: everything the VM pod needs before Cloud Hypervisor starts — disks, cloud-init, network (built by the
 * node daemon on request, network.ts) and DHCP, virtio-fs — then the VmConfig for the node daemon. The entrypoint execs CH once this returns; dnsmasq and
 * virtiofsd stay, the launcher does not. On failure, the daemons it started are stopped again so a failed pod
 * holds nothing but its termination message.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { MIGRATION_TARGET_ENV } from '../../constructs/vm-pod';
import { LAUNCHER_DONE, RUN_DIR, VM_CONFIG, bridgeName, dnsmasqFile, podLinkName } from '../pod-layout';
import { writeAtomically } from './atomic-write';
import { dedicatedHostCpus } from './cpu-affinity';
import { prepareDisks } from './disks';
import { setupNetwork } from './network';
import { startVirtiofs } from './virtiofs';
import { buildVmConfig, type PreparedVm } from './vm-config';
import { readVm } from './vm-env';
import type { VmConfig } from '../cloudhypervisor/types';

export interface LaunchResult {
  readonly config: VmConfig;
  /** False on a migration target, which receives its configuration from the source. */
  readonly configWritten: boolean;
  /** How long the node daemon took to prepare the pod network, when it was asked to. */
  readonly networkDaemonMs?: number;
}

export async function launch(env: NodeJS.ProcessEnv = process.env): Promise<LaunchResult> {
  const vm = readVm(env);
  mkdirSync(RUN_DIR, { recursive: true });
  const daemons: number[] = [];
  try {
    const disks = await prepareDisks(vm);
    const network = await setupNetwork(vm, env);
    const virtiofs = await startVirtiofs(vm);
    daemons.push(...virtiofs.pids);
    const { cpu } = vm.spec.instance;
    const prepared: PreparedVm = {
      disks,
      interfaces: network.interfaces,
      fileSystems: virtiofs.sockets,
      ...(cpu?.dedicatedCPUPlacement
        ? { vcpuHostCpus: dedicatedHostCpus((cpu.sockets ?? 1) * (cpu.coresPerSocket ?? 1)) }
        : {}),
    };
    const config = buildVmConfig(vm, prepared);
    // A migration target prepares the same devices at the same paths, but CH receives the VM from the source.
    const configWritten = env[MIGRATION_TARGET_ENV] !== 'true';
    if (configWritten) writeAtomically(VM_CONFIG, `${JSON.stringify(config, null, 2)}\n`);
    // Last: the node daemon acts on this marker (the VmConfig, if any, is complete before it appears).
    writeAtomically(LAUNCHER_DONE, `${JSON.stringify({ configWritten })}\n`);
    return {
      config,
      configWritten,
      ...(network.daemonMs !== undefined ? { networkDaemonMs: network.daemonMs } : {}),
    };
  } catch (error) {
    stopDaemons([...daemons, ...dnsmasqPids(vm.spec.networks ?? [])]);
    throw error;
  }
}

/** dnsmasq daemonises, so its pid is known only from its pid file. */
function dnsmasqPids(networks: readonly { pod?: unknown }[]): number[] {
  return networks.flatMap((n, i) => {
    const file = dnsmasqFile(bridgeName(podLinkName(n, i)), 'pid');
    if (!existsSync(file)) return [];
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? [pid] : [];
  });
}

function stopDaemons(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
}
