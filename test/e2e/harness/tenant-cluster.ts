// The tenant ("workload") cluster of a nested-cluster e2e test, played: the guests cannot run kubeadm here, so this
// harness leaves in a real API server what `kubeadm init` / `kubeadm join` would have left, and Cluster API's own
// controllers (harness/cluster-api.ts) then read and act on it as on any workload cluster.
//
// Real: etcd (the cluster's EXTERNAL etcd, TLS with client certificates), kube-apiserver serving at the Cluster's
// controlPlaneEndpoint with a serving certificate signed by the cluster CA that Cluster API's kubeadm control plane
// (KCP) generated (Secret `<cluster>-ca`), `--client-ca-file` = that CA (so the `<cluster>-kubeconfig` KCP writes
// authenticates), service-account keys from KCP's `<cluster>-sa`, RBAC authorization, and KWOK, which turns the
// played Nodes Ready (and renews their Leases) and the pods bound to them Running and Ready. All from the e2e
// control-plane cache (tools/control-plane/build.sh). The external etcd's CA (`<cluster>-etcd`, certificate only) and
// the API server's etcd client certificate (`<cluster>-apiserver-etcd-client`) are put into the management cluster
// by prepare, as a user of external etcd must: KCP and the kubeadm bootstrap provider refuse to go on without them.
//
// Played (joinNode): the Node kubelet would register (spec.providerID, kubeadm's labels and taints, kubeletVersion),
// the control-plane components' mirror pods kubelet would create for kubeadm's static pods
// (kube-system/kube-apiserver-<node>, kube-controller-manager-<node>, kube-scheduler-<node>; no etcd pod: etcd is
// external), and on the first control-plane node the `kube-system/kubeadm-config` ConfigMap `kubeadm init` uploads
// (key ClusterConfiguration, kubeadm.k8s.io/v1beta4). No controller-manager, scheduler, kube-proxy or CoreDNS runs in
// the tenant cluster; the mirror pods are pods KWOK runs, not processes.
//
// What Cluster API v1.14.2 reads or writes in the workload cluster (from the module source):
// - ClusterCache (all managers): GET / as health probe every 10 s (5 failures or a 401 disconnect); it connects once
//   the Cluster's infrastructure is provisioned and `<cluster>-kubeconfig` exists, and retries a failed connect only
//   every 30 s.
// - Machine controller (core): watches Nodes; finds the Node whose spec.providerID equals the Machine's (that sets
//   status.nodeRef, and the Machine reaches phase Running); patches the Node's labels/annotations and removes the
//   taint node.cluster.x-k8s.io/uninitialized; on deletion drains the Node (evicts pods that are not mirror or
//   DaemonSet pods), waits for volumes (Node status, VolumeAttachments), then deletes the Node.
// - Kubeadm bootstrap provider: for every joining Machine creates and refreshes a bootstrap token Secret
//   (kube-system/bootstrap-token-<id>).
// - KCP: Nodes labelled node-role.kubernetes.io/control-plane (and the Node of each Machine by name; the Node should
//   carry that label and the node-role.kubernetes.io/control-plane:NoSchedule taint, else the Machine's
//   NodeKubeadmLabelsAndTaintsSet condition is False); Pods kube-system/{kube-apiserver,kube-controller-manager,
//   kube-scheduler}-<node> (Running and Ready ⇒ the Machine's *PodHealthy conditions are True, which the preflight
//   checks of every scale-up/scale-down of a rollout require; etcd-<node> only with managed etcd); ConfigMap
//   kube-system/kubeadm-config (its existence marks the control plane initialized; on a rollout KCP rewrites
//   ClusterConfiguration, kubernetesVersion included); ClusterRoleBindings kubeadm:cluster-admins and the kubelet API
//   admin binding (created on a rollout, before 1.38); ConfigMap+Deployment kube-system/coredns and DaemonSet
//   kube-system/kube-proxy (skipped without error when absent); and, once per Machine, the API server's certificate
//   expiry through a port-forward to pod kube-apiserver-<node> (pods/portforward). That last one cannot work here (no
//   kubelet serves port-forward for a KWOK node): KCP logs the error at the end of each reconcile and retries; it
//   blocks nothing (it runs last, after scaling and rollout), but the KubeadmConfig never gets the
//   machine.cluster.x-k8s.io/certificates-expiry annotation.
// - With external etcd KCP never contacts etcd (no member list, no leadership moves); it only needs the two Secrets
//   above to build its workload-cluster client.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { controlPlaneBinDir, etcdArgs, healthz, isNodeReady, kwokArgs, kwokNodeAnnotation } from './control-plane';
import type { NodeObject } from './control-plane';
import { httpGet } from './http-get';
import { KubeClient } from './kube-client';
import type { KubeObject } from './kube-client';
import { writeKubeconfig } from './kubeconfig';
import { createCertificateAuthority, issueCertificate } from './pki';
import type { CertFiles } from './pki';
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

