/**
 * A real Kubernetes node for the e2e suite: containerd (Debian's 1.6, with runc) and the kubelet (v1.35.8, built with
 * the control plane by tools/control-plane/build.sh) on this host, registered with the e2e control plane, running real
 * pods from locally imported images (no registry anywhere; the sandbox image is tools/real-node's pause image) on a
 * CNI bridge (Debian's containernetworking-plugins: bridge + host-local; containerd adds loopback itself).
 *
 * Containment — the kubelet and containerd change host state whatever their configured roots (measured here):
 * - Mounts (pod volumes, container root filesystems, pinned network namespaces): both run in a mount namespace of
 *   their own (`unshare --mount --propagation private`, tools/real-node/node-ns.sh), so every mount vanishes with it.
 *   In that namespace /run, /var/lib and /var/log are empty dirs of the node's temp dir, which keeps the fixed paths
 *   they write to off the host: /var/lib/kubelet (the kubelet runs with that default root dir, so kubevisor's daemon
 *   and device plugins find it where they look, and the device-plugin socket dir
 *   /var/lib/kubelet/device-plugins, which the kubelet hard-codes, is the node's own), /var/log/{pods,containers},
 *   /run/containerd/s (shim sockets) and /var/lib/cni (CNI's cache). Seen from the host the kubelet's root is
 *   {@link RealNode.kubeletRootDir}. The flexvolume dir (/usr/libexec/kubernetes/…) is moved by config. So a pod's
 *   hostPath under /run, /var/lib or /var/log is the node's dir, not the host's; the rest of the host's tree (/dev,
 *   /sys, /proc, /etc, /tmp …) is shared. The host sees the namespace's mounts through {@link RealNode.nodeRoot}.
 * - Processes: containerd and the kubelet start in a cgroup of the node's own (`kubevisor-rn-<id>`, also the
 *   kubelet's cgroupRoot, so pods' cgroups are below it); containerd's shims inherit it, containers are placed below
 *   it. stop() kills everything in that cgroup tree, whatever process group or session it is in, then removes it.
 * - Network: the node shares the host's network namespace. A separate one would keep the bridge and the kubelet's
 *   iptables chains off the host, but the API server listens on the host's loopback (a separate namespace would need
 *   a veth pair, routes and route_localnet/DNAT to reach it: more host state than it saves), and the kubevisor chain
 *   needs the host to reach pod IPs. So the node gets its own bridge `kvrn-<id>` with a free /24 (the host's
 *   address on it is the node's InternalIP and the kubelet's only listen address), stop() deletes it (veths go with
 *   their pods' network namespaces), and the iptables chains and rules the kubelet adds (KUBE-FIREWALL and its jumps,
 *   KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) are removed by diffing against a snapshot taken at start.
 * - sysctls: the kubelet sets vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops and
 *   kernel.keys.root_max{keys,bytes}; the bridge plugin sets net.ipv4.ip_forward. They are recorded at start and
 *   restored by stop().
 * - Everything to undo is written to `<dir>/node.json` before anything changes; stop(), the exit handlers (test
 *   failure, Ctrl-C) and the next start (after a run killed outright) all undo it from that record.
 * Kernel modules the kernel loads on first use (overlay, bridge, veth) stay loaded.
 *
 * Pods: the node is registered with the taint {@link REAL_NODE_TAINT} and the label `kubevisor.io/real-node=true`,
 * so no pod of another suite (they target KWOK nodes, which KWOK manages by annotation, leaving this one alone) lands
 * on it: a test that wants it selects it (nodeName or nodeSelector) and tolerates the taint
 * ({@link REAL_NODE_TOLERATION}). Images: {@link RealNode.importImage} an OCI archive under a name, then use
 * `imagePullPolicy: Never` (or IfNotPresent).
 *
 * Security: the kubelet serves its API (logs, exec) only on the bridge address, authenticates clients by the
 * cluster CA (the API server uses its kubelet client certificate) or bearer token, and authorizes through the API
 * server (Webhook), as a kubeadm node does. Its client identity is system:node:<name> (Node authorizer).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { controlPlaneBinDir } from './control-plane';
import { cgroupHierarchies, iptablesRules, readSysctl, sysctlPath, watchedSysctls } from './host-state';
import type { KubeClient, KubeObject } from './kube-client';
import { writeKubeconfig } from './kubeconfig';
import { freePorts } from './ports';
import { logTail, spawnComponent, stopComponent } from './processes';
import type { ComponentProcess } from './processes';
import { sharedControlPlane, sharedControlPlaneInfo } from './shared';
import { waitFor } from './wait';

/** The taint every real node carries: only pods that tolerate it run there. */
export const REAL_NODE_TAINT = { key: 'kubevisor.io/real-node', value: 'true', effect: 'NoSchedule' } as const;
export const REAL_NODE_TOLERATION = {
  key: REAL_NODE_TAINT.key,
  operator: 'Equal',
  value: REAL_NODE_TAINT.value,
  effect: REAL_NODE_TAINT.effect,
} as const;
/** The network name in tools/real-node/cni.conflist (host-local keeps its leases in a dir of that name). */
const CNI_NETWORK = 'kubevisor-real-node';
/** The label every real node carries (value "true"). */
export const REAL_NODE_LABEL = 'kubevisor.io/real-node';

