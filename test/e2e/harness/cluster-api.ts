// Cluster API's own controllers for the e2e suite: the core manager, the kubeadm bootstrap manager and the kubeadm
// control plane manager, built from the upstream Go module by tools/cluster-api/build.sh, run as child processes
// against the suite's shared control plane, with their CRDs installed from the same module version and their
// admission webhooks registered, so defaulting and validation are Cluster API's own (a server-side dry run gets the
// verdict a real management cluster would give).
//
// What differs from a release install, and why:
// - No cert-manager: the harness makes a CA and one serving certificate (127.0.0.1) for the three webhook servers,
//   and registers the webhook configurations with `clientConfig.url` (no Service: the e2e control plane has no
//   kube-proxy) and that CA as `caBundle`.
// - No conversion webhooks: every object the suite writes is v1beta2, the storage version; the CRD bases carry no
//   conversion stanza (a release adds it with a kustomize patch pointing at a Service) and any that would is removed.
// - The managers run as the control plane's admin (system:masters), not with the release's RBAC.
// - Leader election is off (one instance of each); diagnostics (metrics) are served over plain HTTP on loopback.
// The CRDs get the labels a release's kustomize puts on them: the provider label and the contract labels
// (`cluster.x-k8s.io/v1beta2: v1beta2`), which Cluster API reads to resolve references to its own kinds.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { healthz } from './control-plane';
import { KubeClient } from './kube-client';
import type { KubeObject } from './kube-client';
import { writeKubeconfig } from './kubeconfig';
import { createCertificateAuthority, issueCertificate } from './pki';
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
import { sharedControlPlaneInfo } from './shared';
import { waitFor } from './wait';

/** The three managers, by the binary names build.sh gives them. */
export type ClusterApiManager = 'cluster-api-manager' | 'kubeadm-bootstrap-manager' | 'kubeadm-control-plane-manager';

export const clusterApiManagers: readonly ClusterApiManager[] = [
  'cluster-api-manager',
  'kubeadm-bootstrap-manager',
  'kubeadm-control-plane-manager',
];

/** Where each manager's CRDs, webhooks and kustomizations are in the cache (build.sh's provider names). */
const providerOf: Record<ClusterApiManager, string> = {
  'cluster-api-manager': 'core',
  'kubeadm-bootstrap-manager': 'bootstrap-kubeadm',
  'kubeadm-control-plane-manager': 'controlplane-kubeadm',
};

/** On every cluster-scoped object the harness creates, so a later run can find and remove what a killed run left. */
export const clusterApiHarnessLabel = 'kubevisor.io/e2e-cluster-api';

/** The API server the managers work against: its admin identity. */
export interface ManagementCluster {
  server: string;
  caPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

export interface ClusterApiOptions {
  /** Default: the e2e suite's shared control plane (harness/shared.ts). */
  managementCluster?: ManagementCluster;
  /** Directory of the three binaries; default: $KUBEVISOR_CLUSTER_API_BIN, else build.sh's cache (building it if needed). */
  binDir?: string;
  /** Feature gates for all three managers (`--feature-gates`); default: Cluster API's defaults. */
  featureGates?: Record<string, boolean>;
  /** Bound on the whole start: CRDs, managers ready, webhooks registered (default 120 s). */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL, per manager (default 10 s). */
  stopGraceMs?: number;
  /** Progress lines; default writes to stderr. */
  log?: (line: string) => void;
}

export interface ManagerPorts {
  /** The admission webhook server (HTTPS; it listens on every address, the webhooks call it on 127.0.0.1). */
  webhook: number;
  /** /healthz and /readyz (HTTP, 127.0.0.1). */
  health: number;
  /** /metrics (HTTP, 127.0.0.1). */
  metrics: number;
}

export interface ClusterApi {
  /** Temp dir: the managers' `<manager>.log`, the webhook certificates and the managers' kubeconfig. Removed by stop(). */
  dir: string;
  logPaths: Record<ClusterApiManager, string>;
  ports: Record<ClusterApiManager, ManagerPorts>;
  pids: Record<ClusterApiManager, number>;
  /** Names of the CRDs installed (all of the module's CRD bases). */
  crdNames: string[];
  /** Names of the Mutating/ValidatingWebhookConfigurations registered, by kind. */
  webhookConfigurations: { mutating: string[]; validating: string[] };
  /** The last lines of a manager's log, for a test's failure message. */
  logTail(manager: ClusterApiManager, lines?: number): string;
  /**
   * Removes the webhook configurations, stops the managers, strips the finalizers of every Cluster API object left
   * (no controller runs any more to remove them) and deletes the CRDs, waits until they are gone, removes `dir`.
   * Idempotent. Delete your Clusters before, while the controllers still run, to see them tear down for real.
   */
  stop(): Promise<void>;
}

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const buildScript = path.join(repoRoot, 'tools', 'cluster-api', 'build.sh');
const dirPrefix = 'kubevisor-capi-';

/**
 * The directory of the three managers. Asks build.sh for its cache first, which never builds; only when that is
 * empty does it run build.sh (about 3 minutes on 2 cores with a cold Go cache), streaming its progress to stderr.
 */
export function clusterApiBinDir(): string {
  const fromEnv = process.env.KUBEVISOR_CLUSTER_API_BIN;
  if (fromEnv) return fromEnv;
  const cached = spawnSync('bash', [buildScript, '--print-bin-dir'], { encoding: 'utf8', timeout: 60_000 });
  if (cached.status === 0) return cached.stdout.trim();
  const build = spawnSync('bash', [buildScript], { stdio: ['ignore', 2, 2], timeout: 2 * 3600_000 });
  if (build.status !== 0) {
    throw new Error(`cluster-api: ${buildScript} failed (status ${build.status}, ${build.error?.message ?? ''})`);
  }
  return execFileSync('bash', [buildScript, '--print-bin-dir'], { encoding: 'utf8', timeout: 60_000 }).trim();
}

interface CrdObject extends KubeObject {
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: { name: string; served: boolean; storage: boolean }[];
    conversion?: { strategy?: string; webhook?: unknown };
  };
}

