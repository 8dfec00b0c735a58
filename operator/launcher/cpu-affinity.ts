/**
 * Dedicated CPU placement: the kubelet's static CPU manager gives a Guaranteed pod exclusive CPUs through its
 * cpuset; vCPU i is pinned to the i-th of them.
 */
import { readFileSync } from 'node:fs';
import { LaunchError } from './failure';

/** cgroup v2 (the pod's own cgroup, as the container sees it) first, then cgroup v1. */
export const CPUSET_FILES = ['/sys/fs/cgroup/cpuset.cpus.effective', '/sys/fs/cgroup/cpuset/cpuset.effective_cpus'];

/** Parses a cpuset list such as `2-3,6`. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    if (!Number.isInteger(a) || (b !== undefined && (!Number.isInteger(b) || b < a))) {
      throw new Error(`bad cpu list ${text.trim()}`);
    }
    for (let c = a; c <= (b ?? a); c++) cpus.push(c);
  }
  return cpus;
}

export function dedicatedHostCpus(vcpus: number, files: readonly string[] = CPUSET_FILES): number[] {
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const cpus = parseCpuList(text);
    if (cpus.length !== vcpus) {
      throw new LaunchError(
        `spec.instance.cpu.dedicatedCPUPlacement: the pod's cpuset (${file}) holds ${cpus.length} CPUs for ${vcpus} vCPUs; ` +
          "the kubelet's static CPU manager must give the pod exactly one CPU per vCPU",
      );
    }
    return cpus;
  }
  throw new LaunchError(`spec.instance.cpu.dedicatedCPUPlacement: no cpuset file found (${files.join(', ')})`);
}