/** The control plane a node joins: where it is and the CA that signs the node's certificates. */
export interface RealNodeControlPlane {
  server: string;
  caPem: string;
  caCertPath: string;
  caKeyPath: string;
  /** A new admin client (the node closes it when it stops). */
  client(): KubeClient;
}

export interface RealNodeOptions {
  /** @default 'kubevisor-real-node' */
  nodeName?: string;
  /** @default the e2e run's shared control plane */
  controlPlane?: RealNodeControlPlane;
  /** The pod network, a /24 (the host takes .1). @default the first of 10.250.0.0/24 … 10.250.255.0/24 no route overlaps */
  subnet?: string;
  /** Bound on kubelet start → Node Ready. @default 60000 */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL, per process. @default 10000 */
  stopGraceMs?: number;
  /** Progress lines; default writes to stderr. */
  log?: (line: string) => void;
}

export interface RealNode {
  nodeName: string;
  /** The CNI bridge, its /24 and the host's address on it (the node's InternalIP and the kubelet's address). */
  bridge: string;
  subnet: string;
  gateway: string;
  /** Temp dir of the node: configs, certificates, containerd's root and state, the namespace's /run, /var/lib, /var/log. */
  dir: string;
  /**
   * containerd.log and kubelet.log, in a temp dir of their own (`kubevisor-real-node-logs-*`) that stop() removes
   * unless told to keep it.
   */
  logDir: string;
  /** The kubelet's root dir (/var/lib/kubelet in the node's mount namespace) as the host sees it. */
  kubeletRootDir: string;
  /** Where a process in the host's mount namespace sees the node's `/` (its mounts included): `/proc/<pid>/root`. */
  nodeRoot: string;
  /** The sandbox image (imported at start). */
  sandboxImage: string;
  /** Milliseconds from the kubelet's start to Node Ready. */
  readyMs: number;
  pids: { containerd: number; kubelet: number };
  /**
   * Imports an OCI image layout archive into containerd's CRI namespace under `name` (normalized as CRI does:
   * `busybox:1` is `docker.io/library/busybox:1`). Returns the stored name. Pods then use it with
   * `imagePullPolicy: Never`.
   */
  importImage(ociArchive: string, name: string): Promise<string>;
  /** Runs `ctr` against the node's containerd (CRI namespace k8s.io) inside its mount namespace; resolves to stdout. */
  ctr(args: string[], options?: { timeoutMs?: number }): Promise<string>;
  /**
   * What pods left on the node: running tasks, pod dirs, IP leases, bridge ports, pod mounts — one line per kind that
   * is not empty, so `[]` means the node is clean of pods.
   */
  podLeftovers(): Promise<string[]>;
  /** The last lines of containerd's and the kubelet's logs, for a failure message. */
  logTails(lines?: number): string;
  /**
   * Stops the kubelet and containerd, kills whatever ran in the node's cgroup, removes the cgroups, the bridge, the
   * iptables additions and the temp dir (and the log dir unless `keepLogs`: for a failed test), restores the sysctls and
   * deletes the Node object. Idempotent.
   */
  stop(options?: { keepLogs?: boolean }): Promise<void>;
}

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const toolsDir = path.join(repoRoot, 'tools', 'real-node');
const nodeNsScript = path.join(toolsDir, 'node-ns.sh');
const dirPrefix = 'kubevisor-rn-';
const recordFile = 'node.json';
const cniBinDir = '/usr/lib/cni';
/** The CRI namespace of containerd. */
const criNamespace = 'k8s.io';

/** Everything stop() must undo, written before anything is changed. */
interface NodeRecord {
  ownerPid: number;
  dir: string;
  logDir: string;
  /** Name of the node's cgroup under every hierarchy root. */
  cgroup: string;
  bridge: string;
  /** Values before the start (null: absent). */
  sysctls: Record<string, string | null>;
  /** `iptables -S` / `ip6tables -S` per table before the start. */
  iptables: Record<string, string[]>;
}

const liveRecords = new Set<NodeRecord>();
let exitHandlersInstalled = false;