export interface TenantClusterOptions {
  /** Admin client of the management cluster (where the Cluster, its KCP and its Secrets live). */
  client: KubeClient;
  namespace: string;
  clusterName: string;
  /** The Cluster's spec.controlPlaneEndpoint: a loopback address (127.x.y.z) and a port (e.g. 6443) that are free. */
  endpointHost: string;
  endpointPort: number;
  /** Directory of etcd, kube-apiserver and kwok; default: the e2e control-plane cache. */
  binDir?: string;
  /** Progress lines; default writes to stderr. */
  log?: (line: string) => void;
  /** How long stop() waits after SIGTERM before SIGKILL, per component (default 10 s). */
  stopGraceMs?: number;
}

export interface JoinNodeOptions {
  name: string;
  /** Must equal the InfraMachine's (and so the Machine's) spec.providerID. */
  providerID: string;
  controlPlane: boolean;
  /** The Machine's spec.version (the Node's kubeletVersion, the images of its mirror pods). */
  kubernetesVersion: string;
  /**
   * The bootstrap data the Machine got (its KubeadmConfig's Secret, key `value`: cloud-init). When given for the first
   * control-plane node, the ClusterConfiguration uploaded to kubeadm-config is the one Cluster API rendered into
   * /run/kubeadm/kubeadm.yaml, as `kubeadm init` would upload it; otherwise an equivalent one is built.
   */
  bootstrapData?: string;
  /** Bound on waiting for the Node Ready and its pods Running (default 60 s). */
  timeoutMs?: number;
}

