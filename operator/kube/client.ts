// The operator's Kubernetes REST client, over node:https with a keep-alive agent. No
// @kubernetes/client-node: it is ESM-only and far more than the operator needs, and raw REST keeps
// the API server's own answers (status codes, Status bodies) visible. Generic over kinds: paths
// come from discovery, so CRDs and built-in kinds go through the same calls.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeCredentials } from './config';
import { KubeApiError, apiErrorFromResponse, apiErrorFromStatus, isApiError, isNotFound, isStatus } from './errors';
import { EventCache, REPORTING_COMPONENT, buildEvent, eventTimestamp, type EventSpec } from './events';
import { addFinalizerPatch, removeFinalizerPatch, type JsonPatchOperation } from './json-patch';
import type { KubeList, KubeObject, ObjectMeta } from './object';
import { RequestCounter, resourceOf, verbOf, type RequestCounts, type RequestCountsByResource } from './request-count';
import { JsonLineSplitter } from './watch-stream';

export { KubeApiError, type KubeStatusCause } from './errors';
export type { KubeCredentials } from './config';
export type { KubeObject, KubeList } from './object';
export type { EventSpec, EventType } from './events';
export type { RequestCounts, RequestCountsByResource } from './request-count';

/** The operator's server-side-apply field manager; one constant name for every write it makes. */
export const FIELD_MANAGER = 'kubevisor';

/** What identifies an object for a write: its kind and name (and namespace); the rest is ignored. */
export type KubeObjectRef = Pick<KubeObject, 'apiVersion' | 'kind'> & { metadata: ObjectMeta };

/** Impersonation headers: act as another user (the caller must be allowed to impersonate). */
export interface Impersonation {
  user: string;
  groups?: string[];
}

export interface KubeClientOptions {
  impersonation?: Impersonation;
  /** Deadline of one request, from sending to the last byte (for a watch: until the headers). @default 30000 */
  timeoutMs?: number;
  /** Field manager of every write unless a call names another. @default 'kubevisor' */
  fieldManager?: string;
  /** How often a `tokenFile` is re-read (service account tokens rotate). @default 60000 */
  tokenRefreshMs?: number;
  /** Identical events within this window bump `count` instead of creating a new Event. @default 300000 */
  eventDedupWindowMs?: number;
  /** `reportingInstance` of Events. @default os.hostname() (the pod name in a pod) */
  reportingInstance?: string;
  /** @default 'kubevisor/<node version>' */
  userAgent?: string;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; all pages are fetched and joined. Without it the server answers in one page. */
  limit?: number;
}

export interface WriteOptions {
  /** Validate and default on the server but persist nothing (`dryRun=All`). */
  dryRun?: boolean;
  /** Defaults to the client's field manager (`kubevisor`). */
  fieldManager?: string;
  /** How the server treats unknown or duplicate fields. */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
}

export interface ApplyOptions extends WriteOptions {
  /** Take ownership of fields another manager owns instead of failing with 409. */
  force?: boolean;
  /** e.g. 'status' to apply to the /status subresource. */
  subresource?: string;
}

export interface PatchOptions extends WriteOptions {
  subresource?: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  /** Resolve instead of throwing when the object does not exist. */
  ignoreNotFound?: boolean;
  /** Delete only this exact object (409 otherwise). */
  preconditions?: { resourceVersion?: string; uid?: string };
  dryRun?: boolean;
}

/** Where a kind lives in the REST API, from discovery. */
export interface ResourceInfo {
  /** Plural resource name used in URLs, e.g. `virtualmachines`. */
  plural: string;
  namespaced: boolean;
}

export type PatchType = 'merge' | 'json' | 'strategic';

const patchContentTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export const APPLY_PATCH_CONTENT_TYPE = 'application/apply-patch+yaml';

