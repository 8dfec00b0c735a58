/**
 * VFIO devices (SR-IOV VFs) and vDPA pin guest memory, which needs a memlock limit above guest memory. The VM pod
 * holds no SYS_RESOURCE (Pod Security baseline), so the node daemon raises Cloud Hypervisor's limit from outside with
 * prlimit(1) before vm.create — guest memory plus 1 GiB, as Virtink found necessary.
 */
import { execFile } from 'node:child_process';
import type { VmConfig } from '../cloudhypervisor/types';

const HEADROOM_BYTES = 1024 ** 3;

/** The memlock limit a VmConfig needs, or undefined when it pins nothing. */
export function memlockBytes(config: VmConfig): number | undefined {
  if (!config.devices?.length && !config.vdpa?.length) return undefined;
  const guest = (config.memory?.size ?? 512 * 1024 ** 2) + (config.memory?.zones ?? []).reduce((n, z) => n + z.size, 0);
  return guest + HEADROOM_BYTES;
}

/** Sets the soft and hard memlock limit of process `pid` (a host PID). */
export function raiseMemlock(pid: number, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      'prlimit',
      ['--pid', String(pid), `--memlock=${bytes}:${bytes}`],
      { timeout: 10_000 },
      (error, _o, stderr) =>
        error
          ? reject(new Error(`prlimit --pid ${pid} --memlock=${bytes}: ${stderr.trim() || error.message}`))
          : resolve(),
    );
  });
}