/** clusterConfiguration.etcd.external of the KubeadmControlPlane: the tenant's real etcd, as guests would see it. */
export interface ExternalEtcd {
  endpoints: string[];
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface TenantCluster {
  /** Temp dir: certificates, etcd data, kubeconfig, every component's `<name>.log`. Removed by stop(). */
  dir: string;
  /** `https://<endpointHost>:<endpointPort>` */
  server: string;
  externalEtcd: ExternalEtcd;
  /** Admin (system:masters) kubeconfig of the tenant API server; set once start() resolved. */
  kubeconfigPath: string | undefined;
  /**
   * Waits (bounded) for KCP's `<cluster>-ca` and `<cluster>-sa`, then starts kube-apiserver at the endpoint and KWOK,
   * and waits until both are healthy. Idempotent.
   */
  start(options?: { caTimeoutMs?: number; startTimeoutMs?: number }): Promise<void>;
  /** An admin client of the tenant API server (after start()). Close it when done. */
  client(): KubeClient;
  /** What kubeadm init/join leaves: the Node (Ready), the mirror pods (Running), kubeadm-config on the first. */
  joinNode(options: JoinNodeOptions): Promise<void>;
  /** Removes a Node and its pods, as a node that is gone for good (Cluster API may have deleted the Node already). */
  removeNode(name: string): Promise<void>;
  logTail(component: TenantComponent, lines?: number): string;
  /** Stops every process, deletes the two etcd Secrets from the management cluster, removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

export type TenantComponent = 'etcd' | 'kube-apiserver' | 'kwok';
const components: readonly TenantComponent[] = ['etcd', 'kube-apiserver', 'kwok'];

const dirPrefix = 'kubevisor-tenant-';
/** Where kubeadm puts the external etcd files on a node (what the KCP spec names). */
const externalEtcdFiles = {
  caFile: '/etc/kubernetes/pki/etcd/ca.crt',
  certFile: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
  keyFile: '/etc/kubernetes/pki/apiserver-etcd-client.key',
};
/** kubeadm's defaults, so the tenant looks like a cluster kubeadm made. */
const serviceSubnet = '10.96.0.0/12';
const kubernetesServiceIp = '10.96.0.1';
const podCidr = '10.245.0.0/16';
const controlPlaneComponents = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'] as const;

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

interface PodObject extends KubeObject {
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

/**
 * Phase one of a played tenant cluster, before the Cluster and KubeadmControlPlane are created: makes the external
 * etcd's PKI, puts `<cluster>-etcd` and `<cluster>-apiserver-etcd-client` into the management namespace, starts etcd.
 * Put `externalEtcd` into the KCP's clusterConfiguration.etcd.external, create the Cluster API objects, then call
 * start(), which waits for the CA KCP generates.
 */
export async function prepareTenantCluster(options: TenantClusterOptions): Promise<TenantCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { client: management, namespace, clusterName, endpointHost, endpointPort } = options;
  const binDir = options.binDir ?? controlPlaneBinDir();
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const kwokStages = path.join(binDir, '..', 'kwok-stages.yaml');
  for (const file of [...components.map((c) => path.join(binDir, c)), kwokStages]) {
    if (!fs.existsSync(file)) throw new Error(`tenant-cluster: ${file} is missing; run npm run control-plane:build`);
  }
  reapOrphans(os.tmpdir(), dirPrefix, components);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  registerDir(dir);
  const server = `https://${endpointHost}:${endpointPort}`;
  const processes = new Map<TenantComponent, ComponentProcess>();
  const secretNames = [`${clusterName}-etcd`, `${clusterName}-apiserver-etcd-client`];
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  // A clean environment: no ETCD_* / KUBECONFIG of the caller leaks in.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
  const spawn = (name: TenantComponent, args: string[]): ComponentProcess => {
    const component = spawnComponent(name, path.join(binDir, name), args, path.join(dir, `${name}.log`), env);
    processes.set(name, component);
    writeOwnerRecord(
      dir,
      [...processes.values()].map((c) => c.pid),
    );
    return component;
  };
  const stopProcesses = async (): Promise<void> => {
    const stopOne = async (name: TenantComponent): Promise<void> => {
      const component = processes.get(name);
      if (component) await stopComponent(component, stopGraceMs);
    };
    // Clients first, then the API server, then its storage.
    const results = await Promise.allSettled([stopOne('kwok')]);
    results.push(...(await Promise.allSettled([stopOne('kube-apiserver')])));
    results.push(...(await Promise.allSettled([stopOne('etcd')])));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) throw new Error(failures.map((f) => String(f.reason)).join('\n'));
  };
  const deleteSecrets = async (): Promise<void> => {
    for (const name of secretNames) {
      await management.delete('v1', 'Secret', name, namespace, { ignoreNotFound: true });
    }
  };
  const failWith = (component: TenantComponent | undefined, error: unknown): Error => {
    const failed = component ? processes.get(component) : undefined;
    const reason = error instanceof Error ? error.message : String(error);
    const tail = failed ? `\n--- last lines of ${failed.logPath} ---\n${logTail(failed.logPath)}\n---` : '';
    return new Error(
      `tenant-cluster ${namespace}/${clusterName}: ${component ? `${component} ` : ''}failed: ${reason}${tail}\nAll logs are kept in ${dir}`,
      { cause: error },
    );
  };
  const abortIfAnyExited = (): void => {
    for (const component of processes.values()) {
      if (component.exit !== undefined) {
        throw new Error(`${component.name} exited (${component.exit.signal ?? `code ${component.exit.code}`})`);
      }
    }
  };

  const pkiDir = path.join(dir, 'pki');
  let etcdCa: CertFiles;
  let etcdClient: CertFiles;
  let etcdUrl: string;
  try {
    const ports = await freePorts(['etcdClient', 'etcdPeer']);
    etcdUrl = `https://127.0.0.1:${ports.etcdClient}`;
    etcdCa = createCertificateAuthority(pkiDir, 'etcd-ca', `${clusterName}-etcd-ca`);
    const etcdServing = issueCertificate(pkiDir, 'etcd-server', etcdCa, {
      commonName: `${clusterName}-etcd`,
      usage: 'serving+client',
      altNames: ['IP:127.0.0.1', 'DNS:localhost'],
    });
    // kubeadm's name for it; etcd authorizes by certificate alone (no etcd auth enabled), as kubeadm sets it up.
    etcdClient = issueCertificate(pkiDir, 'apiserver-etcd-client', etcdCa, {
      commonName: 'kube-apiserver-etcd-client',
      usage: 'client',
    });
    const labels = { 'cluster.x-k8s.io/cluster-name': clusterName };
    const b64 = (pem: string): string => Buffer.from(pem).toString('base64');
    // Only the certificate of the etcd CA: with no key, KCP knows etcd is not its to manage and talks to it (it does
    // not, with external etcd) with the API server's client certificate.
    await management.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretNames[0], namespace, labels },
      type: 'cluster.x-k8s.io/secret',
      data: { 'tls.crt': b64(etcdCa.certPem) },
    });
    await management.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretNames[1], namespace, labels },
      type: 'cluster.x-k8s.io/secret',
      data: { 'tls.crt': b64(etcdClient.certPem), 'tls.key': b64(etcdClient.keyPem) },
    });
    spawn(
      'etcd',
      etcdArgs({
        dataDir: path.join(dir, 'etcd'),
        clientUrl: etcdUrl,
        peerUrl: `http://127.0.0.1:${ports.etcdPeer}`,
        tls: { certPath: etcdServing.certPath, keyPath: etcdServing.keyPath, caPath: etcdCa.certPath },
      }),
    );
    // etcd's /health over TLS wants a client certificate; reaching the port and a TLS answer is enough here, the API
    // server's own readiness (etcd check included) follows in start().
    await waitFor(
      'etcd listening',
      async () => {
        const outcome = await httpGet(`${etcdUrl}/health`, 2_000).then(
          () => true,
          (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' ? undefined : true),
        );
        return outcome;
      },
      { timeoutMs: 30_000, intervalMs: 100, abortIf: abortIfAnyExited },
    );
  } catch (error) {
    unregisterDir(dir);
    removeOwnerRecord(dir);
    await stopProcesses().catch(() => undefined);
    await deleteSecrets().catch(() => undefined);
    throw failWith('etcd', error);
  }
  log(`tenant-cluster ${namespace}/${clusterName}: external etcd at ${etcdUrl} (logs in ${dir})`);

  let tenantAdmin: { certPem: string; keyPem: string; caPem: string } | undefined;
  let kubeconfigPath: string | undefined;
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const tenantClient = (): KubeClient => {
    if (!tenantAdmin) throw new Error(`tenant-cluster ${clusterName}: start() has not completed`);
    return new KubeClient({
      server,
      caPem: tenantAdmin.caPem,
      clientCertPem: tenantAdmin.certPem,
      clientKeyPem: tenantAdmin.keyPem,
    });
  };

  const start = (startOptions: { caTimeoutMs?: number; startTimeoutMs?: number } = {}): Promise<void> =>
    (starting ??= (async () => {
      let current: TenantComponent | undefined;
      try {
        const readSecret = async (suffix: string): Promise<Record<string, string> | undefined> => {
          const secret = await management.tryGet<SecretObject>('v1', 'Secret', `${clusterName}-${suffix}`, namespace);
          const data = secret?.data;
          return data?.['tls.crt'] && data['tls.key'] ? data : undefined;
        };
        const [ca, sa] = await waitFor(
          `Secrets ${namespace}/${clusterName}-ca and -sa (generated by KCP)`,
          async () => {
            const found = await Promise.all([readSecret('ca'), readSecret('sa')]);
            return found[0] && found[1] ? (found as [Record<string, string>, Record<string, string>]) : undefined;
          },
          { timeoutMs: startOptions.caTimeoutMs ?? 180_000, intervalMs: 500 },
        );
        const deadline = Date.now() + (startOptions.startTimeoutMs ?? 60_000);
        const fromB64 = (value: string | undefined): string => Buffer.from(value ?? '', 'base64').toString('utf8');
        const write = (name: string, content: string): string => {
          const file = path.join(pkiDir, name);
          fs.writeFileSync(file, content, { mode: 0o600 });
          return file;
        };
        const clusterCa = {
          certPath: write('ca.crt', fromB64(ca['tls.crt'])),
          keyPath: write('ca.key', fromB64(ca['tls.key'])),
        };
        const saPublic = write('sa.pub', fromB64(sa['tls.crt']));
        const saKey = write('sa.key', fromB64(sa['tls.key']));
        const serving = issueCertificate(pkiDir, 'apiserver', clusterCa, {
          commonName: 'kube-apiserver', // kubeadm's CN; KCP looks for it when it reads the certificate's expiry
          usage: 'serving',
          altNames: [
            `IP:${endpointHost}`,
            'IP:127.0.0.1',
            `IP:${kubernetesServiceIp}`,
            'DNS:localhost',
            'DNS:kubernetes',
            'DNS:kubernetes.default',
            'DNS:kubernetes.default.svc',
            'DNS:kubernetes.default.svc.cluster.local',
          ],
        });
        const admin = issueCertificate(pkiDir, 'admin', clusterCa, {
          commonName: 'kubevisor-e2e-tenant-admin',
          organizations: ['system:masters'],
          usage: 'client',
        });
        const caPem = fs.readFileSync(clusterCa.certPath, 'utf8');
        const adminKubeconfig = path.join(dir, 'admin.kubeconfig');
        writeKubeconfig(adminKubeconfig, {
          server,
          caPem,
          clientCertPem: admin.certPem,
          clientKeyPem: admin.keyPem,
          user: 'admin',
        });
        const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
          waitFor(what, probe, {
            timeoutMs: Math.max(deadline - Date.now(), 1),
            intervalMs: 100,
            abortIf: abortIfAnyExited,
          });

        current = 'kube-apiserver';
        spawn('kube-apiserver', [
          `--etcd-servers=${etcdUrl}`,
          `--etcd-cafile=${etcdCa.certPath}`,
          `--etcd-certfile=${etcdClient.certPath}`,
          `--etcd-keyfile=${etcdClient.keyPath}`,
          `--bind-address=${endpointHost}`,
          `--advertise-address=${endpointHost}`,
          `--secure-port=${endpointPort}`,
          `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
          `--tls-cert-file=${serving.certPath}`,
          `--tls-private-key-file=${serving.keyPath}`,
          `--client-ca-file=${clusterCa.certPath}`,
          '--authorization-mode=Node,RBAC',
          '--allow-privileged=true',
          `--service-cluster-ip-range=${serviceSubnet}`,
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${saPublic}`,
          `--service-account-signing-key-file=${saKey}`,
          // A loopback advertise address is not a valid Endpoints address; nothing in the tenant needs them.
          '--endpoint-reconciler-type=none',
        ]);
        tenantAdmin = { certPem: admin.certPem, keyPem: admin.keyPem, caPem };
        const probe = tenantClient();
        try {
          await until('tenant kube-apiserver /readyz', async () => {
            const body = await probe.request<string>('GET', '/readyz', { timeoutMs: 5_000 });
            return body === 'ok' ? true : undefined;
          });
        } finally {
          probe.close();
        }

        current = 'kwok';
        const kwokPorts = await freePorts(['kwok']);
        spawn(
          'kwok',
          kwokArgs({
            kubeconfigPath: adminKubeconfig,
            stagesPath: kwokStages,
            port: kwokPorts.kwok,
            podCidr,
            nodeIp: endpointHost,
          }),
        );
        await until('tenant kwok /healthz', () => healthz(`http://127.0.0.1:${kwokPorts.kwok}/healthz`));
        kubeconfigPath = adminKubeconfig;
        log(`tenant-cluster ${namespace}/${clusterName}: API server at ${server}`);
      } catch (error) {
        tenantAdmin = undefined;
        throw failWith(current, error);
      }
    })());

  const joinNode = async (join: JoinNodeOptions): Promise<void> => {
    const client = tenantClient();
    try {
      const within = { timeoutMs: join.timeoutMs ?? 60_000, intervalMs: 200 };
      const node = await client.create<NodeObject>(
        playedNode(join.name, join.providerID, join.controlPlane, join.kubernetesVersion),
      );
      await waitFor(
        `tenant Node ${join.name} Ready`,
        async () => {
          const current = await client.get<NodeObject>('v1', 'Node', join.name);
          return isNodeReady(current) ? true : undefined;
        },
        within,
      );
      if (!join.controlPlane) return;
      if (!(await client.tryGet('v1', 'ConfigMap', 'kubeadm-config', 'kube-system'))) {
        const clusterConfiguration = join.bootstrapData
          ? clusterConfigurationFromBootstrapData(join.bootstrapData)
          : defaultClusterConfiguration({
              clusterName,
              controlPlaneEndpoint: `${endpointHost}:${endpointPort}`,
              externalEtcd,
            });
        // kubeadm init uploads the configuration it ran with, at the version it installed.
        clusterConfiguration.kubernetesVersion = join.kubernetesVersion;
        await client.create({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'kubeadm-config', namespace: 'kube-system' },
          data: { ClusterConfiguration: stringify(clusterConfiguration) },
        });
      }
      for (const component of controlPlaneComponents) {
        await client.create(mirrorPod(component, node, join.kubernetesVersion));
      }
      await waitFor(
        `tenant control-plane pods of ${join.name} Running and Ready`,
        async () => {
          for (const component of controlPlaneComponents) {
            const pod = await client.get<PodObject>('v1', 'Pod', `${component}-${join.name}`, 'kube-system');
            const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
            if (pod.status?.phase !== 'Running' || !ready) return undefined;
          }
          return true;
        },
        within,
      );
    } finally {
      client.close();
    }
  };

  const removeNode = async (name: string): Promise<void> => {
    const client = tenantClient();
    try {
      const pods = await client.list('v1', 'Pod', { fieldSelector: `spec.nodeName=${name}` });
      for (const pod of pods) {
        // Grace 0: nothing runs them; KWOK would otherwise wait for a kubelet that never confirms.
        await client.delete('v1', 'Pod', pod.metadata.name ?? '', pod.metadata.namespace, {
          gracePeriodSeconds: 0,
          ignoreNotFound: true,
        });
      }
      await client.delete('v1', 'Node', name, undefined, { ignoreNotFound: true });
      await waitFor(
        `tenant Node ${name} gone`,
        async () => ((await client.tryGet('v1', 'Node', name)) ? undefined : true),
        {
          timeoutMs: 30_000,
          intervalMs: 200,
        },
      );
    } finally {
      client.close();
    }
  };

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        await stopProcesses();
      } finally {
        await deleteSecrets().catch(() => undefined);
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
        unregisterDir(dir);
      }
    })());

  const externalEtcd: ExternalEtcd = { endpoints: [etcdUrl], ...externalEtcdFiles };
  return {
    dir,
    server,
    externalEtcd,
    get kubeconfigPath() {
      return kubeconfigPath;
    },
    start,
    client: tenantClient,
    joinNode,
    removeNode,
    logTail: (component, lines) => logTail(path.join(dir, `${component}.log`), lines),
    stop,
  };
}

