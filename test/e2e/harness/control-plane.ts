// A real Kubernetes control plane for the e2e suite: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and KWOK (fake nodes that turn scheduled pods Running), all built from upstream Go
// modules by tools/control-plane/build.sh, all on loopback with free ports, in a fresh temp dir.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpGet } from './http-get';
import { KubeClient } from './kube-client';
import type { KubeObject } from './kube-client';
import { writeKubeconfig } from './kubeconfig';
import { frontProxyClientName, generatePki } from './pki';
import { freePorts } from './ports';
import {
  logTail,
  reapOrphans,
  registerDir,
  removeOwnerRecord,
  spawnComponent,
  stopComponent,
  unregisterDir,
  writeOwnerRecord,
} from './processes';
import type { ComponentProcess } from './processes';
import { waitFor } from './wait';

export interface ControlPlaneOptions {
  /** Directory holding the five binaries; default: $KUBEVISOR_CONTROL_PLANE_BIN, else build.sh's cache (building it if needed). */
  binDir?: string;
  /** KWOK fake nodes to create and wait Ready for (default 2). */
  nodes?: number;
  /** Bound on the whole start, from spawning etcd to the last readiness check (default 180 s). */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL, per component (default 10 s). */
  stopGraceMs?: number;
  /** Progress lines; default writes to stderr. */
  log?: (line: string) => void;
  /** kube-scheduler's API client rate (QPS; burst is twice that). Default: the scheduler's own (50). */
  schedulerQps?: number;
}

/** A running control plane. */
export interface ControlPlane {
  /** Admin (system:masters) kubeconfig with embedded certificates. */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  caPem: string;
  /** The cluster CA's certificate and key files (in `dir`): a real kubelet's certificates are signed with them. */
  caCertPath: string;
  caKeyPath: string;
  clientCertPem: string;
  clientKeyPem: string;
  /** Temp dir holding certificates, kubeconfigs, etcd data and every component's `<name>.log`. */
  dir: string;
  /**
   * The API server's audit log (JSON lines, in `dir`): every request a ServiceAccount outside kube-system makes, at
   * level Metadata (see {@link auditPolicy}). The RBAC suite derives what the operator's identities needed from it.
   */
  auditLogPath: string;
  nodeNames: string[];
  /** Every port a component listens on, by name. */
  ports: Record<PortName, number>;
  /** Every process started, by component name. */
  pids: Record<ComponentName, number>;
  /** Milliseconds from startControlPlane() to ready (after the binaries were found or built). */
  startMs: number;
  /** An admin client for this control plane. */
  client(): KubeClient;
  /** Stops every component (SIGTERM, then SIGKILL), waits for exit, removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

type PortName = 'etcdClient' | 'etcdPeer' | 'apiserver' | 'controllerManager' | 'scheduler' | 'kwok';
type ComponentName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';

const portNames: readonly PortName[] = [
  'etcdClient',
  'etcdPeer',
  'apiserver',
  'controllerManager',
  'scheduler',
  'kwok',
];
const binaries: readonly ComponentName[] = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
];

/** Service ClusterIP range, and the apiserver's in-cluster address (first IP of the range). */
const serviceClusterIpRange = '10.96.0.0/16';
const kubernetesServiceIp = '10.96.0.1';
/** Pod IPs KWOK hands out; must not overlap the service range. */
const podCidr = '10.244.0.0/16';
/** The annotation that puts a node under KWOK's management (KWOK's documented convention). */
export const kwokNodeAnnotation = 'kwok.x-k8s.io/node';

const dirPrefix = 'kubevisor-cp-';

/**
 * What the API server audits: requests by ServiceAccounts (the operator's processes run as ServiceAccounts), at level
 * Metadata (who, verb, resource, namespace, name, response code — no bodies, so no Secret data lands in the log).
 * kube-system's ServiceAccounts are the controller-manager's own controllers (`--use-service-account-credentials`):
 * the busiest clients of the run and of no interest here, so they are left out first. Everything else (admin, the
 * components' certificate users, anonymous) is not audited. RequestReceived is omitted: each request is still logged
 * once it is answered (a watch once its response starts), with the code.
 */
export const auditPolicy = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    { level: 'None', userGroups: ['system:serviceaccounts:kube-system'] },
    { level: 'Metadata', userGroups: ['system:serviceaccounts'] },
    { level: 'None' },
  ],
};

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const buildScript = path.join(repoRoot, 'tools', 'control-plane', 'build.sh');