export async function startRealNode(options: RealNodeOptions = {}): Promise<RealNode> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (process.getuid?.() !== 0) throw new Error('real-node: needs root (mount namespace, cgroups, bridge, sysctls)');
  const nodeName = options.nodeName ?? 'kubevisor-real-node';
  const controlPlane = options.controlPlane ?? sharedRealNodeControlPlane();
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const kubeletBin = path.join(controlPlaneBinDir(), 'kubelet');
  checkPrerequisites(kubeletBin);
  const pause = buildPauseImage();

  // A run killed outright (SIGKILL, OOM) ran no exit handler: undo what it left from its record.
  reapOrphanNodes();

  const id = randomBytes(3).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${dirPrefix}${id}-`));
  // Apart from the node's dir, so that keeping them after a failure leaves everything else as found.
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `kubevisor-real-node-logs-${id}-`));
  const subnet = options.subnet ?? freeSubnet();
  const gateway = subnet.replace(/\.0\/24$/, '.1');
  if (!/^\d+\.\d+\.\d+\.0\/24$/.test(subnet)) throw new Error(`real-node: subnet ${subnet} is not an IPv4 /24`);
  const record: NodeRecord = {
    ownerPid: process.pid,
    dir,
    logDir,
    cgroup: `${dirPrefix}${id}`,
    bridge: `kvrn-${id}`,
    sysctls: Object.fromEntries(watchedSysctls.map((name) => [name, readSysctl(name)])),
    iptables: iptablesRules(),
  };
  fs.writeFileSync(path.join(dir, recordFile), JSON.stringify(record, null, 2));
  installExitHandlers();
  liveRecords.add(record);

  const admin = controlPlane.client();
  let containerd: ComponentProcess | undefined;
  let kubelet: ComponentProcess | undefined;
  const socket = path.join(dir, 'containerd.sock');
  const components = (): ComponentProcess[] => [containerd, kubelet].filter((c): c is ComponentProcess => !!c);
  const abortIfExited = (): void => {
    for (const c of components()) {
      if (c.exit) throw new Error(`${c.name} exited (${c.exit.signal ?? `code ${String(c.exit.code)}`})`);
    }
  };
  const ctr = (args: string[], ctrOptions: { timeoutMs?: number; stdinFile?: string } = {}): Promise<string> => {
    if (!containerd) return Promise.reject(new Error('real-node: containerd is not running'));
    return run(
      'nsenter',
      ['--target', String(containerd.pid), '--mount', '--', 'ctr', '--address', socket, '--namespace', criNamespace],
      args,
      { timeoutMs: ctrOptions.timeoutMs ?? 120_000, stdinFile: ctrOptions.stdinFile },
    );
  };
  const logTails = (lines = 40): string =>
    components()
      .map((c) => `--- last lines of ${c.logPath} ---\n${logTail(c.logPath, lines)}`)
      .join('\n');

  let stage = 'setup';
  try {
    // Certificates from the cluster CA: the kubelet's client identity (Node authorizer: system:node:<name> in
    // system:nodes) and its serving certificate (the API server connects to the bridge address).
    const pki = path.join(dir, 'pki');
    fs.mkdirSync(pki, { mode: 0o700 });
    const ca = { certPath: controlPlane.caCertPath, keyPath: controlPlane.caKeyPath };
    const client = signCertificate(pki, 'kubelet-client', `/O=system:nodes/CN=system:node:${nodeName}`, ca, 'client');
    const serving = signCertificate(pki, 'kubelet-serving', `/CN=${nodeName}`, ca, 'serving', [
      `IP:${gateway}`,
      `DNS:${nodeName}`,
    ]);
    const kubeconfigPath = path.join(dir, 'kubelet.kubeconfig');
    writeKubeconfig(kubeconfigPath, {
      server: controlPlane.server,
      caPem: controlPlane.caPem,
      clientCertPem: fs.readFileSync(client.certPath, 'utf8'),
      clientKeyPem: fs.readFileSync(client.keyPath, 'utf8'),
      user: `system:node:${nodeName}`,
    });

    stage = 'cgroups';
    const hierarchies = cgroupHierarchies();
    const tracking =
      hierarchies.find((h) => path.basename(h) === 'pids') ??
      hierarchies.find((h) => fs.existsSync(path.join(h, 'cgroup.controllers')));
    if (!tracking) throw new Error('no pids cgroup hierarchy and no cgroup2 mount: cannot track the node');
    // The kubelet checks that its cgroupRoot exists in every hierarchy; pods' cgroups are made below it.
    for (const h of hierarchies) fs.mkdirSync(path.join(h, record.cgroup), { recursive: true });
    const runtimeCgroup = path.join(tracking, record.cgroup, 'runtime');
    fs.mkdirSync(runtimeCgroup, { recursive: true });
    const procsFile = path.join(runtimeCgroup, 'cgroup.procs');

    stage = 'bridge';
    // Made here rather than by the CNI plugin on the first pod: its address is the node IP the kubelet registers
    // and listens on, which must exist before the kubelet starts. The plugin adopts an existing bridge.
    ip('link', 'add', record.bridge, 'type', 'bridge');
    ip('addr', 'add', `${gateway}/24`, 'dev', record.bridge);
    ip('link', 'set', record.bridge, 'up');

    stage = 'configs';
    const dirs = ['home', 'tmp', 'cni/net.d', 'cni/ipam', 'containerd', 'volume-plugins'];
    for (const d of dirs) fs.mkdirSync(path.join(dir, d), { recursive: true });
    const fill = (template: string, values: Record<string, string>): string =>
      fs
        .readFileSync(path.join(toolsDir, template), 'utf8')
        .replace(/\{\{([A-Z_]+)\}\}/g, (whole, key: string) => values[key] ?? whole);
    const containerdConfig = path.join(dir, 'containerd.toml');
    fs.writeFileSync(
      containerdConfig,
      fill('containerd.toml', { DIR: dir, SOCKET: socket, SANDBOX_IMAGE: pause.image, CNI_BIN_DIR: cniBinDir }),
    );
    fs.writeFileSync(
      path.join(dir, 'cni', 'net.d', '10-kubevisor-real-node.conflist'),
      fill('cni.conflist', { DIR: dir, BRIDGE: record.bridge, SUBNET: subnet, GATEWAY: gateway }),
    );
    // The namespace's /run is empty; /etc/resolv.conf may point into the host's. Pods get this copy.
    const resolvConf = path.join(dir, 'resolv.conf');
    fs.writeFileSync(resolvConf, fs.readFileSync('/etc/resolv.conf', 'utf8'));

    const env: NodeJS.ProcessEnv = {
      PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: path.join(dir, 'home'),
      TMPDIR: path.join(dir, 'tmp'),
    };

    stage = 'containerd';
    containerd = spawnComponent(
      'containerd',
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        nodeNsScript,
        'setup',
        dir,
        procsFile,
        '--',
        'containerd',
        '--config',
        containerdConfig,
      ],
      path.join(logDir, 'containerd.log'),
      env,
    );
    await waitFor(
      'containerd to answer',
      async () => ((await ctr(['version'], { timeoutMs: 5_000 })).includes('Server:') ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 100, abortIf: abortIfExited },
    );
    await importOciArchive(ctr, pause.archive, pause.image);

    stage = 'kubelet';
    const ports = await freePorts(['kubelet', 'healthz'] as const);
    const kubeletConfig = path.join(dir, 'kubelet-config.json');
    fs.writeFileSync(
      kubeletConfig,
      JSON.stringify(
        {
          apiVersion: 'kubelet.config.k8s.io/v1beta1',
          kind: 'KubeletConfiguration',
          // These hosts are cgroup v1 without systemd; 1.35 refuses cgroup v1 unless told, and swap is on or off.
          failCgroupV1: false,
          cgroupDriver: 'cgroupfs',
          cgroupRoot: `/${record.cgroup}`,
          failSwapOn: false,
          containerRuntimeEndpoint: `unix://${socket}`,
          address: gateway,
          port: ports.kubelet,
          readOnlyPort: 0,
          healthzBindAddress: '127.0.0.1',
          healthzPort: ports.healthz,
          tlsCertFile: serving.certPath,
          tlsPrivateKeyFile: serving.keyPath,
          rotateCertificates: false,
          serverTLSBootstrap: false,
          authentication: {
            anonymous: { enabled: false },
            webhook: { enabled: true, cacheTTL: '10s' },
            x509: { clientCAFile: controlPlane.caCertPath },
          },
          authorization: { mode: 'Webhook', webhook: { cacheAuthorizedTTL: '10s', cacheUnauthorizedTTL: '5s' } },
          registerNode: true,
          registerWithTaints: [REAL_NODE_TAINT],
          resolvConf,
          // Default: /usr/libexec/kubernetes/kubelet-plugins/volume/exec on the host, created if missing.
          volumePluginDir: path.join(dir, 'volume-plugins'),
          // A test machine's disk may be fuller than a node's defaults allow: no eviction or image GC for disk
          // (image GC would delete imported images nothing could pull again).
          evictionHard: {
            'memory.available': '100Mi',
            'nodefs.available': '1%',
            'nodefs.inodesFree': '1%',
            'imagefs.available': '1%',
          },
          imageGCHighThresholdPercent: 100,
          imageGCLowThresholdPercent: 99,
          maxPods: 64,
          shutdownGracePeriod: '0s',
        },
        null,
        2,
      ),
    );
    const kubeletStartedAt = Date.now();
    kubelet = spawnComponent(
      'kubelet',
      'sh',
      [
        nodeNsScript,
        'join',
        String(containerd.pid),
        procsFile,
        '--',
        kubeletBin,
        `--config=${kubeletConfig}`,
        `--kubeconfig=${kubeconfigPath}`,
        `--hostname-override=${nodeName}`,
        `--node-ip=${gateway}`,
        `--node-labels=${REAL_NODE_LABEL}=true`,
        '--v=2',
      ],
      path.join(logDir, 'kubelet.log'),
      env,
    );
    await waitFor(
      `Node ${nodeName} Ready`,
      async () => {
        const node = await admin.tryGet<NodeObject>('v1', 'Node', nodeName);
        return node && isReady(node) ? true : undefined;
      },
      { timeoutMs: options.readyTimeoutMs ?? 60_000, intervalMs: 50, abortIf: abortIfExited },
    );
    const readyMs = Date.now() - kubeletStartedAt;
    log(`real-node: ${nodeName} Ready in ${readyMs} ms (bridge ${record.bridge} ${subnet}, logs in ${logDir})`);

    const running = { containerd, kubelet };
    let stopping: Promise<void> | undefined;
    const stop = (stopOptions: { keepLogs?: boolean } = {}): Promise<void> =>
      (stopping ??= (async () => {
        const problems: string[] = [];
        // The kubelet first, so nothing restarts what is killed next; containerd's shims and the containers are
        // not in its process group: the cgroup sweep below gets them.
        for (const c of [running.kubelet, running.containerd]) {
          await stopComponent(c, stopGraceMs).catch((error: unknown) => problems.push(String(error)));
        }
        problems.push(...teardown(record, stopOptions.keepLogs ?? false));
        liveRecords.delete(record);
        try {
          // The Lease is the Node's (owner reference) and would go with it; deleting it too spares waiting for GC.
          await admin.delete('v1', 'Node', nodeName, undefined, { ignoreNotFound: true });
          await admin.delete('coordination.k8s.io/v1', 'Lease', nodeName, 'kube-node-lease', { ignoreNotFound: true });
        } catch (error) {
          problems.push(`deleting Node ${nodeName}: ${String(error)}`);
        } finally {
          admin.close();
        }
        if (problems.length > 0) throw new Error(`real-node: stop left problems:\n${problems.join('\n')}`);
      })());

    const pids = { containerd: containerd.pid, kubelet: kubelet.pid };
    return {
      nodeName,
      bridge: record.bridge,
      subnet,
      gateway,
      dir,
      logDir,
      kubeletRootDir: path.join(dir, 'ns', 'var-lib', 'kubelet'),
      nodeRoot: `/proc/${containerd.pid}/root`,
      sandboxImage: pause.image,
      readyMs,
      pids,
      importImage: (archive, name) => importOciArchive(ctr, archive, name),
      ctr: (args, ctrOptions) => ctr(args, ctrOptions),
      podLeftovers: async () => {
        const kubeletRoot = path.join(dir, 'ns', 'var-lib', 'kubelet');
        const ipamDir = path.join(dir, 'cni', 'ipam', CNI_NETWORK);
        const list = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d) : []);
        const ports = JSON.parse(
          execFileSync('ip', ['-json', 'link', 'show', 'master', record.bridge], { encoding: 'utf8' }),
        ) as { ifname: string }[];
        const found: Record<string, string[]> = {
          tasks: (await ctr(['tasks', 'ls', '--quiet'])).split('\n').filter((t) => t !== ''),
          'pod dirs': list(path.join(kubeletRoot, 'pods')),
          leases: list(ipamDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)),
          'bridge ports': ports.map((p) => p.ifname),
          'pod mounts': fs
            .readFileSync(`/proc/${pids.containerd}/mountinfo`, 'utf8')
            .split('\n')
            .filter((line) => line.includes('/var/lib/kubelet/pods/'))
            .map((line) => line.split(' ')[4] ?? line),
        };
        return Object.entries(found)
          .filter(([, items]) => items.length > 0)
          .map(([kind, items]) => `${kind}: ${items.join(' ')}`);
      },
      logTails,
      stop,
    };
  } catch (error) {
    const tails = logTails();
    for (const c of components()) await stopComponent(c, 2_000).catch(() => undefined);
    const problems = teardown(record, true);
    liveRecords.delete(record);
    await admin.delete('v1', 'Node', nodeName, undefined, { ignoreNotFound: true }).catch(() => undefined);
    admin.close();
    const reason = error instanceof Error ? error.message : String(error);
    const left = problems.length > 0 ? `\nteardown problems:\n${problems.join('\n')}` : '';
    throw new Error(`real-node: start failed at ${stage}: ${reason}\n${tails}${left}\nLogs are kept in ${logDir}`, {
      cause: error,
    });
  }
}