/** prepare + start, for when the Cluster API objects already exist (KCP retries until the etcd Secrets appear). */
export async function startTenantCluster(
  options: TenantClusterOptions & { caTimeoutMs?: number; startTimeoutMs?: number },
): Promise<TenantCluster> {
  const tenant = await prepareTenantCluster(options);
  try {
    await tenant.start(options);
  } catch (error) {
    await tenant.stop().catch(() => undefined);
    throw error;
  }
  return tenant;
}

/** The Node kubelet registers on a node kubeadm set up (what `kubeadm init`/`join` configure it with). */
function playedNode(name: string, providerID: string, controlPlane: boolean, kubernetesVersion: string): KubeObject {
  const resources = { cpu: '2', memory: '4Gi', pods: '110', 'ephemeral-storage': '20Gi' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: {
        [kwokNodeAnnotation]: 'fake',
        'node.alpha.kubernetes.io/ttl': '0',
        'kubeadm.alpha.kubernetes.io/cri-socket': 'unix:///var/run/containerd/containerd.sock',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
      },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': 'amd64',
        // kubeadm's control-plane labels (kubeadm init/join --control-plane, phase mark-control-plane).
        ...(controlPlane
          ? {
              'node-role.kubernetes.io/control-plane': '',
              'node.kubernetes.io/exclude-from-external-load-balancers': '',
            }
          : {}),
      },
    },
    spec: {
      providerID,
      // kubeadm taints a control-plane node; Cluster API's bootstrap config has a worker register with the
      // uninitialized taint, which the Machine controller removes once it has synced the Machine's labels.
      taints: [
        controlPlane
          ? { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }
          : { key: 'node.cluster.x-k8s.io/uninitialized', effect: 'NoSchedule' },
      ],
    },
    status: {
      allocatable: resources,
      capacity: resources,
      nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', kubeletVersion: kubernetesVersion },
    },
  };
}