export interface WatchOptions {
  /** Start after this version (from a list or the last event); unset = "now", with synthetic ADDED events. */
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** The server ends the watch after this long (a normal end: re-watch from the last version). */
  timeoutSeconds?: number;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Abort when no byte arrives for this long (a dead connection that TCP has not noticed).
   * @default timeoutSeconds + 30 s when timeoutSeconds is set, else no limit
   */
  idleTimeoutMs?: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface WatchEvent<T> {
  type: WatchEventType;
  /** For BOOKMARK only `metadata.resourceVersion` is meaningful. */
  object: T;
}

interface DiscoveredResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

interface CrdObject extends KubeObject {
  spec?: { group?: string; names?: { kind?: string }; versions?: { name: string; served?: boolean }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

export class KubeClient {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly counter = new RequestCounter();
  /** apiVersion → resources served under it. Refreshed on a miss, since CRDs add kinds at run time. */
  private readonly discovery = new Map<string, DiscoveredResource[]>();
  private readonly events: EventCache;
  private readonly timeoutMs: number;
  private readonly fieldManager: string;
  private readonly tokenRefreshMs: number;
  private readonly reportingInstance: string;
  private readonly userAgent: string;
  private tokenCache?: { token: string; readAt: number };

  constructor(
    readonly credentials: KubeCredentials,
    private readonly options: KubeClientOptions = {},
  ) {
    const url = new URL(credentials.server);
    if (url.protocol === 'http:') {
      // Only loopback stand-ins in tests speak plain HTTP; a real API server always uses TLS.
      this.transport = http;
      this.agent = new http.Agent({ keepAlive: true });
    } else {
      this.transport = https;
      this.agent = new https.Agent({
        keepAlive: true,
        ca: credentials.caPem,
        cert: credentials.clientCertPem,
        key: credentials.clientKeyPem,
        rejectUnauthorized: !credentials.insecureSkipTlsVerify,
        servername: credentials.tlsServerName,
      });
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fieldManager = options.fieldManager ?? FIELD_MANAGER;
    this.tokenRefreshMs = options.tokenRefreshMs ?? 60_000;
    this.reportingInstance = options.reportingInstance ?? os.hostname();
    this.userAgent = options.userAgent ?? `kubevisor/${process.version}`;
    this.events = new EventCache(options.eventDedupWindowMs ?? 300_000);
  }

  /** Requests sent so far, by verb (a copy). */
  get requestCount(): RequestCounts {
    return this.counter.snapshot();
  }

  /** Requests sent so far, by verb and resource (a copy). */
  get requestCountByResource(): RequestCountsByResource {
    return this.counter.snapshotByResource();
  }

  /** The same server and credentials, acting as another user (for RBAC tests). */
  impersonate(impersonation: Impersonation): KubeClient {
    return new KubeClient(this.credentials, { ...this.options, impersonation });
  }

  /** The same server, authenticated only by a bearer token (no client certificate). */
  withToken(token: string): KubeClient {
    const { server, caPem, insecureSkipTlsVerify, tlsServerName } = this.credentials;
    return new KubeClient(
      { server, caPem, insecureSkipTlsVerify, tlsServerName, token },
      { ...this.options, impersonation: undefined },
    );
  }

  /** Closes every connection of this client, idle or not (open watches end with an error). Call last. */
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
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Items of a list; without `namespace`, a namespaced kind is listed across all namespaces. */
  async list<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options: ListOptions = {},
  ): Promise<T[]> {
    const path = await this.collectionPath(apiVersion, kind, options.namespace);
    const items: T[] = [];
    let continueToken: string | undefined;
    do {
      const page = await this.request<KubeList<T>>('GET', path, {
        query: {
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
          limit: options.limit,
          continue: continueToken,
        },
      });
      items.push(...page.items);
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken);
    // List items carry no apiVersion/kind; fill them in so items look like what get returns.
    return items.map((item) => ({ ...item, apiVersion, kind }));
  }

  async create<T extends KubeObject = KubeObject>(object: T, options: WriteOptions = {}): Promise<T> {
    const path = await this.objectPath(object.apiVersion, object.kind, object.metadata.namespace);
    return this.request<T>('POST', path, { body: object, query: this.writeQuery(options) });
  }

  /** PUT: replaces the object; optimistic concurrency through `metadata.resourceVersion` (409 if stale). */
  async update<T extends KubeObject = KubeObject>(
    object: T,
    options: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    const path = await this.namedPath(object, options.subresource);
    return this.request<T>('PUT', path, { body: object, query: this.writeQuery(options) });
  }

  /** PUT to /status: replaces only the status (the server ignores the rest). */
  updateStatus<T extends KubeObject = KubeObject>(object: T, options: WriteOptions = {}): Promise<T> {
    return this.update(object, { ...options, subresource: 'status' });
  }

  /**
   * Server-side apply: PATCH with `application/apply-patch+yaml` (JSON is YAML) under field
   * manager `kubevisor` unless told otherwise.
   */
  async apply<T extends KubeObject = KubeObject>(object: T, options: ApplyOptions = {}): Promise<T> {
    const path = await this.namedPath(object, options.subresource);
    return this.request<T>('PATCH', path, {
      body: object,
      contentType: APPLY_PATCH_CONTENT_TYPE,
      query: { ...this.writeQuery(options), force: options.force ? true : undefined },
    });
  }

  /** Server-side apply to /status: the object carries apiVersion, kind, metadata.name/namespace and status. */
  applyStatus<T extends KubeObject = KubeObject>(
    object: T,
    options: Omit<ApplyOptions, 'subresource'> = {},
  ): Promise<T> {
    return this.apply(object, { ...options, subresource: 'status' });
  }

  /** A merge patch (RFC 7386), JSON patch (RFC 6902) or strategic merge patch of the object `target` names. */
  async patch<T extends KubeObject = KubeObject>(
    target: KubeObjectRef,
    type: PatchType,
    patch: unknown,
    options: PatchOptions = {},
  ): Promise<T> {
    const path = await this.namedPath(target, options.subresource);
    return this.request<T>('PATCH', path, {
      body: patch,
      contentType: patchContentTypes[type],
      query: this.writeQuery(options),
    });
  }

  /** A patch of /status (merge patch unless told otherwise). */
  patchStatus<T extends KubeObject = KubeObject>(
    target: KubeObjectRef,
    patch: unknown,
    type: PatchType = 'merge',
    options: Omit<PatchOptions, 'subresource'> = {},
  ): Promise<T> {
    return this.patch<T>(target, type, patch, { ...options, subresource: 'status' });
  }

  /**
   * Removes finalizer `name` with a guarded JSON patch (test resourceVersion and the entry, remove
   * its index), so it applies only to the object exactly as the caller read it. Resolves to the
   * object unchanged, without a request, when it does not carry the finalizer. A failed guard
   * (the server answers 422 for a failed `test`) is thrown as 409 Conflict, because it means the
   * same as a stale update: re-read and try again.
   */
  async removeFinalizer<T extends KubeObject = KubeObject>(object: T, name: string): Promise<T> {
    const ops = removeFinalizerPatch(object, name);
    if (!ops) return object;
    return this.guardedPatch<T>(object, ops, `remove finalizer ${name}`);
  }

  /** Adds finalizer `name` with a guarded JSON patch; the same contract as removeFinalizer. */
  async addFinalizer<T extends KubeObject = KubeObject>(object: T, name: string): Promise<T> {
    const ops = addFinalizerPatch(object, name);
    if (!ops) return object;
    return this.guardedPatch<T>(object, ops, `add finalizer ${name}`);
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
    if (options.preconditions) body.preconditions = options.preconditions;
    if (options.dryRun) body.dryRun = ['All'];
    try {
      await this.request('DELETE', path, { body });
    } catch (error) {
      if (options.ignoreNotFound && isNotFound(error)) return;
      throw error;
    }
  }

  /**
   * Records a core/v1 Event about `involved` (reportingComponent `kubevisor`). An identical event
   * (same object, type, reason and message) within the de-duplication window bumps the count and
   * lastTimestamp of the one already written instead of creating another. Rejects on API errors;
   * callers usually log and go on, since an event is never worth failing a reconcile for.
   */
  createEvent(involved: KubeObject, spec: EventSpec): Promise<KubeObject> {
    const key = EventCache.keyOf(involved, spec);
    return this.events.serialise(key, async () => {
      const nowMs = performance.now();
      const now = new Date();
      const recent = this.events.recent(key, nowMs);
      if (recent) {
        const count = recent.count + 1;
        try {
          const patched = await this.request<KubeObject>(
            'PATCH',
            `/api/v1/namespaces/${encodeURIComponent(recent.namespace)}/events/${encodeURIComponent(recent.name)}`,
            { body: { count, lastTimestamp: eventTimestamp(now) }, contentType: patchContentTypes.merge },
          );
          this.events.remember(key, { ...recent, count, lastSeen: nowMs });
          return patched;
        } catch (error) {
          // Events expire (1 h by default); then write a fresh one.
          if (!isNotFound(error)) throw error;
          this.events.forget(key);
        }
      }
      const event = buildEvent(
        involved,
        spec,
        { reportingComponent: REPORTING_COMPONENT, reportingInstance: this.reportingInstance },
        now,
      );
      const namespace = event.metadata.namespace ?? 'default';
      const created = await this.request<KubeObject>(
        'POST',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        {
          body: event,
        },
      );
      this.events.remember(key, {
        namespace,
        name: created.metadata?.name ?? event.metadata.name ?? '',
        count: 1,
        lastSeen: nowMs,
      });
      return created;
    });
  }

  /**
   * Streams a watch of `path` (a collection path, e.g. `/api/v1/namespaces/x/pods`). Calls `onEvent`
   * for each ADDED/MODIFIED/DELETED/BOOKMARK event in order; when it returns a promise, reading
   * pauses until it settles, so a slow consumer holds the server back instead of buffering.
   * Resolves when the server ends the stream (e.g. after timeoutSeconds) or `signal` aborts.
   * Rejects with KubeApiError on an error answer or an ERROR event (410 Expired: relist), and
   * with a plain Error when the connection breaks.
   */
  async watch<T = KubeObject>(
    path: string,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void | Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    if (signal?.aborted) return;
    const url = this.url(path, {
      watch: 'true',
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: options.allowWatchBookmarks ? 'true' : undefined,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
    });
    const where = url.pathname + url.search;
    const { req, response } = this.open('GET', url, {}, undefined, signal);
    let failure: Error | undefined;
    const fail = (error: Error): void => {
      failure ??= error;
      req.destroy(error);
    };
    const headerTimer = setTimeout(
      () => fail(new Error(`GET ${where}: no answer in ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    let res: http.IncomingMessage;
    try {
      res = await response;
    } catch (error) {
      if (signal?.aborted) return;
      throw failure ?? error;
    } finally {
      clearTimeout(headerTimer);
    }
    if (res.statusCode !== 200) {
      const text = await readText(res).catch(() => '');
      throw this.errorFor(res.statusCode ?? 0, text, 'GET', where);
    }
    const idleMs =
      options.idleTimeoutMs ?? (options.timeoutSeconds ? options.timeoutSeconds * 1000 + 30_000 : undefined);
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      if (idleMs === undefined) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => fail(new Error(`GET ${where}: watch silent for ${idleMs} ms`)), idleMs);
    };
    const splitter = new JsonLineSplitter();
    const deliver = async (line: string): Promise<void> => {
      let event: { type?: unknown; object?: unknown };
      try {
        event = JSON.parse(line) as { type?: unknown; object?: unknown };
      } catch {
        throw new Error(`GET ${where}: malformed watch event: ${line.slice(0, 200)}`);
      }
      if (event.type === 'ERROR') {
        const status = isStatus(event.object)
          ? event.object
          : { kind: 'Status' as const, message: JSON.stringify(event.object) };
        throw apiErrorFromStatus(status, 'GET', where);
      }
      if (
        event.type === 'ADDED' ||
        event.type === 'MODIFIED' ||
        event.type === 'DELETED' ||
        event.type === 'BOOKMARK'
      ) {
        await onEvent({ type: event.type, object: event.object as T });
      }
      // Other types are ignored: the watch protocol may grow, and an unknown event is no reason to drop the stream.
    };
    try {
      armIdle();
      for await (const chunk of res as AsyncIterable<Buffer>) {
        for (const line of splitter.push(chunk)) {
          await deliver(line);
          armIdle();
        }
        armIdle();
      }
      const last = splitter.end();
      if (last !== undefined) await deliver(last);
    } catch (error) {
      if (signal?.aborted) return;
      throw failure ?? error;
    } finally {
      clearTimeout(idleTimer);
      if (!res.complete) res.destroy();
    }
  }

  /**
   * Installs CustomResourceDefinitions (server-side apply, so calling it again with the same CRDs
   * is harmless) and waits until each is Established and its kinds are served by discovery, so the
   * next create of a custom resource cannot race the CRD.
   */
  async createCrdsAndWaitEstablished(crds: KubeObject[], options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = performance.now() + (options.timeoutMs ?? 60_000);
    for (const crd of crds) await this.apply(crd, { force: true });
    for (const crd of crds) {
      const name = crd.metadata.name ?? '';
      await pollUntil(`CRD ${name} to be Established`, deadline, async () => {
        const current = await this.get<CrdObject>('apiextensions.k8s.io/v1', 'CustomResourceDefinition', name);
        return current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      });
      const spec = (crd as CrdObject).spec;
      for (const version of spec?.versions ?? []) {
        if (version.served === false) continue;
        const apiVersion = `${spec?.group}/${version.name}`;
        await pollUntil(`${spec?.names?.kind} to be served at ${apiVersion}`, deadline, async () => {
          this.discovery.delete(apiVersion);
          return (await this.findResource(apiVersion, spec?.names?.kind ?? '')) !== undefined;
        });
      }
    }
  }

  /**
   * Plural and scope of a kind, from discovery (`/api/v1`, `/apis/<group>/<version>`). Discovery
   * rather than a lowercase+"s" rule because it is right for every kind (e.g. Endpoints,
   * NetworkPolicy) and for our CRDs it returns exactly the plural the CRD declares.
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

  /**
   * The collection path of a kind, e.g. for an Informer: in one namespace, or across all
   * namespaces when `namespace` is undefined.
   */
  async collectionPath(apiVersion: string, kind: string, namespace?: string): Promise<string> {
    const resource = await this.resource(apiVersion, kind);
    return resourcePath(apiVersion, resource.plural, resource.namespaced ? namespace : undefined);
  }

  /** The path of one object (or of the collection it would be created in, without `name`). */
  async objectPath(apiVersion: string, kind: string, namespace?: string, name?: string): Promise<string> {
    const resource = await this.resource(apiVersion, kind);
    // Like kubectl, a namespaced object without a namespace goes to `default`.
    const path = resourcePath(apiVersion, resource.plural, resource.namespaced ? (namespace ?? 'default') : undefined);
    return name === undefined ? path : `${path}/${encodeURIComponent(name)}`;
  }

  /** Any request; JSON in and out. Throws KubeApiError for non-2xx answers. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = this.url(path, options.query);
    const where = url.pathname + url.search;
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { ...options.headers };
    if (payload) headers['content-type'] = options.contentType ?? 'application/json';
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const { req, response } = this.open(method, url, headers, payload, options.signal);
    let timedOut: Error | undefined;
    const timer = setTimeout(() => {
      timedOut = new Error(`${method} ${where}: no answer in ${timeoutMs} ms`);
      req.destroy(timedOut);
    }, timeoutMs);
    try {
      const res = await response;
      const text = await readText(res);
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) throw this.errorFor(status, text, method, where);
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        // Non-JSON success bodies (e.g. /readyz's "ok") are returned as text.
        return text as T;
      }
    } catch (error) {
      throw timedOut ?? error;
    } finally {
      clearTimeout(timer);
    }
  }

  private async guardedPatch<T extends KubeObject>(object: T, ops: JsonPatchOperation[], what: string): Promise<T> {
    try {
      return await this.patch<T>(object, 'json', ops);
    } catch (error) {
      if (isApiError(error, 422)) {
        throw new KubeApiError(
          409,
          'Conflict',
          `${what}: ${object.kind} ${object.metadata.name ?? ''} changed since resourceVersion ${object.metadata.resourceVersion ?? ''} (${error.serverMessage})`,
          error.causes,
          error.method,
          error.path,
          error.body,
        );
      }
      throw error;
    }
  }

  private writeQuery(options: WriteOptions): Record<string, string | undefined> {
    return {
      fieldManager: options.fieldManager ?? this.fieldManager,
      fieldValidation: options.fieldValidation,
      dryRun: options.dryRun ? 'All' : undefined,
    };
  }

  private async namedPath(object: KubeObjectRef, subresource?: string): Promise<string> {
    const name = object.metadata.name;
    if (!name) throw new Error(`${object.kind} has no metadata.name`);
    const path = await this.objectPath(object.apiVersion, object.kind, object.metadata.namespace, name);
    return subresource ? `${path}/${subresource}` : path;
  }

  private url(path: string, query: RequestOptions['query']): URL {
    const url = new URL(path, this.credentials.server);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** Sends a request; the promise settles when the response headers arrive (or the request fails). */
  private open(
    method: string,
    url: URL,
    extraHeaders: Record<string, string>,
    payload: Buffer | undefined,
    signal: AbortSignal | undefined,
  ): { req: http.ClientRequest; response: Promise<http.IncomingMessage> } {
    this.counter.count(verbOf(method, url.pathname, url.searchParams.get('watch')), resourceOf(url.pathname));
    const headers: Record<string, string | string[]> = {
      accept: 'application/json',
      'user-agent': this.userAgent,
      ...extraHeaders,
    };
    if (payload) headers['content-length'] = String(payload.length);
    const token = this.currentToken();
    if (token) headers.authorization = `Bearer ${token}`;
    const impersonation = this.options.impersonation;
    if (impersonation) {
      headers['impersonate-user'] = impersonation.user;
      if (impersonation.groups?.length) headers['impersonate-group'] = impersonation.groups;
    }
    let req!: http.ClientRequest;
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      req = this.transport.request(url, { method, headers, agent: this.agent, signal }, resolve);
      req.on('error', reject);
      req.end(payload);
    });
    return { req, response };
  }

  private errorFor(status: number, text: string, method: string, where: string): KubeApiError {
    // A rotated token is picked up at once instead of after the refresh period.
    if (status === 401) this.tokenCache = undefined;
    return apiErrorFromResponse(status, text, method, where);
  }

  /** The bearer token: from `tokenFile` (re-read every tokenRefreshMs), else the fixed `token`. */
  private currentToken(): string | undefined {
    const { token, tokenFile } = this.credentials;
    if (!tokenFile) return token;
    const now = performance.now();
    if (!this.tokenCache || now - this.tokenCache.readAt >= this.tokenRefreshMs) {
      try {
        this.tokenCache = { token: fs.readFileSync(tokenFile, 'utf8').trim(), readAt: now };
      } catch {
        // Keep the token we had: kubelet replaces the file atomically, but a transient read error
        // must not drop authentication altogether.
        this.tokenCache = { token: this.tokenCache?.token ?? token ?? '', readAt: now };
      }
    }
    return this.tokenCache.token || undefined;
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
        if (isNotFound(error)) return undefined;
        throw error;
      }
      this.discovery.set(apiVersion, resources);
    }
    return resources.find((r) => r.kind === kind);
  }
}

/** `/api/v1[/namespaces/<ns>]/<plural>` or `/apis/<group>/<version>[/namespaces/<ns>]/<plural>`. */
export function resourcePath(apiVersion: string, plural: string, namespace?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${base}${ns}/${plural}`;
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Polls `probe` every 100 ms until it holds; throws when `deadline` (performance.now() ms) passes. */
async function pollUntil(what: string, deadline: number, probe: () => Promise<boolean>): Promise<void> {
  let lastError: unknown;
  for (;;) {
    try {
      if (await probe()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const last = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out waiting for ${what}${last}`);
    }
    await sleep(100);
  }
}
