/**
 * A snapshot of the host state a real kubelet node (harness/real-node.ts) can change, and the difference between two
 * snapshots: the real-node suite takes one before the node starts and one after it stopped and asserts they are equal.
 *
 * What is covered is what the kubelet, containerd, runc and the CNI bridge plugin change outside their configured
 * roots (measured: see real-node.ts), plus the places a mistake in the node's containment would show:
 * - sysctls: the kubelet's kernel tunables (it sets them whatever its config) and IP forwarding (the bridge plugin);
 * - iptables and ip6tables rules and chains in every table (the kubelet's KUBE-* chains and jumps);
 * - mounts on the host's paths the node uses or must not use (its own mounts live in its mount namespace);
 * - network links of the kinds the CNI bridge plugin makes (bridges, veths), and pinned CRI network namespaces;
 * - files under the fixed host paths the kubelet, containerd and CNI write to by default;
 * - cgroups: the first level of every cgroup hierarchy (the node's cgroup root lives there);
 * - processes of the node's binaries.
 *
 * Loaded kernel modules are recorded but not compared: the kernel loads overlay, bridge or veth on first use, and
 * unloading them is neither needed nor safe; {@link newKernelModules} reports them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface HostState {
  sysctls: Record<string, string | null>;
  /** `<command> <table>` → `-S` lines (or the command's error). */
  iptables: Record<string, string[]>;
  /** `<mount point> <fs type>` of host mounts under the watched prefixes. */
  mounts: string[];
  /** `<name> <kind>` of the host's bridges and veths. */
  links: string[];
  /** Pinned network namespaces CRI runtimes make (`/run/netns/cni-*`). */
  netns: string[];
  /** Watched path → its recursive listing (`null` when absent). */
  paths: Record<string, string[] | null>;
  /** `<hierarchy>/<child>` for every first-level cgroup of every mounted hierarchy. */
  cgroups: string[];
  /** `<comm>` of every live (not zombie) process running one of the node's binaries (pids differ by nature). */
  processes: string[];
  /** Temp dirs of real nodes (`kubevisor-rn-*` in the temp dir). */
  tempDirs: string[];
  /** Not compared; see {@link newKernelModules}. */
  kernelModules: string[];
}

/** What the kubelet sets whatever its config (pkg/kubelet/cm setupKernelTunables) and what CNI bridges set. */
export const watchedSysctls = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.forwarding',
  'net.ipv4.conf.default.forwarding',
  'net.ipv6.conf.all.forwarding',
  'net.ipv4.conf.all.route_localnet',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
] as const;

/**
 * Fixed host paths the node's components write to unless contained: the kubelet's default root, pod logs, its
 * flexvolume dir; containerd's default root, state and opt dirs; CNI's config, binaries, cache and IPAM state.
 */
export const watchedPaths = [
  '/var/lib/kubelet',
  '/var/log/pods',
  '/var/log/containers',
  '/usr/libexec/kubernetes',
  '/etc/kubernetes',
  '/var/lib/containerd',
  '/run/containerd',
  '/opt/containerd',
  '/etc/cni',
  '/opt/cni',
  '/var/lib/cni',
  '/run/runc',
] as const;

/**
 * Host mounts under these prefixes are compared (the node makes its own only inside its mount namespace). Of
 * /run/netns only CRI's `cni-*` pins: other suites (launch) pin their own network namespaces there meanwhile.
 */
const watchedMountPrefixes = [
  '/var/lib',
  '/var/log',
  '/run/containerd',
  '/run/netns/cni-',
  '/sys/fs/cgroup',
  '/etc/cni',
];
const nodeBinaries = ['kubelet', 'containerd', 'containerd-shim', 'containerd-shim-runc-v2', 'pause'];
const iptablesTables = ['filter', 'nat', 'mangle', 'raw'];
/** A listing stops here: a watched path is expected to be absent or small. */
const maxListing = 2_000;

