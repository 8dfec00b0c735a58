// A minimal Kubernetes REST client for the e2e tests, over node:https with the admin client
// certificate (or a bearer token). No @kubernetes/client-node: that is ESM-only and far more than
// tests need, and raw REST keeps the API server's own responses (status codes, Status bodies)
// visible to assertions.
import https from 'node:https';
import { waitFor } from './wait';

/** Any Kubernetes object; tests narrow it with their own types. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface KubeCredentials {
  /** https://127.0.0.1:<port> */
  server: string;
  caPem: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Bearer token, e.g. a service account's (used instead of, or besides, a client certificate). */
  token?: string;
}

/** Impersonation headers: act as another user (the caller must be allowed to impersonate). */
export interface Impersonation {
  user: string;
  groups?: string[];
}

/** One entry of `details.causes` in a Status: for validation errors, the field and what is wrong. */
export interface KubeStatusCause {
  field?: string;
  message?: string;
  reason?: string;
}

/** A non-2xx answer from the API server, with the fields of its Status body. */
export class KubeApiError extends Error {
  constructor(
    /** HTTP status code, e.g. 422. */
    readonly code: number,
    /** Status reason, e.g. 'Invalid', 'Forbidden', 'NotFound', 'AlreadyExists', 'Conflict'. */
    readonly reason: string,
    /** The server's message, verbatim. */
    readonly serverMessage: string,
    readonly causes: KubeStatusCause[],
    readonly method: string,
    readonly path: string,
    /** The whole Status object (or the raw body text when it was not JSON). */
    readonly body: unknown,
  ) {
    super(`${method} ${path}: ${code} ${reason}: ${serverMessage}`);
    this.name = 'KubeApiError';
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WriteOptions {
  /** Validate and default on the server but persist nothing (`dryRun=All`). */
  dryRun?: boolean;
}

export interface ApplyOptions extends WriteOptions {
  /** Take ownership of fields another manager owns instead of failing with 409. */
  force?: boolean;
  /** Defaults to `kubevisor`, the operator's field manager. */
  fieldManager?: string;
  /** e.g. 'status' to apply to the /status subresource. */
  subresource?: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  /** Resolve instead of throwing when the object does not exist. */
  ignoreNotFound?: boolean;
}

/** Where a kind lives in the REST API, from discovery. */
export interface ResourceInfo {
  /** Plural resource name used in URLs, e.g. `virtualmachines`. */
  plural: string;
  namespaced: boolean;
}

interface DiscoveredResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

const defaultTimeoutMs = 30_000;

export class KubeClient {
  private readonly agent: https.Agent;
  /** apiVersion → resources served under it. Refreshed on a miss, since CRDs add kinds at run time. */
  private readonly discovery = new Map<string, DiscoveredResource[]>();

  constructor(
    readonly credentials: KubeCredentials,
    private readonly impersonation?: Impersonation,
  ) {
    this.agent = new https.Agent({
      keepAlive: true,
      ca: credentials.caPem,
      cert: credentials.clientCertPem,
      key: credentials.clientKeyPem,
    });
  }

  /** The same server and credentials, acting as another user (for RBAC tests). */
  impersonate(impersonation: Impersonation): KubeClient {
    return new KubeClient(this.credentials, impersonation);
  }

  /** The same server, authenticated only by a bearer token (no client certificate). */
  withToken(token: string): KubeClient {
    return new KubeClient({ server: this.credentials.server, caPem: this.credentials.caPem, token });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  async get<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T> {
    return this.request<T>('GET', await this.objectPath(apiVersion, kind, namespace, name));
  }

  /** Like get, but undefined when the object does not exist. */
  async tryGet<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(apiVersion, kind, name, namespace);
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 404) return undefined;
      throw error;
    }
  }

