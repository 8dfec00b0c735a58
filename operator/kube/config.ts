// Where the API server is and how to authenticate to it: from a kubeconfig file (current context)
// or, inside a pod, from the service account. The same order as controller-runtime's GetConfig:
// an explicit kubeconfig, then $KUBECONFIG, then in-cluster, then ~/.kube/config.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface KubeCredentials {
  /** e.g. https://10.96.0.1:443 (http:// is accepted for loopback test servers). */
  server: string;
  /** CA bundle that signs the server's certificate; without it the system's CAs are used. */
  caPem?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Bearer token. */
  token?: string;
  /**
   * File holding the bearer token, re-read periodically by the client: projected service account
   * tokens rotate (kubelet refreshes them at 80% of their lifetime, at most every 24 h).
   */
  tokenFile?: string;
  insecureSkipTlsVerify?: boolean;
  /** Name to verify the server's certificate against, when it differs from the URL's host. */
  tlsServerName?: string;
  /** The context's namespace, or the pod's own namespace in-cluster (e.g. for the leader Lease). */
  namespace?: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadOptions {
  /** An explicit kubeconfig path (e.g. from a --kubeconfig flag); wins over everything else. */
  kubeconfig?: string;
  /** Use this context instead of current-context. */
  context?: string;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /** @default SERVICE_ACCOUNT_DIR */
  serviceAccountDir?: string;
  /** @default os.homedir() */
  homeDir?: string;
}

/** Credentials from the first source that exists, in controller-runtime's order. */
export function loadKubeCredentials(options: LoadOptions = {}): KubeCredentials {
  const env = options.env ?? process.env;
  if (options.kubeconfig) return loadKubeconfig(options.kubeconfig, { context: options.context });
  const fromEnv = (env.KUBECONFIG ?? '').split(path.delimiter).filter((p) => p !== '');
  if (fromEnv.length > 0) return loadKubeconfig(fromEnv, { context: options.context });
  if (env.KUBERNETES_SERVICE_HOST) {
    return loadInClusterConfig({ env, serviceAccountDir: options.serviceAccountDir });
  }
  const home = path.join(options.homeDir ?? os.homedir(), '.kube', 'config');
  if (fs.existsSync(home)) return loadKubeconfig(home, { context: options.context });
  throw new Error(
    'no Kubernetes credentials: pass a kubeconfig, set KUBECONFIG, run in a pod, or create ~/.kube/config',
  );
}

/**
 * In-cluster credentials: the API server from KUBERNETES_SERVICE_HOST/PORT, the service account's
 * CA and token. The token is also given as `tokenFile` so the client picks up rotations.
 */
export function loadInClusterConfig(
  options: { env?: NodeJS.ProcessEnv; serviceAccountDir?: string } = {},
): KubeCredentials {
  const env = options.env ?? process.env;
  const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new Error('not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set');
  }
  const tokenFile = path.join(dir, 'token');
  const readRequired = (file: string): string => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`in-cluster config: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const token = readRequired(tokenFile).trim();
  const caPem = readRequired(path.join(dir, 'ca.crt'));
  let namespace: string | undefined;
  try {
    namespace = fs.readFileSync(path.join(dir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    // Optional: only the service account's own namespace, used as a default.
  }
  // An IPv6 service address needs brackets in a URL.
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { server: `https://${hostPart}:${port}`, caPem, token, tokenFile, namespace };
}

/**
 * Credentials of one context (current-context unless told otherwise) from one or more kubeconfig
 * files. Several files merge as kubectl merges them: the first file that names a cluster, user or
 * context wins, and the first non-empty current-context wins. Relative paths inside a file are
 * relative to that file's directory.
 */
export function loadKubeconfig(paths: string | string[], options: { context?: string } = {}): KubeCredentials {
  // A single named file must exist; in a $KUBECONFIG list, missing files are skipped (as kubectl does).
  const files = Array.isArray(paths) ? paths.filter((p) => fs.existsSync(p)) : [paths];
  if (files.length === 0) throw new Error(`none of the kubeconfig files exist: ${[paths].flat().join(', ')}`);
  const merged: MergedKubeconfig = { clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    mergeKubeconfig(merged, text, path.dirname(path.resolve(file)), file);
  }
  return resolveContext(merged, options.context);
}

/** Credentials from kubeconfig text; `baseDir` resolves relative file paths. */
export function parseKubeconfig(text: string, baseDir: string, options: { context?: string } = {}): KubeCredentials {
  const merged: MergedKubeconfig = { clusters: new Map(), users: new Map(), contexts: new Map() };
  mergeKubeconfig(merged, text, baseDir, '<kubeconfig>');
  return resolveContext(merged, options.context);
}