export function snapshotHostState(): HostState {
  return {
    sysctls: Object.fromEntries(watchedSysctls.map((name) => [name, readSysctl(name)])),
    iptables: iptablesRules(),
    mounts: hostMounts(),
    links: hostLinks(),
    netns: listDir('/run/netns').filter((name) => name.startsWith('cni-')),
    paths: Object.fromEntries(watchedPaths.map((p) => [p, listTree(p)])),
    cgroups: firstLevelCgroups(),
    processes: nodeProcesses(),
    tempDirs: listDir(os.tmpdir()).filter((name) => name.startsWith('kubevisor-rn-')),
    kernelModules: kernelModules(),
  };
}

/** Human-readable differences between two snapshots (empty when the host is as it was); modules are left out. */
export function diffHostState(before: HostState, after: HostState): string[] {
  const differences: string[] = [];
  for (const name of new Set([...Object.keys(before.sysctls), ...Object.keys(after.sysctls)])) {
    const [b, a] = [before.sysctls[name] ?? null, after.sysctls[name] ?? null];
    if (b !== a) differences.push(`sysctl ${name}: ${String(b)} → ${String(a)}`);
  }
  for (const key of new Set([...Object.keys(before.iptables), ...Object.keys(after.iptables)])) {
    differences.push(...listDiff(`${key}`, before.iptables[key] ?? [], after.iptables[key] ?? []));
  }
  differences.push(...listDiff('mount', before.mounts, after.mounts));
  differences.push(...listDiff('link', before.links, after.links));
  differences.push(...listDiff('netns', before.netns, after.netns));
  for (const p of new Set([...Object.keys(before.paths), ...Object.keys(after.paths)])) {
    const [b, a] = [before.paths[p] ?? null, after.paths[p] ?? null];
    if (b === null && a === null) continue;
    if (b === null || a === null) {
      differences.push(`path ${p}: ${b === null ? 'absent' : 'present'} → ${a === null ? 'absent' : 'present'}`);
      if (a !== null) differences.push(...listDiff(`path ${p}`, [], a).slice(0, 20));
      continue;
    }
    differences.push(...listDiff(`path ${p}`, b, a));
  }
  differences.push(...listDiff('cgroup', before.cgroups, after.cgroups));
  differences.push(...listDiff('process', before.processes, after.processes));
  differences.push(...listDiff('temp dir', before.tempDirs, after.tempDirs));
  return differences;
}

/** Kernel modules loaded between the two snapshots (informational: they are not unloaded). */
export function newKernelModules(before: HostState, after: HostState): string[] {
  const had = new Set(before.kernelModules);
  return after.kernelModules.filter((m) => !had.has(m));
}

/** `- x` for what went, `+ x` for what came (a multiset difference: duplicates count). */
function listDiff(what: string, before: string[], after: string[]): string[] {
  const counts = new Map<string, number>();
  for (const x of before) counts.set(x, (counts.get(x) ?? 0) + 1);
  for (const x of after) counts.set(x, (counts.get(x) ?? 0) - 1);
  const out: string[] = [];
  for (const [x, n] of counts) {
    if (n > 0) out.push(`${what}: - ${x}${n > 1 ? ` (×${n})` : ''}`);
    if (n < 0) out.push(`${what}: + ${x}${n < -1 ? ` (×${-n})` : ''}`);
  }
  return out;
}

export function readSysctl(name: string): string | null {
  try {
    return fs.readFileSync(sysctlPath(name), 'utf8').trim();
  } catch {
    return null;
  }
}

export function sysctlPath(name: string): string {
  return path.join('/proc/sys', ...name.split('.'));
}

/** `iptables -S` per table for IPv4 and IPv6; a missing table or command is recorded as its error. */
export function iptablesRules(): Record<string, string[]> {
  const rules: Record<string, string[]> = {};
  for (const command of ['iptables', 'ip6tables']) {
    for (const table of iptablesTables) {
      try {
        // -w: wait for the xtables lock rather than fail while another program holds it.
        const out = execFileSync(command, ['-w', '5', '-t', table, '-S'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 20_000,
        });
        rules[`${command} ${table}`] = out.split('\n').filter((line) => line !== '');
      } catch (error) {
        const stderr = (error as { stderr?: string }).stderr ?? String(error);
        rules[`${command} ${table}`] = [`(error: ${stderr.trim().split('\n')[0] ?? ''})`];
      }
    }
  }
  return rules;
}