/** The e2e run's shared control plane (harness/shared.ts), as a node sees it. */
function sharedRealNodeControlPlane(): RealNodeControlPlane {
  const info = sharedControlPlaneInfo();
  return {
    server: info.server,
    caPem: info.caPem,
    caCertPath: info.caCertPath,
    caKeyPath: info.caKeyPath,
    client: sharedControlPlane,
  };
}

interface NodeObject extends KubeObject {
  status?: { conditions?: { type: string; status: string }[] };
}

function isReady(node: NodeObject): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function checkPrerequisites(kubeletBin: string): void {
  if (!fs.existsSync(kubeletBin)) {
    throw new Error(`real-node: ${kubeletBin} is missing; run npm run control-plane:build (it builds the kubelet too)`);
  }
  const missing: string[] = [];
  for (const command of [
    'containerd',
    'containerd-shim-runc-v2',
    'ctr',
    'runc',
    'unshare',
    'nsenter',
    'ip',
    'iptables',
  ]) {
    if (spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status !== 0) missing.push(command);
  }
  for (const plugin of ['bridge', 'host-local', 'loopback']) {
    if (!fs.existsSync(path.join(cniBinDir, plugin))) missing.push(`${cniBinDir}/${plugin}`);
  }
  if (missing.length > 0) {
    throw new Error(
      `real-node: missing ${missing.join(', ')} (tools/system-deps.sh installs containerd, runc, ` +
        'containernetworking-plugins, iptables, util-linux and iproute2)',
    );
  }
}

