/**
 * A stand-in for what the kubelet and the container runtime do with VM pods on a KWOK node, for e2e tests of the
 * node daemon. KWOK marks pods Running without running anything; this plays the rest, as close to a real node as a
 * test without one can:
 * - the pod directory in a kubelet root of its own (`<root>/kubelet/pods/<uid>/volumes/kubernetes.io~empty-dir/…`),
 *   where the node daemon finds it, and the container log in CRI format (`<root>/logs/<ns>_<pod>_<uid>/launcher/0.log`);
 * - the launcher's outputs: the VmConfig the real `buildVmConfig` makes of the pod's VM (with the devices a launcher
 *   would have prepared), the disk and kernel files it names, and the launcher-done marker — or no VmConfig on a
 *   migration target;
 * - Cloud Hypervisor: the spec-validating stand-in (test/standins) on the pod's API socket, with its event monitor
 *   in the run dir and its log on the container log's stderr, resolving VmConfig paths through the pod's "mounts";
 * - the guest's DHCP: once the guest has booted, the lease dnsmasq would have written for each of its NICs;
 * - the kubelet's side of the pod's end: the container's termination in the pod status when CH exits, and on
 *   deletion the preStop hook's wait (the grace period) before CH is stopped.
 * The real kubelet, containerd and launcher run in the real-node suite; this is what lets many simulated nodes run
 * in one test.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { VirtualMachineSpec } from '../../../api';
import { MIGRATION_TARGET_ENV } from '../../../constructs/vm-pod';
import { mountsBelow } from '../../../operator/daemon/mounts';
import { parseNetworkReady } from '../../../operator/netprep/network-ready';
import { waitFor } from './wait';
import type { KubeClient, KubeObject } from '../../../operator/kube';
import { Informer } from '../../../operator/kube';
import { buildVmConfig, type PreparedVm } from '../../../operator/launcher/vm-config';
import { parseVm } from '../../../operator/launcher/vm-env';
import {
  CH_EVENTS,
  CH_SOCKET,
  CLOUD_INIT_ISO,
  FIRMWARE_PATH,
  HOTPLUG_DIR,
  HOTPLUG_VM_LABEL,
  HOTPLUG_VOLUME,
  KERNEL_PATH,
  LAUNCHER_CONTAINER,
  LAUNCHER_DONE,
  NETWORK_READY,
  NETWORK_REQUEST,
  RUN_DIR,
  RUN_VOLUME,
  VM_CONFIG,
  VM_LABEL,
  VM_SECRET_KEY,
  bridgeName,
  containerDiskImage,
  containerRootfsImage,
  dnsmasqFile,
  hostEmptyDir,
  podLinkName,
  pvcDiskImage,
  tapName,
} from '../../../operator/pod-layout';
import {
  formatEventMonitorRecord,
  startCloudHypervisorStandin,
  type CloudHypervisorStandin,
  type StandinExit,
} from '../../standins/cloud-hypervisor-standin';

interface Pod extends KubeObject {
  metadata: KubeObject['metadata'] & { uid: string; namespace: string; name: string };
  spec: {
    nodeName?: string;
    terminationGracePeriodSeconds?: number;
    containers: { name: string; env?: { name: string; value?: string }[] }[];
  };
  status?: { phase?: string; podIP?: string };
}

/** How the guest of a VM behaves (by VM name); by default it powers off on the ACPI button, as Linux does. */
export interface GuestBehaviour {
  readonly powerButton?: 'ignore' | 'poweroff';
  /** Leave a file the VmConfig needs missing, so vm.boot fails (CH: 500 at once). */
  readonly missingDisk?: string;
  /** How fast its CH migrates guest memory (a slow one leaves time to kill a daemon mid-way). */
  readonly migrationBytesPerSecond?: number;
  /**
   * Give the pod a real network namespace (an `eth0` with the pod IP) and a process in a cgroup named after the pod,
   * as a container runtime would, and let the launcher ask the node daemon for its network instead of making it up:
   * the daemon finds the namespace from the host and prepares it (operator/netprep).
   */
  readonly realNetwork?: boolean;
}

