/**
 * A VM pod's processes as the node daemon finds them from the host (it runs with the host's PID namespace): the
 * kubelet puts every container of a pod in a cgroup whose path names the pod's UID — `…/pod<uid>/<container>` with the
 * cgroupfs driver, `…-pod<uid_with_underscores>.slice/…` with systemd. Any process of the pod (its pause container
 * included) gives the pod's network namespace; the one named cloud-hypervisor is the VMM.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The /proc of the host (a hostPID daemon sees it at /proc). */
export const DEFAULT_PROC_ROOT = '/proc';

/** Whether a /proc/<pid>/cgroup text places the process in the pod with this UID. */
export function inPodCgroup(cgroupText: string, podUid: string): boolean {
  const dashed = podUid.toLowerCase();
  const underscored = dashed.replace(/-/g, '_');
  return cgroupText
    .split('\n')
    .some(
      (line) =>
        line.includes(`/pod${dashed}/`) || line.includes(`-pod${underscored}.slice`) || line.endsWith(`/pod${dashed}`),
    );
}

export interface PodProcess {
  readonly pid: number;
  /** Its command name (/proc/<pid>/comm). */
  readonly comm: string;
}

/** The processes of a pod, in PID order (bounded: a node runs a few thousand processes). */
export function podProcesses(podUid: string, procRoot = DEFAULT_PROC_ROOT): PodProcess[] {
  if (!/^[0-9a-f-]{36}$/i.test(podUid)) return [];
  const found: PodProcess[] = [];
  for (const entry of readdirSync(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!inPodCgroup(readFileSync(join(procRoot, entry, 'cgroup'), 'utf8'), podUid)) continue;
      found.push({ pid: Number(entry), comm: readFileSync(join(procRoot, entry, 'comm'), 'utf8').trim() });
    } catch {
      // The process ended while we looked.
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/**
 * The pod's network namespace, as a path nsenter(1) takes; undefined while the pod has no process. The sandbox's
 * pause process is preferred: it lives as long as the pod, while any other process (one a tenant exec'd) may exit.
 * netprep opens the path once and works through that descriptor, so a PID reused later cannot redirect it.
 */
export function podNetns(podUid: string, procRoot = DEFAULT_PROC_ROOT): string | undefined {
  const processes = podProcesses(podUid, procRoot);
  const chosen = processes.find((p) => p.comm === 'pause') ?? processes[0];
  return chosen ? join(procRoot, String(chosen.pid), 'ns', 'net') : undefined;
}

/** The pod's Cloud Hypervisor process (its host PID), if it runs. */
export function chProcess(podUid: string, procRoot = DEFAULT_PROC_ROOT): number | undefined {
  return podProcesses(podUid, procRoot).find((p) => p.comm === 'cloud-hypervisor')?.pid;
}