type Entry = Record<string, unknown>;
interface Located {
  entry: Entry;
  baseDir: string;
}
interface MergedKubeconfig {
  clusters: Map<string, Located>;
  users: Map<string, Located>;
  contexts: Map<string, Located>;
  currentContext?: string;
}

function mergeKubeconfig(merged: MergedKubeconfig, text: string, baseDir: string, source: string): void {
  const doc: unknown = parseYaml(text);
  if (doc === null || doc === undefined) return;
  if (!isRecord(doc)) throw new Error(`${source}: a kubeconfig must be a mapping`);
  const take = (listName: string, field: string, into: Map<string, Located>): void => {
    const list = doc[listName];
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) throw new Error(`${source}: ${listName} must be a list`);
    for (const item of list) {
      if (!isRecord(item) || typeof item.name !== 'string')
        throw new Error(`${source}: every ${listName} entry needs a name`);
      const entry = item[field] ?? {};
      if (!isRecord(entry)) throw new Error(`${source}: ${listName}[${item.name}].${field} must be a mapping`);
      if (!into.has(item.name)) into.set(item.name, { entry, baseDir });
    }
  };
  take('clusters', 'cluster', merged.clusters);
  take('users', 'user', merged.users);
  take('contexts', 'context', merged.contexts);
  const current = doc['current-context'];
  if (!merged.currentContext && typeof current === 'string' && current !== '') merged.currentContext = current;
}

function resolveContext(merged: MergedKubeconfig, contextName: string | undefined): KubeCredentials {
  const name = contextName ?? merged.currentContext;
  if (!name) throw new Error('kubeconfig: no context given and no current-context set');
  const context = merged.contexts.get(name);
  if (!context) throw new Error(`kubeconfig: context "${name}" not found`);
  const clusterName = str(context.entry, 'cluster');
  const cluster = clusterName === undefined ? undefined : merged.clusters.get(clusterName);
  if (!cluster)
    throw new Error(`kubeconfig: context "${name}" names cluster "${clusterName ?? ''}", which is not defined`);
  const server = str(cluster.entry, 'server');
  if (!server) throw new Error(`kubeconfig: cluster "${clusterName}" has no server`);
  const credentials: KubeCredentials = { server };
  credentials.caPem = dataOrFile(cluster, 'certificate-authority-data', 'certificate-authority');
  if (cluster.entry['insecure-skip-tls-verify'] === true) credentials.insecureSkipTlsVerify = true;
  const tlsServerName = str(cluster.entry, 'tls-server-name');
  if (tlsServerName) credentials.tlsServerName = tlsServerName;
  const namespace = str(context.entry, 'namespace');
  if (namespace) credentials.namespace = namespace;

  const userName = str(context.entry, 'user');
  const user = userName === undefined ? undefined : merged.users.get(userName);
  if (userName !== undefined && userName !== '' && !user) {
    throw new Error(`kubeconfig: context "${name}" names user "${userName}", which is not defined`);
  }
  if (user) {
    // Plugins would need to run a program or speak OAuth; say so rather than fail later with 401.
    if (user.entry.exec !== undefined)
      throw new Error(`kubeconfig: user "${userName}" uses an exec plugin, which is not supported`);
    if (user.entry['auth-provider'] !== undefined) {
      throw new Error(`kubeconfig: user "${userName}" uses an auth-provider, which is not supported`);
    }
    credentials.clientCertPem = dataOrFile(user, 'client-certificate-data', 'client-certificate');
    credentials.clientKeyPem = dataOrFile(user, 'client-key-data', 'client-key');
    const token = str(user.entry, 'token');
    if (token) credentials.token = token;
    const tokenFile = str(user.entry, 'tokenFile');
    if (tokenFile) {
      credentials.tokenFile = path.resolve(user.baseDir, tokenFile);
      // Read once now so a missing file fails at start-up, not at the first request.
      if (!credentials.token) credentials.token = fs.readFileSync(credentials.tokenFile, 'utf8').trim();
    }
  }
  for (const key of Object.keys(credentials) as (keyof KubeCredentials)[]) {
    if (credentials[key] === undefined) delete credentials[key];
  }
  return credentials;
}

/** `<x>-data` (base64, wins, as in kubectl) or the file `<x>` names. */
function dataOrFile(located: Located, dataKey: string, fileKey: string): string | undefined {
  const data = str(located.entry, dataKey);
  if (data) return Buffer.from(data, 'base64').toString('utf8');
  const file = str(located.entry, fileKey);
  if (file) return fs.readFileSync(path.resolve(located.baseDir, file), 'utf8');
  return undefined;
}

function str(entry: Entry, key: string): string | undefined {
  const value = entry[key];
  return typeof value === 'string' ? value : undefined;
}

function isRecord(value: unknown): value is Entry {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