/** One VM pod as this stand-in runs it. */
export interface RunningVmPod {
  readonly pod: Pod;
  readonly runDir: string;
  standin?: CloudHypervisorStandin;
  /** Resolves when its CH has exited and the pod status says so. */
  readonly ended: Promise<void>;
  /** How its CH ended, once it has. */
  exit?: StandinExit;
  /** When (epoch ms) its CH received vm.boot: the node daemon's answer to the pod running. */
  bootRequestedAt?: number;
  /** The pod's network namespace (realNetwork), by `ip netns` name. */
  netns?: string;
}

export interface KubeletStandinOptions {
  readonly client: KubeClient;
  readonly nodeName: string;
  /** Temp dir holding this node's kubelet root, container logs and the pods' mirrored files. */
  readonly root: string;
}

export class KubeletStandin {
  readonly kubeletRoot: string;
  readonly podLogsDir: string;
  private readonly containersDir: string;
  private readonly informer: Informer<Pod>;
  private readonly attachments: Informer<Pod>;
  private readonly running = new Map<string, RunningVmPod & { stopping?: Promise<void> }>();

  private readonly behaviours = new Map<string, GuestBehaviour>();
  private readonly sandboxes = new Map<string, PodSandbox>();
  /** What went wrong in this stand-in itself (tests show these when a wait times out). */
  readonly errors: string[] = [];
  /** Every VM pod this node ever ran, in start order (pods deleted since included). */
  readonly history: RunningVmPod[] = [];
  private stopped = false;

  constructor(private readonly options: KubeletStandinOptions) {
    this.kubeletRoot = join(options.root, 'kubelet');
    this.podLogsDir = join(options.root, 'logs');
    this.containersDir = join(options.root, 'containers');
    for (const d of [this.kubeletRoot, this.podLogsDir, this.containersDir]) mkdirSync(d, { recursive: true });
    this.informer = new Informer<Pod>({
      client: options.client,
      name: `kubelet-standin-${options.nodeName}`,
      path: '/api/v1/pods',
      labelSelector: VM_LABEL,
      fieldSelector: `spec.nodeName=${options.nodeName}`,
      apiVersion: 'v1',
      kind: 'Pod',
    });
    const changed = (p: Pod, deleted: boolean) =>
      void this.podChanged(p, deleted).catch((error: unknown) =>
        this.errors.push(`${p.metadata.name}: ${error instanceof Error ? error.stack : String(error)}`),
      );
    this.informer.onAdd((p) => changed(p, false));
    this.informer.onUpdate((_o, p) => changed(p, false));
    this.informer.onDelete((p) => changed(p, true));
    // Attachment pods of hot-plugged volumes: the kubelet would attach and mount their claim's volume.
    this.attachments = new Informer<Pod>({
      client: options.client,
      name: `kubelet-standin-attachments-${options.nodeName}`,
      path: '/api/v1/pods',
      labelSelector: HOTPLUG_VM_LABEL,
      fieldSelector: `spec.nodeName=${options.nodeName}`,
      apiVersion: 'v1',
      kind: 'Pod',
    });
    const attach = (p: Pod) =>
      void this.mountAttachment(p).catch((error: unknown) =>
        this.errors.push(`${p.metadata.name}: ${error instanceof Error ? error.stack : String(error)}`),
      );
    this.attachments.onAdd(attach);
    this.attachments.onUpdate((_o, p) => attach(p));
  }

  async start(): Promise<void> {
    this.informer.start();
    this.attachments.start();
    await Promise.all([this.informer.waitForSync(30_000), this.attachments.waitForSync(30_000)]);
  }