interface WebhookConfiguration extends KubeObject {
  webhooks?: { name: string; clientConfig: { service?: { path?: string }; url?: string; caBundle?: string } }[];
}

/** The CRDs of one provider, labelled as a release labels them, without any conversion webhook. */
export function clusterApiCrds(binDir: string, manager: ClusterApiManager): CrdObject[] {
  const provider = providerOf[manager];
  const root = path.join(binDir, '..');
  const labels = {
    ...kustomizeLabels(path.join(root, 'kustomize', provider, 'default.yaml')),
    ...kustomizeLabels(path.join(root, 'kustomize', provider, 'crd.yaml')),
    [clusterApiHarnessLabel]: 'true',
  };
  const dir = path.join(root, 'crds', provider);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const crd = parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CrdObject;
      crd.metadata.labels = { ...crd.metadata.labels, ...labels };
      // A conversion webhook would point at a Service that does not exist here; with every object at the storage
      // version, the API server converts nothing but apiVersion (strategy None).
      delete crd.spec.conversion;
      return crd;
    });
}

/** `labels[].pairs` of a kustomization (what kustomize adds to every object it emits). */
function kustomizeLabels(file: string): Record<string, string> {
  const kustomization = parse(fs.readFileSync(file, 'utf8')) as { labels?: { pairs?: Record<string, string> }[] };
  return Object.assign({}, ...(kustomization.labels ?? []).map((l) => l.pairs ?? {})) as Record<string, string>;
}

/**
 * One provider's webhook configurations from its module manifest, renamed so they cannot collide with anything else
 * on the shared control plane, pointed at `https://127.0.0.1:<port><path>` and trusting `caPem`.
 */
export function clusterApiWebhookConfigurations(
  binDir: string,
  manager: ClusterApiManager,
  port: number,
  caPem: string,
): WebhookConfiguration[] {
  const file = path.join(binDir, '..', 'webhooks', `${providerOf[manager]}.yaml`);
  const caBundle = Buffer.from(caPem).toString('base64');
  return parseAllDocuments(fs.readFileSync(file, 'utf8'))
    .map((doc) => doc.toJS() as WebhookConfiguration | null)
    .filter((doc): doc is WebhookConfiguration => doc !== null)
    .map((config) => {
      const flavour = config.kind === 'MutatingWebhookConfiguration' ? 'mutating' : 'validating';
      return {
        ...config,
        metadata: {
          name: `kubevisor-e2e-capi-${providerOf[manager]}-${flavour}`,
          labels: { [clusterApiHarnessLabel]: 'true' },
        },
        webhooks: (config.webhooks ?? []).map((webhook) => {
          const webhookPath = webhook.clientConfig.service?.path;
          if (!webhookPath) throw new Error(`cluster-api: webhook ${webhook.name} in ${file} has no service path`);
          return { ...webhook, clientConfig: { url: `https://127.0.0.1:${port}${webhookPath}`, caBundle } };
        }),
      };
    });
}

