/**
 * One pass of node setup: check (and where allowed, prepare) the host, then say so on the Node — the labels VM pods
 * and the node daemon select, and what was found in an annotation. Pure apart from the host reads/writes in host.ts.
 */
import {
  CPU_FEATURES_LABEL,
  CPU_MODEL_LABEL,
  CPU_VENDOR_LABEL,
  KVM_NODE_LABEL,
  NODE_SETUP_ANNOTATION,
} from '../../api';
import type { HostRoots } from './host';
import { cpuLabels, deviceProblem, hugepages, loadModules, memTotalBytes, modulesFor, readCpu } from './host';
import { HUGEPAGES_MAX_SHARE } from '../../constructs/platform/limits';

export interface SetupOptions extends HostRoots {
  readonly loadModules: boolean;
  readonly hugepages2Mi?: number;
  readonly hugepages1Gi?: number;
  /** Loads kernel modules (modprobe by default; a test passes its own). */
  readonly modprobe?: (modules: readonly string[]) => Promise<string[]>;
}

/** What a pass found, as written to the node's annotation. */
export interface SetupReport {
  readonly ready: boolean;
  readonly problems: readonly string[];
  readonly modulesFailed: readonly string[];
  readonly hugepages: { readonly '2Mi'?: number; readonly '1Gi'?: number };
  readonly cpu: { readonly vendor: string; readonly model: string; readonly features: string };
}

export async function setupPass(o: SetupOptions): Promise<SetupReport> {
  const cpu = readCpu(o.procRoot);
  const devices = () => [deviceProblem(o.devRoot, 'kvm'), deviceProblem(o.devRoot, 'net/tun')].filter(Boolean);
  let modulesFailed: string[] = [];
  if (o.loadModules && devices().length) modulesFailed = await (o.modprobe ?? loadModules)(modulesFor(cpu.vendor));
  const problems = devices() as string[];
  const tooMuch = hugepagesBeyondMemory(o);
  if (tooMuch) problems.push(tooMuch);
  // Asked pools are written only within the node's memory; otherwise both are read as they are.
  const write = (want: number | undefined) => (tooMuch ? undefined : want);
  const pages = {
    ...optional('2Mi', hugepages(o.sysRoot, 2048, write(o.hugepages2Mi))),
    ...optional('1Gi', hugepages(o.sysRoot, 1_048_576, write(o.hugepages1Gi))),
  };
  for (const [size, want] of [
    ['2Mi', o.hugepages2Mi],
    ['1Gi', o.hugepages1Gi],
  ] as const) {
    const got = pages[size];
    if (!tooMuch && want !== undefined && got !== want) {
      problems.push(
        got === undefined
          ? `no ${size} hugepages pool in this kernel`
          : `${size} hugepages: ${got} reserved of ${want} asked (memory fragmented or short)`,
      );
    }
  }
  // Hugepages short of the ask do not make the node unusable for VMs without hugepages: only the devices decide.
  const ready = devices().length === 0;
  return { ready, problems, modulesFailed, hugepages: pages, cpu: cpuLabels(cpu) };
}

const MiB = 1024 * 1024;

/**
 * Why the asked hugepages would not leave the node enough memory, or undefined when they fit: together (a pool not
 * asked for counts as it is) they may take at most {@link HUGEPAGES_MAX_SHARE} of MemTotal. Reserved hugepages are
 * gone for every process of the node, and the kubelet keeps counting them as allocatable until it restarts, so
 * overshooting starves the node. An unreadable MemTotal refuses any change.
 */
function hugepagesBeyondMemory(o: SetupOptions): string | undefined {
  if (o.hugepages2Mi === undefined && o.hugepages1Gi === undefined) return undefined;
  const total = memTotalBytes(o.procRoot);
  if (total === undefined) return 'hugepages left unchanged: the node memory (/proc/meminfo MemTotal) is unreadable';
  const pages2Mi = o.hugepages2Mi ?? hugepages(o.sysRoot, 2048) ?? 0;
  const pages1Gi = o.hugepages1Gi ?? hugepages(o.sysRoot, 1_048_576) ?? 0;
  const asked = pages2Mi * 2 * MiB + pages1Gi * 1024 * MiB;
  if (asked <= total * HUGEPAGES_MAX_SHARE) return undefined;
  return (
    `hugepages left unchanged: ${Math.round(asked / MiB)} MiB asked of ${Math.round(total / MiB)} MiB memory, ` +
    `more than ${HUGEPAGES_MAX_SHARE * 100}%`
  );
}

const optional = <K extends string>(key: K, v: number | undefined) =>
  (v === undefined ? {} : { [key]: v }) as Partial<Record<K, number>>;

/** The merge patch that says a pass's outcome on the Node (only kubevisor.io/ keys: the admission policy's rule). */
export function nodePatch(report: SetupReport): Record<string, unknown> {
  return {
    metadata: {
      labels: {
        [KVM_NODE_LABEL]: String(report.ready),
        [CPU_VENDOR_LABEL]: report.cpu.vendor,
        [CPU_MODEL_LABEL]: report.cpu.model,
        [CPU_FEATURES_LABEL]: report.cpu.features,
      },
      annotations: {
        [NODE_SETUP_ANNOTATION]: JSON.stringify({
          ready: report.ready,
          problems: report.problems,
          modulesFailed: report.modulesFailed,
          hugepages: report.hugepages,
        }),
      },
    },
  };
}