/**
 * The directory of the control-plane binaries. Runs build.sh, which returns at once when its cache
 * is warm and otherwise builds (tens of minutes on 2 cores), streaming its progress to stderr.
 */
export function controlPlaneBinDir(): string {
  const fromEnv = process.env.KUBEVISOR_CONTROL_PLANE_BIN;
  if (fromEnv) return fromEnv;
  const build = spawnSync('bash', [buildScript], { stdio: ['ignore', 2, 2], timeout: 4 * 3600_000 });
  if (build.status !== 0) {
    throw new Error(`control-plane: ${buildScript} failed (status ${build.status}, ${build.error?.message ?? ''})`);
  }
  return execFileSync('bash', [buildScript, '--print-bin-dir'], { encoding: 'utf8', timeout: 60_000 }).trim();
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binDir = options.binDir ?? controlPlaneBinDir();
  // Timed from here: a cold build inside controlPlaneBinDir() reports its own duration.
  const startedAt = Date.now();
  const nodeCount = options.nodes ?? 2;
  const deadline = startedAt + (options.startTimeoutMs ?? 180_000);
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const kwokStages = path.join(binDir, '..', 'kwok-stages.yaml');
  for (const file of [...binaries.map((b) => path.join(binDir, b)), kwokStages]) {
    if (!fs.existsSync(file)) throw new Error(`control-plane: ${file} is missing; run npm run control-plane:build`);
  }

  // A test run killed outright (SIGKILL, OOM) runs no exit handler; clean up after it here.
  reapOrphans(os.tmpdir(), dirPrefix, binaries);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  registerDir(dir);
  const components = new Map<ComponentName, ComponentProcess>();
  let stopping: Promise<void> | undefined;
  const stopProcesses = async (): Promise<void> => {
    const stopOne = async (name: ComponentName): Promise<void> => {
      const component = components.get(name);
      if (component) await stopComponent(component, stopGraceMs);
    };
    // Clients first (in parallel), then the API server, then its storage.
    const results = await Promise.allSettled([
      stopOne('kwok'),
      stopOne('kube-scheduler'),
      stopOne('kube-controller-manager'),
    ]);
    results.push(...(await Promise.allSettled([stopOne('kube-apiserver')])));
    results.push(...(await Promise.allSettled([stopOne('etcd')])));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) throw new Error(failures.map((f) => String(f.reason)).join('\n'));
  };
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        await stopProcesses();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
        unregisterDir(dir);
      }
    })());

  // The step being waited for, so a failure names the component whose log explains it.
  let current: ComponentName = 'etcd';
  // Closed in `finally`, whether the start succeeds or not (its keep-alive sockets would linger).
  let adminToClose: KubeClient | undefined;
  try {
    const ports = await freePorts(portNames);
    const server = `https://127.0.0.1:${ports.apiserver}`;
    const pki = generatePki(path.join(dir, 'pki'), kubernetesServiceIp);
    const kubeconfig = (name: string, cert: { certPem: string; keyPem: string }, user: string): string => {
      const file = path.join(dir, `${name}.kubeconfig`);
      writeKubeconfig(file, {
        server,
        caPem: pki.ca.certPem,
        clientCertPem: cert.certPem,
        clientKeyPem: cert.keyPem,
        user,
      });
      return file;
    };
    const kubeconfigPath = kubeconfig('admin', pki.admin, 'admin');
    const controllerManagerKubeconfig = kubeconfig('controller-manager', pki.controllerManager, 'controller-manager');
    const schedulerKubeconfig = kubeconfig('scheduler', pki.scheduler, 'scheduler');
    const admin = new KubeClient({
      server,
      caPem: pki.ca.certPem,
      clientCertPem: pki.admin.certPem,
      clientKeyPem: pki.admin.keyPem,
    });
    adminToClose = admin;

    // A clean, minimal environment: no ETCD_* / KUBECONFIG / ~/.kwok from the caller leaks in.
    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
    const start = (name: ComponentName, args: string[]): void => {
      components.set(name, spawnComponent(name, path.join(binDir, name), args, path.join(dir, `${name}.log`), env));
      writeOwnerRecord(
        dir,
        [...components.values()].map((c) => c.pid),
      );
    };
    const abortIfAnyExited = (): void => {
      for (const component of components.values()) {
        if (component.exit !== undefined) {
          current = component.name as ComponentName;
          const how = component.exit.signal ?? `code ${component.exit.code}`;
          throw new Error(`${component.name} exited (${how})`);
        }
      }
    };
    const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
      waitFor(what, probe, {
        timeoutMs: Math.max(deadline - Date.now(), 1),
        intervalMs: 100,
        abortIf: abortIfAnyExited,
      });

    current = 'etcd';
    const etcdPeer = `http://127.0.0.1:${ports.etcdPeer}`;
    const etcdClient = `http://127.0.0.1:${ports.etcdClient}`;
    start('etcd', etcdArgs({ dataDir: path.join(dir, 'etcd'), clientUrl: etcdClient, peerUrl: etcdPeer }));
    await until('etcd /health', async () => {
      const { status, body } = await httpGet(`${etcdClient}/health`);
      return status === 200 && body.includes('"health":"true"') ? true : undefined;
    });

    current = 'kube-apiserver';
    const auditPolicyPath = path.join(dir, 'audit-policy.json');
    // JSON is YAML: the API server reads the policy file as either.
    fs.writeFileSync(auditPolicyPath, JSON.stringify(auditPolicy, null, 2) + '\n');
    const auditLogPath = path.join(dir, 'audit.log');
    start('kube-apiserver', [
      `--etcd-servers=${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${ports.apiserver}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.apiserver.certPath}`,
      `--tls-private-key-file=${pki.apiserver.keyPath}`,
      `--client-ca-file=${pki.ca.certPath}`,
      `--requestheader-client-ca-file=${pki.frontProxyCa.certPath}`,
      `--requestheader-allowed-names=${frontProxyClientName}`,
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki.frontProxyClient.certPath}`,
      `--proxy-client-key-file=${pki.frontProxyClient.keyPath}`,
      '--authorization-mode=Node,RBAC',
      // How the API server reaches a real kubelet (harness/real-node.ts) for logs, exec and port-forward: with this
      // client certificate, at the node's InternalIP. The default prefers the Hostname address, the node name, which
      // no resolver here knows. KWOK nodes serve no kubelet API, so neither changes anything for them.
      `--kubelet-client-certificate=${pki.kubeletClient.certPath}`,
      `--kubelet-client-key=${pki.kubeletClient.keyPath}`,
      '--kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP',
      // Admission plugins: the defaults (no --enable-admission-plugins), as a real cluster runs.
      '--allow-privileged=true',
      `--service-cluster-ip-range=${serviceClusterIpRange}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPublicKeyPath}`,
      `--service-account-signing-key-file=${pki.serviceAccountKeyPath}`,
      // A loopback advertise address is not a valid Endpoints address, so the `kubernetes`
      // Service's endpoints are not reconciled; nothing in-cluster needs them (no real pods).
      '--endpoint-reconciler-type=none',
      `--audit-policy-file=${auditPolicyPath}`,
      `--audit-log-path=${auditLogPath}`,
      '--audit-log-format=json',
      // Each event is written before its request is answered, so a test that reads the log sees every call that
      // completed before it (batching would hold events back for up to a batch interval).
      '--audit-log-mode=blocking',
      // One file for the whole run (0 would mean the default, 100 MB); a reader still takes rotated files into account.
      '--audit-log-maxsize=1024',
    ]);
    await until('kube-apiserver /readyz', async () => {
      const body = await admin.request<string>('GET', '/readyz', { timeoutMs: 5_000 });
      return body === 'ok' ? true : undefined;
    });

    current = 'kube-controller-manager';
    start('kube-controller-manager', [
      `--kubeconfig=${controllerManagerKubeconfig}`,
      `--authentication-kubeconfig=${controllerManagerKubeconfig}`,
      `--authorization-kubeconfig=${controllerManagerKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.controllerManager}`,
      `--cert-dir=${path.join(dir, 'controller-manager-certs')}`,
      '--controllers=*',
      // Each controller acts as its own service account, so RBAC applies to controllers as in a real cluster.
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.serviceAccountKeyPath}`,
      `--root-ca-file=${pki.ca.certPath}`,
      `--cluster-signing-cert-file=${pki.ca.certPath}`,
      `--cluster-signing-key-file=${pki.ca.keyPath}`,
      '--cluster-name=kubevisor-e2e',
      // One instance: leader election would only add a Lease round trip to startup.
      '--leader-elect=false',
    ]);
    start('kube-scheduler', [
      `--kubeconfig=${schedulerKubeconfig}`,
      `--authentication-kubeconfig=${schedulerKubeconfig}`,
      `--authorization-kubeconfig=${schedulerKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.scheduler}`,
      '--leader-elect=false',
      ...(options.schedulerQps
        ? [`--kube-api-qps=${options.schedulerQps}`, `--kube-api-burst=${2 * options.schedulerQps}`]
        : []),
    ]);
    start(
      'kwok',
      kwokArgs({ kubeconfigPath, stagesPath: kwokStages, port: ports.kwok, podCidr, nodeIp: '10.240.0.1' }),
    );
    await until('kube-controller-manager /healthz', () =>
      healthz(`https://127.0.0.1:${ports.controllerManager}/healthz`),
    );
    current = 'kube-scheduler';
    await until('kube-scheduler /healthz', () => healthz(`https://127.0.0.1:${ports.scheduler}/healthz`));
    current = 'kwok';
    await until('kwok /healthz', () => healthz(`http://127.0.0.1:${ports.kwok}/healthz`));

    const nodeNames = Array.from({ length: nodeCount }, (_, i) => `kwok-node-${i}`);
    for (const name of nodeNames) await admin.create(kwokNode(name));
    await until(`${nodeCount} KWOK nodes Ready`, async () => {
      const nodes = await admin.list<NodeObject>('v1', 'Node');
      const ready = nodes.filter((n) => nodeNames.includes(n.metadata.name ?? '') && isNodeReady(n));
      return ready.length === nodeCount ? true : undefined;
    });

    current = 'kube-controller-manager';
    await until('namespace default and its default ServiceAccount', async () => {
      const namespace = await admin.tryGet('v1', 'Namespace', 'default');
      const account = await admin.tryGet('v1', 'ServiceAccount', 'default', 'default');
      return namespace && account ? true : undefined;
    });
    const startMs = Date.now() - startedAt;
    log(`control-plane: ready in ${startMs} ms (${nodeCount} KWOK nodes, logs in ${dir})`);
    const pids = Object.fromEntries([...components].map(([name, c]) => [name, c.pid])) as Record<ComponentName, number>;
    return {
      kubeconfigPath,
      server,
      caPem: pki.ca.certPem,
      caCertPath: pki.ca.certPath,
      caKeyPath: pki.ca.keyPath,
      clientCertPem: pki.admin.certPem,
      clientKeyPem: pki.admin.keyPem,
      dir,
      auditLogPath,
      nodeNames,
      ports,
      pids,
      startMs,
      client: () =>
        new KubeClient({
          server,
          caPem: pki.ca.certPem,
          clientCertPem: pki.admin.certPem,
          clientKeyPem: pki.admin.keyPem,
        }),
      stop,
    };
  } catch (error) {
    // Stop everything, but keep the dir: its logs are what explains the failure.
    unregisterDir(dir);
    removeOwnerRecord(dir);
    await stopProcesses().catch(() => undefined);
    const failed = components.get(current);
    const reason = error instanceof Error ? error.message : String(error);
    const tail = failed ? `\n--- last lines of ${failed.logPath} ---\n${logTail(failed.logPath)}\n---` : '';
    throw new Error(`control-plane: start failed at ${current}: ${reason}${tail}\nAll logs are kept in ${dir}`, {
      cause: error,
    });
  } finally {
    adminToClose?.close();
  }
}