function hostMounts(): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const mounts: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const mountPoint = unescapeMount(fields[4] ?? '');
    const separator = fields.indexOf('-');
    const fsType = separator >= 0 ? (fields[separator + 1] ?? '') : '';
    const tmp = os.tmpdir();
    const watched =
      watchedMountPrefixes.some(
        (prefix) => mountPoint === prefix || mountPoint.startsWith(prefix.endsWith('-') ? prefix : `${prefix}/`),
      ) || mountPoint.startsWith(path.join(tmp, 'kubevisor-rn-'));
    if (watched) mounts.push(`${mountPoint} ${fsType}`);
  }
  return mounts.sort();
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

interface IpLink {
  ifname: string;
  linkinfo?: { info_kind?: string };
}

/** The host's bridges and veths (`ip -details -json link`). */
export function hostLinks(): string[] {
  const out = execFileSync('ip', ['-details', '-json', 'link', 'show'], { encoding: 'utf8', timeout: 20_000 });
  const links = JSON.parse(out) as IpLink[];
  return links
    .map((l) => ({ name: l.ifname, kind: l.linkinfo?.info_kind ?? '' }))
    .filter((l) => l.kind === 'bridge' || l.kind === 'veth')
    .map((l) => `${l.name} ${l.kind}`)
    .sort();
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Recursive listing (`relative/path type`), null when absent; bounded by {@link maxListing} entries. */
function listTree(root: string): string[] | null {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(root);
  } catch {
    return null;
  }
  if (!stat.isDirectory()) return [`. ${kindOf(stat)}`];
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const entry of listDir(dir)) {
      if (out.length >= maxListing) return;
      const full = path.join(dir, entry);
      const relPath = rel ? `${rel}/${entry}` : entry;
      let s: fs.Stats;
      try {
        s = fs.lstatSync(full);
      } catch {
        continue;
      }
      out.push(`${relPath} ${kindOf(s)}`);
      if (s.isDirectory()) walk(full, relPath);
    }
  };
  walk(root, '');
  if (out.length >= maxListing) out.push(`(listing stopped at ${maxListing} entries)`);
  return out;
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'link';
  if (stat.isSocket()) return 'socket';
  if (stat.isFIFO()) return 'fifo';
  return 'file';
}

/** Mount points of every cgroup (v1) and cgroup2 hierarchy. */
export function cgroupHierarchies(): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    const fsType = separator >= 0 ? fields[separator + 1] : undefined;
    if (fsType === 'cgroup' || fsType === 'cgroup2') points.add(unescapeMount(fields[4] ?? ''));
  }
  return [...points].sort();
}

function firstLevelCgroups(): string[] {
  const out: string[] = [];
  for (const hierarchy of cgroupHierarchies()) {
    for (const entry of listDir(hierarchy)) {
      try {
        if (fs.statSync(path.join(hierarchy, entry)).isDirectory()) out.push(`${hierarchy}/${entry}`);
      } catch {
        // Removed while listing.
      }
    }
  }
  return out.sort();
}

function nodeProcesses(): string[] {
  const out: string[] = [];
  for (const entry of listDir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let comm: string;
    let stat: string;
    try {
      comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // Exited while listing.
    }
    // A zombie has exited: only its parent's wait is pending. Killed shims and pause processes are re-parented to
    // PID 1, which may reap them a moment later; they hold nothing.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
    // comm is cut at 15 characters ("containerd-shim-runc-v2" → "containerd-shim").
    if (nodeBinaries.some((b) => b.slice(0, 15) === comm)) out.push(comm);
  }
  return out.sort();
}

function kernelModules(): string[] {
  try {
    return fs
      .readFileSync('/proc/modules', 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.split(' ')[0] ?? '')
      .sort();
  } catch {
    return [];
  }
}
