/**
 * What node setup reads and changes on the host: the KVM and TUN devices, kernel modules, hugepages, the CPU. Every
 * path is under a root given by the caller (the host's /dev, /sys, /proc as the privileged pod sees them; temporary
 * directories in tests).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface HostRoots {
  readonly devRoot: string;
  readonly sysRoot: string;
  readonly procRoot: string;
}

/** Why a device cannot be used, or undefined when it is a character device. */
export function deviceProblem(devRoot: string, name: 'kvm' | 'net/tun'): string | undefined {
  try {
    return statSync(join(devRoot, name)).isCharacterDevice() ? undefined : `/dev/${name} is not a character device`;
  } catch {
    return `/dev/${name} is missing`;
  }
}

export interface CpuInfo {
  readonly vendor: string;
  readonly model: string;
  readonly flags: readonly string[];
}

/** The first processor of /proc/cpuinfo (nodes are homogeneous; a guest sees one CPU model). Bounded read. */
export function readCpu(procRoot: string): CpuInfo {
  const text = readFileSync(join(procRoot, 'cpuinfo'), 'utf8').slice(0, 1 << 20);
  const first = text.split(/\n\s*\n/)[0] ?? '';
  const field = (name: string) => first.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? '';
  return {
    vendor: field('vendor_id'),
    model: field('model name'),
    flags: [...new Set(field('flags').split(/\s+/).filter(Boolean))].sort(),
  };
}

/** A label value (at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends) from free text. */
export function labelValue(text: string): string {
  const v = text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return v || 'unknown';
}

/**
 * The CPU labels: vendor, model, and a hash of the feature flags. The guest sees the host's CPUID; two nodes with the
 * same hash expose the same features, so a guest can move between them.
 */
export function cpuLabels(cpu: CpuInfo): { vendor: string; model: string; features: string } {
  const features = createHash('sha256').update(cpu.flags.join(' ')).digest('hex').slice(0, 16);
  return { vendor: labelValue(cpu.vendor), model: labelValue(cpu.model), features };
}

/** The hugepages pool of one page size, in the host's sysfs. */
const hugepagesFile = (sysRoot: string, sizeKiB: number) =>
  join(sysRoot, 'kernel', 'mm', 'hugepages', `hugepages-${sizeKiB}kB`, 'nr_hugepages');

/**
 * Sets the number of hugepages of a size (when `want` is given) and reads back what the kernel reserved — possibly
 * fewer, when memory is fragmented. Undefined when the kernel has no pool of that size.
 */
export function hugepages(sysRoot: string, sizeKiB: number, want?: number): number | undefined {
  const file = hugepagesFile(sysRoot, sizeKiB);
  try {
    if (want !== undefined) writeFileSync(file, `${want}\n`);
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** The modules that provide the devices, for this CPU's vendor. */
export function modulesFor(vendor: string): string[] {
  const kvm = vendor === 'AuthenticAMD' ? 'kvm_amd' : vendor === 'GenuineIntel' ? 'kvm_intel' : undefined;
  return ['kvm', ...(kvm ? [kvm] : []), 'tun', 'vhost_net'];
}

const run = promisify(execFile);

/** Loads each module with modprobe; returns those that failed, with modprobe's first line. Bounded by a timeout. */
export async function loadModules(modules: readonly string[]): Promise<string[]> {
  const failed: string[] = [];
  for (const m of modules) {
    try {
      await run('modprobe', [m], { timeout: 10_000 });
    } catch (e) {
      const stderr = (e as { stderr?: string }).stderr?.split('\n')[0]?.trim();
      failed.push(`${m} (${stderr || (e as Error).message})`.slice(0, 200));
    }
  }
  return failed;
}