/** etcd's flags for a one-member throwaway cluster; with `tls`, clients must present a certificate `tls.caPath` signed. */
export function etcdArgs(options: {
  dataDir: string;
  clientUrl: string;
  peerUrl: string;
  tls?: { certPath: string; keyPath: string; caPath: string };
}): string[] {
  const { dataDir, clientUrl, peerUrl, tls } = options;
  return [
    '--name=e2e',
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=e2e=${peerUrl}`,
    ...(tls
      ? [
          `--cert-file=${tls.certPath}`,
          `--key-file=${tls.keyPath}`,
          `--trusted-ca-file=${tls.caPath}`,
          '--client-cert-auth',
        ]
      : []),
    // Throwaway data: skipping fsync makes every write (and so the whole suite) much faster.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

/** KWOK's flags: it manages the nodes annotated `kwok.x-k8s.io/node: fake` and the pods bound to them. */
export function kwokArgs(options: {
  kubeconfigPath: string;
  stagesPath: string;
  /** Its health server, on 127.0.0.1. */
  port: number;
  podCidr: string;
  nodeIp: string;
}): string[] {
  return [
    `--kubeconfig=${options.kubeconfigPath}`,
    `--config=${options.stagesPath}`,
    `--manage-nodes-with-annotation-selector=${kwokNodeAnnotation}=fake`,
    `--server-address=127.0.0.1:${options.port}`,
    `--cidr=${options.podCidr}`,
    `--node-ip=${options.nodeIp}`,
    '--node-lease-duration-seconds=40',
  ];
}

export interface NodeObject extends KubeObject {
  status?: { conditions?: { type: string; status: string }[] };
}

export function isNodeReady(node: NodeObject): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** A node KWOK manages: KWOK's node-initialize stage fills in conditions, addresses and endpoints. */
export function kwokNode(name: string): KubeObject {
  // The device resources are what kubevisor's node daemon advertises through its device plugins; VM pods request
  // them, so fake nodes must offer them too or nothing would schedule.
  const resources = {
    cpu: '32',
    memory: '256Gi',
    pods: '110',
    'devices.kubevisor.io/kvm': '1000',
    'devices.kubevisor.io/tun': '1000',
    // VM pods request ephemeral storage for their disks.
    'ephemeral-storage': '10Ti',
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [kwokNodeAnnotation]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
        // What kubevisor's node setup puts on nodes prepared for VMs; every VM pod selects it.
        'kubevisor.io/kvm': 'true',
      },
    },
    spec: {},
    status: {
      allocatable: resources,
      capacity: resources,
      nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', kubeletVersion: 'fake' },
    },
  };
}

/** true when a component's health endpoint answers 200 `ok`; undefined (not yet) otherwise, for {@link waitFor}. */
export async function healthz(url: string): Promise<true | undefined> {
  const { status, body } = await httpGet(url);
  return status === 200 && body.trim() === 'ok' ? true : undefined;
}