  /**
   * Where the kubelet would have mounted the claim of a Running attachment pod: `pods/<uid>/volumes/kubernetes.io~csi/
   * <pv>/mount`, holding the filesystem-mode convention's disk.img.
   */
  private async mountAttachment(
    pod: Pod & { spec: { volumes?: { persistentVolumeClaim?: { claimName: string } }[] } },
  ) {
    if (pod.status?.phase !== 'Running' || pod.metadata.deletionTimestamp) return;
    const claimName = pod.spec.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
    if (!claimName) return;
    const pvc = await this.options.client.get<KubeObject & { spec: { volumeName?: string } }>(
      'v1',
      'PersistentVolumeClaim',
      claimName,
      pod.metadata.namespace,
    );
    if (!pvc.spec.volumeName) return;
    const dir = join(
      this.kubeletRoot,
      'pods',
      pod.metadata.uid,
      'volumes',
      'kubernetes.io~csi',
      pvc.spec.volumeName,
      'mount',
    );
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'disk.img'), '', { flag: 'a' });
  }

  /** Sets how the guest of VM `vmName` behaves in pods started from now on. */
  guest(vmName: string, behaviour: GuestBehaviour): void {
    this.behaviours.set(vmName, behaviour);
  }

  /** The running VM pod of that name, if this node runs it. */
  pod(name: string): RunningVmPod | undefined {
    return [...this.running.values()].find((r) => r.pod.metadata.name === name);
  }

  pods(): RunningVmPod[] {
    return [...this.running.values()];
  }

  /** Stops every CH stand-in and the watch, and removes the files. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.informer.stop(), this.attachments.stop()]);
    await Promise.all([...this.running.values()].map((r) => r.standin?.stop()));
    this.running.clear();
    await Promise.all([...this.sandboxes.values()].map((b) => b.stop()));
    this.sandboxes.clear();
    try {
      rmdirSync(CGROUP_PARENT); // another node's stand-in may still hold pods in it; the last one removes it
    } catch {
      // Not made, or still in use.
    }
  }

  private async podChanged(pod: Pod, deleted: boolean): Promise<void> {
    const uid = pod.metadata.uid;
    const run = this.running.get(uid);
    if (!run && !deleted && !pod.metadata.deletionTimestamp && pod.status?.phase === 'Running' && !this.stopped) {
      this.running.set(uid, await this.startPod(pod));
      return;
    }
    if (run && (deleted || pod.metadata.deletionTimestamp) && !run.stopping) {
      run.stopping = this.terminate(run, deleted);
    }
  }

  /** The kubelet's termination: preStop (the grace period minus the SIGTERM margin) runs while CH may still exit by itself. */
  private async terminate(run: RunningVmPod, deleted: boolean): Promise<void> {
    // The pod's preStop hook sleeps for the grace period less the kubelet's 10 s margin (constructs/vm-pod.ts).
    const graceMs = Math.max(0, (run.pod.spec.terminationGracePeriodSeconds ?? 30) - 10) * 1000;
    if (run.standin) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([run.ended, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      await run.standin.stop();
    }
    await run.ended.catch(() => undefined);
    if (deleted || !this.informer.get(run.pod.metadata.namespace, run.pod.metadata.name)) await this.cleanUp(run);
  }

  private async cleanUp(run: RunningVmPod): Promise<void> {
    this.running.delete(run.pod.metadata.uid);
    const podDir = join(this.kubeletRoot, 'pods', run.pod.metadata.uid);
    // As the kubelet: a volume something else still has mounted in the pod's directory blocks its removal (the node
    // daemon unmounts hot-plugged volumes when the pod goes away); the files are never deleted through a mount.
    for (let i = 0; mountsBelow(podDir).length > 0; i++) {
      if (i === 30) {
        this.errors.push(`${run.pod.metadata.name}: still mounted after 30 s: ${mountsBelow(podDir).join(', ')}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    rmSync(podDir, { recursive: true, force: true });
    rmSync(run.runDir, { recursive: true, force: true });
    await this.sandboxes.get(run.pod.metadata.uid)?.stop();
    this.sandboxes.delete(run.pod.metadata.uid);
    rmSync(join(this.containersDir, run.pod.metadata.uid), { recursive: true, force: true });
  }

  private async startPod(pod: Pod): Promise<RunningVmPod> {
    const { uid, namespace, name } = pod.metadata;
    // The emptyDir lives in a short directory that the kubelet path points to: CH listens on sockets in it (its API,
    // a migration's rx.sock/tx.sock) and a unix socket address holds at most 108 bytes, which a kubelet pod path
    // exceeds. In a real pod the container sees the emptyDir at /var/run/kubevisor, which is short; the node daemon
    // opens the long host path either way (operator/daemon/pod-files.ts).
    const runDir = mkdtempSync(join(tmpdir(), 'kv-run-'));
    const kubeletRunDir = hostEmptyDir(this.kubeletRoot, uid, RUN_VOLUME);
    mkdirSync(dirname(kubeletRunDir), { recursive: true });
    symlinkSync(runDir, kubeletRunDir);
    const containerRoot = join(this.containersDir, uid);
    const logFile = join(this.podLogsDir, `${namespace}_${name}_${uid}`, LAUNCHER_CONTAINER, '0.log');
    mkdirSync(dirname(logFile), { recursive: true });
    // The container's mount table: the run dir is the emptyDir, everything else lives in the container's own root.
    const hotplugDir = hostEmptyDir(this.kubeletRoot, uid, HOTPLUG_VOLUME);
    mkdirSync(hotplugDir, { recursive: true });
    const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
    const resolvePath = (p: string) =>
      under(p, RUN_DIR)
        ? join(runDir, p.slice(RUN_DIR.length))
        : under(p, HOTPLUG_DIR)
          ? join(hotplugDir, p.slice(HOTPLUG_DIR.length))
          : join(containerRoot, p);
    const log = (stream: 'stdout' | 'stderr', line: string) =>
      appendFileSync(logFile, `${new Date().toISOString()} ${stream} F ${line}\n`);

    const env = Object.fromEntries(
      (pod.spec.containers.find((c) => c.name === LAUNCHER_CONTAINER)?.env ?? []).map((e) => [e.name, e.value]),
    );
    // The VM as the launcher reads it: from the pod's own Secret, which the controller creates before the pod.
    const secret = await this.options.client.get<KubeObject & { data?: Record<string, string> }>(
      'v1',
      'Secret',
      name,
      namespace,
    );
    const vm = parseVm(Buffer.from(secret.data?.[VM_SECRET_KEY] ?? '', 'base64').toString('utf8'), `Secret ${name}`);
    const behaviour = this.behaviours.get(vm.metadata.name) ?? {};
    const target = env[MIGRATION_TARGET_ENV] === 'true';
    const prepared = prepare(vm.spec, pod.metadata.name);
    for (const file of [
      FIRMWARE_PATH,
      ...(vm.spec.instance.kernel ? [KERNEL_PATH] : []),
      ...Object.values(prepared.disks).map((d) => d.path),
    ]) {
      if (file === behaviour.missingDisk) continue;
      mkdirSync(dirname(resolvePath(file)), { recursive: true });
      writeFileSync(resolvePath(file), '');
    }
    let sandbox: PodSandbox | undefined;
    let devices = prepared;
    if (behaviour.realNetwork) {
      sandbox = await startSandbox(uid, pod.status?.podIP ?? '10.244.99.9');
      this.sandboxes.set(uid, sandbox);
      devices = { ...prepared, interfaces: await askNodeDaemonForNetwork(resolvePath, vm.spec) };
    }
    log(
      'stdout',
      `launcher: prepared by the kubelet stand-in (${sandbox ? 'network from the node daemon' : 'no network'}, no dnsmasq)`,
    );
    if (!target) writeFileSync(resolvePath(VM_CONFIG), `${JSON.stringify(buildVmConfig(vm, devices), null, 2)}\n`);
    writeFileSync(resolvePath(LAUNCHER_DONE), `${JSON.stringify({ configWritten: !target })}\n`);

    const run: RunningVmPod & { standin?: CloudHypervisorStandin } = {
      pod,
      runDir,
      ended: Promise.resolve(),
      ...(sandbox ? { netns: sandbox.netns } : {}),
    };
    // What entrypoint.sh does next: exec CH with its API socket and event monitor.
    const standin = await startCloudHypervisorStandin({
      socketPath: resolvePath(CH_SOCKET),
      resolvePath,
      powerButton: behaviour.powerButton ?? 'poweroff',
      onEvent: (event) => {
        if (event.source === 'vm' && event.event === 'booting') run.bootRequestedAt ??= Date.now();
        appendFileSync(resolvePath(CH_EVENTS), formatEventMonitorRecord(event));
        if (event.source === 'vm' && (event.event === 'booted' || event.event === 'migration-receive-finished')) {
          writeLeases(vm.spec, pod, resolvePath, standin);
        }
      },
      log: (line) => log('stderr', line),
      ...(behaviour.migrationBytesPerSecond ? { migrationBytesPerSecond: behaviour.migrationBytesPerSecond } : {}),
    });
    run.standin = standin;
    this.history.push(run);
    const ended = standin.exited.then(async (exit) => {
      run.exit = exit;
      // The kubelet reports the container's end (restartPolicy Never: the pod ends with it).
      if (this.stopped) return;
      await this.options.client
        .request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
          contentType: 'application/merge-patch+json',
          body: {
            status: {
              phase: exit.code === 0 ? 'Succeeded' : 'Failed',
              containerStatuses: [
                {
                  name: LAUNCHER_CONTAINER,
                  image: 'kubevisor:e2e',
                  imageID: '',
                  ready: false,
                  restartCount: 0,
                  state: {
                    terminated: {
                      exitCode: exit.code,
                      reason: exit.code === 0 ? 'Completed' : 'Error',
                      finishedAt: new Date().toISOString(),
                    },
                  },
                },
              ],
            },
          },
        })
        .catch(() => undefined); // the pod may already be gone
    });
    return Object.assign(run, { ended });
  }
}

/** The devices a launcher would prepare for this VM, at the paths it would use (operator/launcher). */
function prepare(spec: VirtualMachineSpec, podName: string): PreparedVm {
  const disks: Record<string, { path: string; forceReadOnly?: boolean }> = {};
  for (const v of spec.volumes ?? []) {
    if (v.containerDisk) disks[v.name] = { path: containerDiskImage(v.name) };
    else if (v.containerRootfs) disks[v.name] = { path: containerRootfsImage(v.name) };
    else if (v.persistentVolumeClaim || v.dataVolume) disks[v.name] = { path: pvcDiskImage(v.name) };
    else if (v.cloudInit) disks[v.name] = { path: CLOUD_INIT_ISO, forceReadOnly: true };
  }
  const interfaces: Record<string, PreparedVm['interfaces'][string]> = {};
  (spec.networks ?? []).forEach((n, i) => {
    const iface = spec.instance.interfaces?.find((x) => x.name === n.name);
    if (!iface) return;
    const link = podLinkName(n, i);
    // Bridge binding hands the guest the pod interface's MAC; the stand-in makes one up from the pod name.
    interfaces[n.name] = { kind: 'tap', tap: tapName(link), mac: iface.mac ?? macFor(podName, i), mtu: 1500 };
  });
  return { disks, interfaces, fileSystems: {} };
}

function macFor(seed: string, i: number): string {
  let h = i + 1;
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const b = [0x0a, 0x58, (h >>> 24) & 0xff, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The leases dnsmasq writes once the guest's DHCP client asks: the pod IP (bridge) or the masquerade guest address. */
function writeLeases(
  spec: VirtualMachineSpec,
  pod: Pod,
  resolvePath: (p: string) => string,
  standin: CloudHypervisorStandin,
): void {
  const nets = standin.state().config?.net ?? [];
  (spec.networks ?? []).forEach((n, i) => {
    const iface = spec.instance.interfaces?.find((x) => x.name === n.name);
    const nic = nets.find((x) => x.id === `net-${n.name}`);
    if (!iface || !nic?.mac) return;
    const ip = iface.masquerade ? secondAddress(iface.masquerade.cidr ?? '10.0.2.0/30') : pod.status?.podIP;
    if (!ip) return;
    const file = resolvePath(dnsmasqFile(bridgeName(podLinkName(n, i)), 'leases'));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `0 ${nic.mac} ${ip} ${pod.metadata.name.slice(0, 63)} *\n`);
  });
}

function secondAddress(cidr: string): string {
  const [base] = cidr.split('/');
  const parts = base.split('.').map(Number);
  const n = ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) + 2;
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** A pod sandbox as the container runtime makes it: a network namespace, and a process of the pod in it. */
interface PodSandbox {
  readonly netns: string;
  stop(): Promise<void>;
}

/** The cgroup hierarchy the stand-in puts pod processes in (v1 `pids`, or v2's single one). */
const CGROUP_PARENT = existsSync('/sys/fs/cgroup/pids')
  ? '/sys/fs/cgroup/pids/kubevisor-e2e'
  : '/sys/fs/cgroup/kubevisor-e2e';

async function startSandbox(podUid: string, podIp: string): Promise<PodSandbox> {
  const netns = `kv-e2e-${podUid.slice(0, 8)}`;
  const sh = (argv: string[]) => execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const cgroup = join(CGROUP_PARENT, `pod${podUid}`, 'sandbox');
  let pause: ReturnType<typeof spawn> | undefined;
  const stop = async () => {
    if (pause?.pid) {
      try {
        process.kill(-pause.pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const dir of [cgroup, dirname(cgroup)]) {
      try {
        rmdirSync(dir);
      } catch {
        // Never made, or gone.
      }
    }
    try {
      sh(['ip', 'netns', 'del', netns]);
    } catch {
      // Never made, or gone.
    }
  };
  try {
    sh(['ip', 'netns', 'add', netns]);
    // What a CNI plugin leaves: eth0 (a veth; its peer stays in the namespace) with the pod's address and a route.
    sh(['ip', '-n', netns, 'link', 'add', 'eth0', 'mtu', '1450', 'type', 'veth', 'peer', 'name', 'cni-peer']);
    sh(['ip', '-n', netns, 'link', 'set', 'cni-peer', 'up']);
    sh(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', netns, 'addr', 'add', `${podIp}/24`, 'dev', 'eth0']);
    // The gateway is .1 of the pod's /24 — unless KWOK gave the pod .1 itself (the kernel then refuses the route as
    // an invalid nexthop): .254 then.
    const gateway = podIp.replace(/\.\d+$/, podIp.endsWith('.1') ? '.254' : '.1');
    sh(['ip', '-n', netns, 'route', 'add', 'default', 'via', gateway, 'dev', 'eth0', 'onlink']);
    mkdirSync(cgroup, { recursive: true });
    // The pause process: in the pod's network namespace and cgroup, doing nothing (`ip netns exec` execs sleep).
    pause = spawn('ip', ['netns', 'exec', netns, 'sleep', '3600'], { stdio: 'ignore', detached: true });
    writeFileSync(join(cgroup, 'cgroup.procs'), String(pause.pid));
  } catch (error) {
    await stop();
    throw error;
  }
  return { netns, stop };
}

/** The launcher's side of the network handshake: ask (network-request), wait for the daemon's answer. */
async function askNodeDaemonForNetwork(
  resolvePath: (p: string) => string,
  spec: VirtualMachineSpec,
): Promise<PreparedVm['interfaces']> {
  const id = randomBytes(16).toString('hex');
  writeFileSync(resolvePath(NETWORK_REQUEST), `${JSON.stringify({ request: id })}\n`);
  const ready = await waitFor(
    'the node daemon to answer the network request',
    async () => {
      try {
        const answer = parseNetworkReady(readFileSync(resolvePath(NETWORK_READY), 'utf8'));
        return answer.request === id ? answer : undefined;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  if ('error' in ready) throw new Error(`the node daemon could not prepare the network: ${ready.error}`);
  const interfaces: Record<string, PreparedVm['interfaces'][string]> = {};
  for (const iface of spec.instance.interfaces ?? []) {
    const nic = ready.interfaces[iface.name]?.nic;
    if (nic) interfaces[iface.name] = { kind: 'tap', tap: nic.tap, mac: nic.mac, mtu: nic.mtu };
  }
  return interfaces;
}