export async function startClusterApi(options: ClusterApiOptions = {}): Promise<ClusterApi> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const management = options.managementCluster ?? sharedControlPlaneInfo();
  const binDir = options.binDir ?? clusterApiBinDir();
  const startedAt = Date.now();
  const deadline = startedAt + (options.startTimeoutMs ?? 120_000);
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  for (const manager of clusterApiManagers) {
    const binary = path.join(binDir, manager);
    if (!fs.existsSync(binary)) throw new Error(`cluster-api: ${binary} is missing; run npm run cluster-api:build`);
  }

  // A test run killed outright (SIGKILL, OOM) runs no exit handler; clean up after it here.
  reapOrphans(os.tmpdir(), dirPrefix, clusterApiManagers);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  registerDir(dir);
  const admin = new KubeClient({
    server: management.server,
    caPem: management.caPem,
    clientCertPem: management.clientCertPem,
    clientKeyPem: management.clientKeyPem,
  });
  const managers = new Map<ClusterApiManager, ComponentProcess>();
  const crds = clusterApiManagers.flatMap((m) => clusterApiCrds(binDir, m));
  const crdNames = crds.map((crd) => crd.metadata.name ?? '');
  const webhookConfigurations = { mutating: [] as string[], validating: [] as string[] };

  const stopManagers = async (): Promise<void> => {
    const results = await Promise.allSettled([...managers.values()].map((m) => stopComponent(m, stopGraceMs)));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) throw new Error(failures.map((f) => String(f.reason)).join('\n'));
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const cleanup = new KubeClient(admin.credentials);
      try {
        // Webhooks first: with failurePolicy Fail, a configuration whose server is gone would block every write of
        // a Cluster API object, including the finalizer removal below.
        await deleteHarnessWebhookConfigurations(cleanup);
        await stopManagers();
        await removeCrds(cleanup, crds, 60_000);
      } finally {
        cleanup.close();
        admin.close();
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
        unregisterDir(dir);
      }
    })());

  let current: ClusterApiManager | undefined;
  try {
    // Leftovers of a run that was killed before its stop(): a webhook configuration pointing at a dead port would
    // reject every Cluster API write.
    await deleteHarnessWebhookConfigurations(admin);

    const portNames = clusterApiManagers.flatMap((m) => [`${m}:webhook`, `${m}:health`, `${m}:metrics`] as const);
    const flatPorts = await freePorts(portNames);
    const ports = Object.fromEntries(
      clusterApiManagers.map((m) => [
        m,
        { webhook: flatPorts[`${m}:webhook`], health: flatPorts[`${m}:health`], metrics: flatPorts[`${m}:metrics`] },
      ]),
    ) as Record<ClusterApiManager, ManagerPorts>;

    // One serving certificate for the three webhook servers: they all listen on 127.0.0.1.
    const pkiDir = path.join(dir, 'pki');
    const webhookCa = createCertificateAuthority(pkiDir, 'webhook-ca', 'kubevisor-e2e-capi-webhook-ca');
    const serving = issueCertificate(pkiDir, 'webhook-serving', webhookCa, {
      commonName: 'kubevisor-e2e-capi-webhook',
      usage: 'serving',
      altNames: ['IP:127.0.0.1', 'DNS:localhost'],
    });
    const certDir = path.join(dir, 'webhook-certs');
    fs.mkdirSync(certDir, { mode: 0o700 });
    fs.copyFileSync(serving.certPath, path.join(certDir, 'tls.crt'));
    fs.copyFileSync(serving.keyPath, path.join(certDir, 'tls.key'));

    const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfigPath, { ...management, user: 'admin' });

    log(`cluster-api: installing ${crds.length} CRDs`);
    await admin.createCrdsAndWaitEstablished(crds, { timeoutMs: Math.max(deadline - Date.now(), 1) });

    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    // A clean environment: no KUBECONFIG or proxy settings of the caller leak in.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
    const featureGates = Object.entries(options.featureGates ?? {})
      .map(([gate, on]) => `${gate}=${on}`)
      .join(',');
    for (const manager of clusterApiManagers) {
      const p = ports[manager];
      const args = [
        `--kubeconfig=${kubeconfigPath}`,
        // One instance of each: a Lease would only add round trips.
        '--leader-elect=false',
        `--health-addr=127.0.0.1:${p.health}`,
        // Plain HTTP metrics on loopback; the secure default would also need TokenReview round trips.
        `--diagnostics-address=127.0.0.1:${p.metrics}`,
        '--insecure-diagnostics',
        `--webhook-port=${p.webhook}`,
        `--webhook-cert-dir=${certDir}`,
        ...(featureGates ? [`--feature-gates=${featureGates}`] : []),
      ];
      managers.set(
        manager,
        spawnComponent(manager, path.join(binDir, manager), args, path.join(dir, `${manager}.log`), env),
      );
      writeOwnerRecord(
        dir,
        [...managers.values()].map((m) => m.pid),
      );
    }
    const abortIfAnyExited = (): void => {
      for (const manager of managers.values()) {
        if (manager.exit !== undefined) {
          current = manager.name as ClusterApiManager;
          throw new Error(`${manager.name} exited (${manager.exit.signal ?? `code ${manager.exit.code}`})`);
        }
      }
    };
    for (const manager of clusterApiManagers) {
      current = manager;
      // readyz includes the webhook server's "started" check, so a ready manager answers admission requests.
      await waitFor(`${manager} /readyz`, () => healthz(`http://127.0.0.1:${ports[manager].health}/readyz`), {
        timeoutMs: Math.max(deadline - Date.now(), 1),
        intervalMs: 200,
        abortIf: abortIfAnyExited,
      });
    }
    current = undefined;

    for (const manager of clusterApiManagers) {
      for (const config of clusterApiWebhookConfigurations(
        binDir,
        manager,
        ports[manager].webhook,
        webhookCa.certPem,
      )) {
        await admin.apply(config, { force: true });
        const name = config.metadata.name ?? '';
        (config.kind === 'MutatingWebhookConfiguration'
          ? webhookConfigurations.mutating
          : webhookConfigurations.validating
        ).push(name);
      }
    }

    log(`cluster-api: 3 managers ready in ${Date.now() - startedAt} ms (logs in ${dir})`);
    const logPaths = Object.fromEntries(clusterApiManagers.map((m) => [m, path.join(dir, `${m}.log`)])) as Record<
      ClusterApiManager,
      string
    >;
    const pids = Object.fromEntries([...managers].map(([name, m]) => [name, m.pid])) as Record<
      ClusterApiManager,
      number
    >;
    return {
      dir,
      logPaths,
      ports,
      pids,
      crdNames,
      webhookConfigurations,
      logTail: (manager, lines) => logTail(logPaths[manager], lines),
      stop,
    };
  } catch (error) {
    // Undo everything cluster-scoped (other e2e files share the control plane), but keep the dir: its logs are what
    // explains the failure.
    unregisterDir(dir);
    removeOwnerRecord(dir);
    await deleteHarnessWebhookConfigurations(admin).catch(() => undefined);
    await stopManagers().catch(() => undefined);
    await removeCrds(admin, crds, 30_000).catch(() => undefined);
    admin.close();
    const failed = current ? managers.get(current) : undefined;
    const reason = error instanceof Error ? error.message : String(error);
    const tail = failed ? `\n--- last lines of ${failed.logPath} ---\n${logTail(failed.logPath)}\n---` : '';
    throw new Error(
      `cluster-api: start failed${current ? ` at ${current}` : ''}: ${reason}${tail}\nAll logs are kept in ${dir}`,
      { cause: error },
    );
  }
}

