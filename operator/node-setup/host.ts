/**
 * What node setup reads and changes on the host: the KVM and TUN devices, kernel modules, hugepages, the CPU. Every
 * path is under a root given by the caller (the host's /dev, /sys, /proc as the privileged pod sees them; temporary
 * directories in tests).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface HostRoots {
  readonly devRoot: string;
  readonly sysRoot: string;
  readonly procRoot: string;
}

/**
 * Why a device cannot be used, or undefined when it opens for reading and writing. A character device node alone
 * proves nothing: hosts create /dev/kvm at boot as a placeholder even where no KVM module can load (virtualization
 * off in firmware), and opening it then fails with ENXIO or ENODEV.
 */
export function deviceProblem(devRoot: string, name: 'kvm' | 'net/tun'): string | undefined {
  const path = join(devRoot, name);
  try {
    if (!statSync(path).isCharacterDevice()) return `/dev/${name} is not a character device`;
  } catch {
    return `/dev/${name} is missing`;
  }
  try {
    closeSync(openSync(path, constants.O_RDWR));
    return undefined;
  } catch (e) {
    return `/dev/${name} does not open (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/** The first `max` bytes of a file (proc files can be long; only their start is read). */
function readHead(path: string, max: number): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(max);
    const n = readSync(fd, buffer, 0, max, null);
    return buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The node's memory in bytes (MemTotal of /proc/meminfo), or undefined when it cannot be read. */
export function memTotalBytes(procRoot: string): number | undefined {
  try {
    const kib = /^MemTotal:\s+(\d+) kB$/m.exec(readHead(join(procRoot, 'meminfo'), 4096))?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

export interface CpuInfo {
  readonly vendor: string;
  readonly model: string;
  readonly flags: readonly string[];
}

/** The first processor of /proc/cpuinfo (nodes are homogeneous; a guest sees one CPU model). */
export function readCpu(procRoot: string): CpuInfo {
  // The first processor's block is a few KiB; 64 KiB holds it with room to spare.
  const text = readHead(join(procRoot, 'cpuinfo'), 64 * 1024);
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
    const n = Number(readHead(file, 64).trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
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