/** The mirror pod kubelet creates for one of kubeadm's static pods, with kubeadm's labels. */
function mirrorPod(component: string, node: NodeObject, kubernetesVersion: string): KubeObject {
  const nodeName = node.metadata.name ?? '';
  const hash = randomBytes(16).toString('hex');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${component}-${nodeName}`,
      namespace: 'kube-system',
      labels: { component, tier: 'control-plane' },
      annotations: {
        // What makes it a mirror pod: drain skips it, as it skips every static pod.
        'kubernetes.io/config.mirror': hash,
        'kubernetes.io/config.hash': hash,
        'kubernetes.io/config.source': 'file',
      },
      // kubelet makes the Node own its mirror pods.
      ownerReferences: [
        { apiVersion: 'v1', kind: 'Node', name: nodeName, uid: node.metadata.uid ?? '', controller: true },
      ],
    },
    spec: {
      nodeName,
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      tolerations: [{ operator: 'Exists', effect: 'NoExecute' }],
      // KWOK never runs the image.
      containers: [{ name: component, image: `registry.k8s.io/${component}:${kubernetesVersion}` }],
    },
  };
}

/** A ClusterConfiguration as `kubeadm init` (v1.31+, kubeadm.k8s.io/v1beta4) uploads it with external etcd. */
function defaultClusterConfiguration(input: {
  clusterName: string;
  controlPlaneEndpoint: string;
  externalEtcd: ExternalEtcd;
}): Record<string, unknown> {
  return {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'ClusterConfiguration',
    apiServer: {},
    caCertificateValidityPeriod: '87600h0m0s',
    certificateValidityPeriod: '8760h0m0s',
    certificatesDir: '/etc/kubernetes/pki',
    clusterName: input.clusterName,
    controlPlaneEndpoint: input.controlPlaneEndpoint,
    controllerManager: {},
    dns: {},
    encryptionAlgorithm: 'RSA-2048',
    etcd: { external: input.externalEtcd },
    imageRepository: 'registry.k8s.io',
    networking: { dnsDomain: 'cluster.local', serviceSubnet },
    proxy: {},
    scheduler: {},
  };
}

/**
 * The ClusterConfiguration Cluster API rendered for `kubeadm init`: cloud-init's write_files entry
 * /run/kubeadm/kubeadm.yaml holds the InitConfiguration and ClusterConfiguration documents.
 */
export function clusterConfigurationFromBootstrapData(bootstrapData: string): Record<string, unknown> {
  const cloudConfig = parse(bootstrapData) as {
    write_files?: { path?: string; content?: string; encoding?: string }[];
  };
  const file = cloudConfig.write_files?.find((f) => f.path === '/run/kubeadm/kubeadm.yaml');
  if (!file?.content) throw new Error('bootstrap data has no /run/kubeadm/kubeadm.yaml (is it a kubeadm init config?)');
  const content = file.encoding?.includes('base64')
    ? Buffer.from(file.content, 'base64').toString('utf8')
    : file.content;
  for (const doc of parseAllDocuments(content)) {
    const value = doc.toJS() as Record<string, unknown> | null;
    if (value?.kind === 'ClusterConfiguration') return value;
  }
  throw new Error('/run/kubeadm/kubeadm.yaml in the bootstrap data holds no ClusterConfiguration');
}