async function deleteHarnessWebhookConfigurations(client: KubeClient): Promise<void> {
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    const apiVersion = 'admissionregistration.k8s.io/v1';
    const configs = await client.list(apiVersion, kind, { labelSelector: clusterApiHarnessLabel });
    for (const config of configs) {
      await client.delete(apiVersion, kind, config.metadata.name ?? '', undefined, { ignoreNotFound: true });
    }
  }
}

/**
 * Deletes the CRDs and every object of theirs. Objects still carrying finalizers would hold their CRD in Terminating
 * for ever once no controller runs, so their finalizers are removed first.
 */
async function removeCrds(client: KubeClient, crds: CrdObject[], timeoutMs: number): Promise<void> {
  const crdApi = 'apiextensions.k8s.io/v1';
  const stripFinalizers = async (): Promise<void> => {
    for (const crd of crds) {
      const storage = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0]?.name ?? '';
      const apiVersion = `${crd.spec.group}/${storage}`;
      let items: KubeObject[];
      try {
        items = await client.list(apiVersion, crd.spec.names.kind);
      } catch {
        continue; // Not served (never installed, or already gone).
      }
      for (const item of items) {
        if (!item.metadata.finalizers?.length) continue;
        await client
          .patch({ apiVersion, kind: crd.spec.names.kind, metadata: item.metadata }, 'merge', {
            metadata: { finalizers: null },
          })
          .catch(() => undefined); // Gone meanwhile.
      }
    }
  };
  await stripFinalizers();
  for (const crd of crds) {
    await client.delete(crdApi, 'CustomResourceDefinition', crd.metadata.name ?? '', undefined, {
      ignoreNotFound: true,
    });
  }
  await waitFor(
    'the Cluster API CRDs to be gone',
    async () => {
      const left = await client.list(crdApi, 'CustomResourceDefinition', { labelSelector: clusterApiHarnessLabel });
      if (left.length === 0) return true;
      // An object created between the first pass and the CRD's deletion (a controller's last write) holds it too.
      await stripFinalizers();
      return undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}