/** tools/real-node/build.sh: the pause image, built once into the cache. */
function buildPauseImage(): { archive: string; image: string } {
  const build = spawnSync('bash', [path.join(toolsDir, 'build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  });
  if (build.status !== 0) {
    throw new Error(`real-node: tools/real-node/build.sh failed (status ${String(build.status)}): ${build.stdout}`);
  }
  const outDir = build.stdout.trim().split('\n').pop() ?? '';
  return {
    archive: path.join(outDir, 'pause.oci.tar'),
    image: fs.readFileSync(path.join(outDir, 'image.txt'), 'utf8').trim(),
  };
}

/**
 * The first 10.250.N.0/24 that overlaps no route of the host (main table), so pod IPs are reachable through the
 * bridge alone and never shadow an existing network.
 */
function freeSubnet(): string {
  const out = execFileSync('ip', ['-json', '-4', 'route', 'show', 'table', 'all'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const routes = (JSON.parse(out) as { dst?: string }[])
    .map((r) => r.dst ?? '')
    .filter((dst) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst))
    .map((dst) => parseCidr(dst.includes('/') ? dst : `${dst}/32`));
  for (let n = 0; n < 256; n++) {
    const candidate = parseCidr(`10.250.${n}.0/24`);
    if (!routes.some((r) => overlaps(r, candidate))) return `10.250.${n}.0/24`;
  }
  throw new Error('real-node: no free /24 in 10.250.0.0/16; pass options.subnet');
}

function parseCidr(cidr: string): { base: number; bits: number } {
  const [addr = '', bits = '32'] = cidr.split('/');
  const base = addr.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return { base, bits: Number(bits) };
}

function overlaps(a: { base: number; bits: number }, b: { base: number; bits: number }): boolean {
  const bits = Math.min(a.bits, b.bits);
  const size = 2 ** (32 - bits);
  return Math.floor(a.base / size) === Math.floor(b.base / size);
}

/** How CRI names images: a bare name is Docker Hub's (`busybox:1` → `docker.io/library/busybox:1`). */
export function normalizeImageName(name: string): string {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let full = name;
  if (slash < 0) full = `docker.io/library/${name}`;
  else if (!first.includes('.') && !first.includes(':') && first !== 'localhost') full = `docker.io/${name}`;
  const lastPart = full.slice(full.lastIndexOf('/') + 1);
  return lastPart.includes(':') || lastPart.includes('@') ? full : `${full}:latest`;
}

/**
 * `ctr images import --base-name <repository>`: the archive's tag (its index's ref.name) is appended to the
 * repository. When that does not give `name`, the image is tagged `name` and the import's own name removed. The
 * archive is streamed on stdin, so its path need not exist in the node's mount namespace.
 */
async function importOciArchive(
  ctr: (args: string[], options?: { timeoutMs?: number; stdinFile?: string }) => Promise<string>,
  archive: string,
  name: string,
): Promise<string> {
  const wanted = normalizeImageName(name);
  const repository = wanted.slice(0, wanted.lastIndexOf(':'));
  const out = await ctr(['images', 'import', '--base-name', repository, '-'], { stdinFile: archive });
  const imported = [...out.matchAll(/^unpacking (\S+) \(/gm)].map((m) => m[1] ?? '');
  if (!imported.includes(wanted)) {
    if (imported.length !== 1 || !imported[0]) {
      throw new Error(`real-node: importing ${archive} gave ${JSON.stringify(imported)}, not one image:\n${out}`);
    }
    await ctr(['images', 'tag', '--force', imported[0], wanted]);
    await ctr(['images', 'rm', imported[0]]);
  }
  const listed = (await ctr(['images', 'ls', '--quiet'])).split('\n');
  if (!listed.includes(wanted)) throw new Error(`real-node: ${wanted} is not in containerd after the import`);
  return wanted;
}

/** Runs a command without a shell; rejects with its stderr on a non-zero exit or after timeoutMs. */
function run(
  command: string,
  prefix: string[],
  args: string[],
  options: { timeoutMs: number; stdinFile?: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...prefix, ...args], {
      stdio: [options.stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (options.stdinFile && child.stdin) {
      const input = fs.createReadStream(options.stdinFile);
      input.on('error', (error) => child.stdin?.destroy(error));
      // EPIPE if the command exits before reading everything: its exit status tells why.
      child.stdin.on('error', () => undefined);
      input.pipe(child.stdin);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = Buffer.concat(stdout).toString('utf8');
      if (code === 0) return resolve(text);
      const why = signal ? `killed by ${signal} (timeout ${options.timeoutMs} ms?)` : `exit code ${String(code)}`;
      reject(new Error(`${args.join(' ')}: ${why}: ${Buffer.concat(stderr).toString('utf8').trim()}`));
    });
  });
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** A certificate signed by the cluster CA (openssl CLI, ECDSA P-256 as harness/pki.ts). */
function signCertificate(
  dir: string,
  name: string,
  subject: string,
  ca: { certPath: string; keyPath: string },
  usage: 'client' | 'serving',
  subjectAltNames: string[] = [],
): { certPath: string; keyPath: string } {
  const config = path.join(dir, `${name}.cnf`);
  fs.writeFileSync(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      '[ext]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      `extendedKeyUsage = ${usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      'authorityKeyIdentifier = keyid',
      ...(subjectAltNames.length > 0 ? [`subjectAltName = ${subjectAltNames.join(', ')}`] : []),
      '',
    ].join('\n'),
  );
  const keyPath = path.join(dir, `${name}.key`);
  const csrPath = path.join(dir, `${name}.csr`);
  const certPath = path.join(dir, `${name}.crt`);
  const openssl = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  };
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
  fs.chmodSync(keyPath, 0o600);
  openssl(['req', '-new', '-key', keyPath, '-subj', subject, '-config', config, '-out', csrPath]);
  // prettier-ignore
  openssl(['x509', '-req', '-in', csrPath, '-CA', ca.certPath, '-CAkey', ca.keyPath,
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '2',
    '-extfile', config, '-extensions', 'ext', '-out', certPath]);
  return { certPath, keyPath };
}

// ---------------------------------------------------------------------------------------------------------------
// Teardown: synchronous, so the exit handlers can run it too. Each step tolerates what an earlier, partial start or
// teardown left (or did not make) and reports what it could not undo.

/** Undoes everything `record` lists; returns what could not be undone (empty when the host is restored). */
function teardown(record: NodeRecord, keepLogs: boolean): string[] {
  const problems: string[] = [];
  const step = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  // Processes first: with none left in the node's mount namespace, it and every mount in it are gone, and with
  // them the pods' network namespaces (their pins were mounts there) and so the veths.
  step('killing the node cgroup processes', () => killCgroup(record.cgroup));
  step('removing the node cgroups', () => removeCgroups(record.cgroup));
  step('deleting the bridge', () => deleteBridge(record.bridge));
  step('restoring iptables', () => restoreIptables(record.iptables));
  step('restoring sysctls', () => restoreSysctls(record.sysctls));
  step('removing the temp dir', () => {
    fs.rmSync(record.dir, { recursive: true, force: true, maxRetries: 3 });
    if (!keepLogs) fs.rmSync(record.logDir, { recursive: true, force: true, maxRetries: 3 });
  });
  return problems;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Every cgroup dir of the node in every hierarchy, children before parents. */
function cgroupDirs(cgroup: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) if (entry.isDirectory()) walk(path.join(dir, entry.name));
    out.push(dir);
  };
  for (const hierarchy of cgroupHierarchies()) {
    const root = path.join(hierarchy, cgroup);
    if (fs.existsSync(root)) walk(root);
  }
  return out;
}

function cgroupPids(cgroup: string): number[] {
  const pids = new Set<number>();
  for (const dir of cgroupDirs(cgroup)) {
    try {
      for (const line of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        if (line !== '') pids.add(Number(line));
      }
    } catch {
      // Removed meanwhile.
    }
  }
  return [...pids];
}

/** SIGKILL to everything in the node's cgroups until none is left (a process may fork while being killed). */
function killCgroup(cgroup: string): void {
  for (let attempt = 0; attempt < 200; attempt++) {
    const pids = cgroupPids(cgroup);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    sleepSync(50);
  }
  throw new Error(`processes survive SIGKILL for 10 s: ${cgroupPids(cgroup).join(' ')}`);
}

function removeCgroups(cgroup: string): void {
  for (let attempt = 0; attempt < 100; attempt++) {
    const left: string[] = [];
    for (const dir of cgroupDirs(cgroup)) {
      try {
        fs.rmdirSync(dir);
      } catch (error) {
        // EBUSY while a killed process is still being torn down; retried.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') left.push(dir);
      }
    }
    if (left.length === 0) return;
    sleepSync(50);
  }
  throw new Error(`cgroups still busy after 5 s: ${cgroupDirs(cgroup).join(' ')}`);
}

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/**
 * Deletes the bridge and any veth still attached to it (a pod network namespace outlives its pin only while a
 * process holds it; deleting one end of a veth deletes both).
 */
function deleteBridge(bridge: string): void {
  if (!linkExists(bridge)) return;
  const ports = JSON.parse(
    execFileSync('ip', ['-json', 'link', 'show', 'master', bridge], { encoding: 'utf8', timeout: 10_000 }),
  ) as { ifname: string }[];
  for (const port of ports) {
    if (linkExists(port.ifname)) ip('link', 'del', port.ifname);
  }
  ip('link', 'del', bridge);
  // Veths of network namespaces freed just before are deleted by the kernel asynchronously: wait for them.
  for (let attempt = 0; attempt < 100; attempt++) {
    const left = JSON.parse(execFileSync('ip', ['-json', 'link', 'show'], { encoding: 'utf8', timeout: 10_000 })) as {
      ifname: string;
    }[];
    if (!left.some((l) => ports.some((p) => p.ifname === l.ifname))) return;
    sleepSync(50);
  }
}

/**
 * Removes what was added to iptables/ip6tables since `before`: new rules (`-D`) in chains that existed, then new
 * chains (flushed, then deleted). Policies are set back. Rules and chains that were there before are never touched.
 */
function restoreIptables(before: Record<string, string[]>): void {
  const now = iptablesRules();
  for (const [key, lines] of Object.entries(now)) {
    const [command = '', table = ''] = key.split(' ');
    const had = before[key] ?? [];
    if (lines.some((l) => l.startsWith('(error')) || had.some((l) => l.startsWith('(error'))) continue;
    const ipt = (args: string[]): void => {
      execFileSync(command, ['-w', '5', '-t', table, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    };
    const chainsBefore = new Set(had.filter((l) => l.startsWith('-N ')).map((l) => l.slice(3)));
    const newChains = lines.filter((l) => l.startsWith('-N ') && !chainsBefore.has(l.slice(3))).map((l) => l.slice(3));
    const remaining = new Map<string, number>();
    for (const l of had) remaining.set(l, (remaining.get(l) ?? 0) + 1);
    for (const line of lines) {
      const count = remaining.get(line) ?? 0;
      if (count > 0) {
        remaining.set(line, count - 1);
        continue;
      }
      const words = shellWords(line);
      if (words[0] === '-A' && !newChains.includes(words[1] ?? '')) ipt(['-D', ...words.slice(1)]);
      if (words[0] === '-P') {
        const old = had.find((l) => l.startsWith(`-P ${words[1] ?? ''} `));
        if (old) ipt(shellWords(old));
      }
    }
    for (const chain of newChains) ipt(['-F', chain]);
    for (const chain of newChains) ipt(['-X', chain]);
  }
}

/** Splits an `iptables -S` line into words (it double-quotes words with spaces, escaping `"` and `\`). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) word += line[++i] ?? '';
      else if (c === '"') quoted = false;
      else word += c;
    } else if (c === '"') {
      quoted = true;
      inWord = true;
    } else if (c === ' ') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function restoreSysctls(before: Record<string, string | null>): void {
  for (const [name, value] of Object.entries(before)) {
    if (value === null || readSysctl(name) === value) continue;
    fs.writeFileSync(sysctlPath(name), value);
  }
}

/** Undoes what real nodes of dead owners (a run killed outright) left, from their records. */
export function reapOrphanNodes(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith(dirPrefix));
  } catch {
    return;
  }
  for (const name of entries) {
    let record: NodeRecord;
    try {
      record = JSON.parse(fs.readFileSync(path.join(os.tmpdir(), name, recordFile), 'utf8')) as NodeRecord;
    } catch {
      continue; // No record: kept logs of a failed start, or a node being set up right now.
    }
    if (isAlive(record.ownerPid)) continue;
    const problems = teardown(record, false);
    if (problems.length > 0) process.stderr.write(`real-node: reaping ${record.dir}: ${problems.join('; ')}\n`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The Node process itself. Inside a Jest test file `process` is a per-file copy with its own event listeners
 * (jest-util's createProcessObject), which the real process's signals and exit never reach; code compiled in the main
 * context sees the real one. Outside Jest both are the same.
 */
function realProcess(): NodeJS.Process {
  return vm.runInThisContext('process') as NodeJS.Process;
}

/**
 * When stop() does not run (a test throws past it, Ctrl-C, process.exit), undo every live node synchronously on the
 * way out — as harness/processes.ts does for the control plane's processes, but on the real process (see
 * {@link realProcess}). A run killed outright is undone by the next start ({@link reapOrphanNodes}).
 */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  const process = realProcess();
  const undoAll = (): void => {
    for (const record of liveRecords) {
      const problems = teardown(record, false);
      if (problems.length > 0) process.stderr.write(`real-node: teardown on exit: ${problems.join('; ')}\n`);
    }
    liveRecords.clear();
  };
  process.on('exit', undoAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      undoAll();
      process.off(signal, onSignal);
      // Re-raise so the process ends as it would have, unless another handler (processes.ts, Jest) is still there.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