  /** Items of a list; without `namespace`, a namespaced kind is listed across all namespaces. */
  async list<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options: ListOptions = {},
  ): Promise<T[]> {
    const resource = await this.resource(apiVersion, kind);
    const path = resourcePath(apiVersion, resource, resource.namespaced ? options.namespace : undefined);
    const list = await this.request<{ items: T[] }>('GET', path, {
      query: { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector },
    });
    // List items carry no apiVersion/kind; fill them in so items look like what get returns.
    return list.items.map((item) => ({ ...item, apiVersion, kind }));
  }

  async create<T extends KubeObject = KubeObject>(object: T, options: WriteOptions = {}): Promise<T> {
    const path = await this.objectPath(object.apiVersion, object.kind, object.metadata.namespace);
    return this.request<T>('POST', path, { body: object, query: { dryRun: options.dryRun ? 'All' : undefined } });
  }

  /**
   * Server-side apply: PATCH with `application/apply-patch+yaml` (JSON is YAML) under field
   * manager `kubevisor` unless told otherwise.
   */
  async apply<T extends KubeObject = KubeObject>(object: T, options: ApplyOptions = {}): Promise<T> {
    const name = object.metadata.name;
    if (!name) throw new Error(`apply: ${object.kind} has no metadata.name`);
    let path = await this.objectPath(object.apiVersion, object.kind, object.metadata.namespace, name);
    if (options.subresource) path += `/${options.subresource}`;
    return this.request<T>('PATCH', path, {
      body: object,
      contentType: 'application/apply-patch+yaml',
      query: {
        fieldManager: options.fieldManager ?? 'kubevisor',
        force: options.force ? true : undefined,
        dryRun: options.dryRun ? 'All' : undefined,
      },
    });
  }

  async delete(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
    options: DeleteOptions = {},
  ): Promise<void> {
    const path = await this.objectPath(apiVersion, kind, namespace, name);
    const body: Record<string, unknown> = { apiVersion: 'meta.k8s.io/v1', kind: 'DeleteOptions' };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    try {
      await this.request('DELETE', path, { body });
    } catch (error) {
      if (options.ignoreNotFound && error instanceof KubeApiError && error.code === 404) return;
      throw error;
    }
  }

  /**
   * Installs CustomResourceDefinitions (server-side apply, so calling it again with the same CRDs
   * is harmless) and waits until each is Established and its kinds are served by discovery, so the
   * next create of a custom resource cannot race the CRD.
   */
  async createCrdsAndWaitEstablished(crds: KubeObject[], options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    for (const crd of crds) await this.apply(crd, { force: true });
    for (const crd of crds) {
      const name = crd.metadata.name ?? '';
      await waitFor(
        `CRD ${name} to be Established`,
        async () => {
          const current = await this.get<CrdObject>('apiextensions.k8s.io/v1', 'CustomResourceDefinition', name);
          const established = current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
          return established ? current : undefined;
        },
        { timeoutMs, intervalMs: 100 },
      );
      const spec = (crd as CrdObject).spec;
      for (const version of spec?.versions ?? []) {
        if (version.served === false) continue;
        const apiVersion = `${spec?.group}/${version.name}`;
        await waitFor(
          `${spec?.names?.kind} to be served at ${apiVersion}`,
          async () => {
            this.discovery.delete(apiVersion);
            return (await this.findResource(apiVersion, spec?.names?.kind ?? '')) ? true : undefined;
          },
          { timeoutMs, intervalMs: 100 },
        );
      }
    }
  }

  /**
   * Plural and scope of a kind, from discovery (`/api/v1`, `/apis/<group>/<version>`). Discovery
   * rather than a lowercase+"s" rule because it is right for every kind (e.g. Endpoints,
   * NetworkPolicy) and for our kubevisor.io CRDs it returns exactly the plural the CRD declares.
   */
  async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    let found = await this.findResource(apiVersion, kind);
    if (!found) {
      // A CRD may have been installed since the last lookup.
      this.discovery.delete(apiVersion);
      found = await this.findResource(apiVersion, kind);
    }
    if (!found) throw new Error(`the API server serves no kind ${kind} in ${apiVersion}`);
    return { plural: found.name, namespaced: found.namespaced };
  }

  /** Any request; JSON in and out. Throws KubeApiError for non-2xx answers. */
  request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.credentials.server);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string | string[]> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = options.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (this.credentials.token) headers.authorization = `Bearer ${this.credentials.token}`;
    if (this.impersonation) {
      headers['impersonate-user'] = this.impersonation.user;
      if (this.impersonation.groups?.length) headers['impersonate-group'] = this.impersonation.groups;
    }
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const pathForErrors = url.pathname + url.search;
    return new Promise<T>((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            try {
              resolve((text ? JSON.parse(text) : undefined) as T);
            } catch {
              // Non-JSON success bodies (e.g. /readyz's "ok") are returned as text.
              resolve(text as T);
            }
            return;
          }
          reject(apiError(status, text, method, pathForErrors));
        });
      });
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`${method} ${pathForErrors}: no answer in ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  private async objectPath(apiVersion: string, kind: string, namespace?: string, name?: string): Promise<string> {
    const resource = await this.resource(apiVersion, kind);
    // Like kubectl, a namespaced object without a namespace goes to `default`.
    const path = resourcePath(apiVersion, resource, resource.namespaced ? (namespace ?? 'default') : undefined);
    return name === undefined ? path : `${path}/${encodeURIComponent(name)}`;
  }

  private async findResource(apiVersion: string, kind: string): Promise<DiscoveredResource | undefined> {
    let resources = this.discovery.get(apiVersion);
    if (!resources) {
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      try {
        const list = await this.request<{ resources: DiscoveredResource[] }>('GET', base);
        // Subresources (pods/status) share the kind of their parent; skip them.
        resources = list.resources.filter((r) => !r.name.includes('/'));
      } catch (error) {
        // A group/version that is not (yet) served is "no such kind", not an error.
        if (error instanceof KubeApiError && error.code === 404) return undefined;
        throw error;
      }
      this.discovery.set(apiVersion, resources);
    }
    return resources.find((r) => r.kind === kind);
  }
}

interface CrdObject extends KubeObject {
  spec?: { group?: string; names?: { kind?: string }; versions?: { name: string; served?: boolean }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

function resourcePath(apiVersion: string, resource: ResourceInfo, namespace: string | undefined): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${base}${ns}/${resource.plural}`;
}

function apiError(status: number, text: string, method: string, path: string): KubeApiError {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not a Status object (e.g. a proxy error page); keep the text.
  }
  if (isStatus(body)) {
    return new KubeApiError(
      body.code ?? status,
      body.reason ?? '',
      body.message ?? '',
      body.details?.causes ?? [],
      method,
      path,
      body,
    );
  }
  return new KubeApiError(status, '', text.trim(), [], method, path, body);
}

interface StatusBody {
  kind: 'Status';
  code?: number;
  reason?: string;
  message?: string;
  details?: { causes?: KubeStatusCause[] };
}

function isStatus(body: unknown): body is StatusBody {
  return typeof body === 'object' && body !== null && (body as { kind?: unknown }).kind === 'Status';
}
