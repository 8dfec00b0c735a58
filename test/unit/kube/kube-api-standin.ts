/**
 * KubeApiStandin: a loopback node:http stand-in for the Kubernetes API server, for unit tests of the
 * runtime layer (client, informer, leader election). It is NOT an API server: it keeps objects in
 * memory and models only what those tests rely on, the way the real server behaves:
 * - discovery (`/api/v1`, `/apis/<group>/<version>`) for the kinds it is given, plus the kinds of
 *   CRDs written to it (Established after `crdEstablishDelayMs`; no schema validation);
 * - get, create (409 AlreadyExists), update with optimistic concurrency (409 Conflict on a stale
 *   resourceVersion), merge / JSON (RFC 6902, `test` failure → 422) / apply patches (apply is a
 *   create-or-merge here: no field ownership), delete (finalizers → deletionTimestamp), /status;
 * - list with `limit`/`continue` served from a snapshot (an expired token → 410), label selectors
 *   (=, ==, !=, exists, !exists) and metadata.name/metadata.namespace field selectors;
 * - watch from a resourceVersion (history replay, then live events), bookmarks, timeoutSeconds, and
 *   410 for a version older than the compacted history (as an ERROR event, like the watch cache,
 *   or as an HTTP 410 answer);
 * - opaque resourceVersions (not numbers), so a client that compares them numerically fails here.
 * Test controls: inject failures, partition a bearer token (503), drop or end watch streams, send
 * bookmarks, compact history, expire continue tokens. Every request is recorded.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandinKind {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export const STANDIN_KINDS: StandinKind[] = [
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  { apiVersion: 'v1', kind: 'Event', plural: 'events', namespaced: true },
  { apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespaced: true },
  { apiVersion: 'kubevisor.io/v1alpha1', kind: 'VirtualMachine', plural: 'virtualmachines', namespaced: true },
  {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    plural: 'customresourcedefinitions',
    namespaced: false,
  },
];

export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    finalizers?: string[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Failure {
  method?: string;
  pathIncludes?: string;
  queryHas?: string;
  status: number;
  reason: string;
  remaining: number;
}

interface HistoryEntry {
  n: number;
  plural: string;
  namespace?: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: StoredObject;
}

interface Watcher {
  kind: StandinKind;
  namespace?: string;
  labelSelector: string | null;
  fieldSelector: string | null;
  bookmarks: boolean;
  res: http.ServerResponse;
  timer?: NodeJS.Timeout;
}

interface Route {
  kind: StandinKind;
  namespace?: string;
  name?: string;
  subresource?: string;
}

class StandinError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly causes: { reason?: string; message?: string; field?: string }[] = [],
  ) {
    super(message);
  }
}

export class KubeApiStandin {
  readonly requests: RecordedRequest[] = [];
  /**
   * A new CRD becomes Established (and its kinds served) this long after it is written, as the
   * real server's establishing controller does it asynchronously; 0 = at once.
   */
  crdEstablishDelayMs = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** How a watch from a compacted version fails: an ERROR event (watch cache) or an HTTP 410 answer. */
  goneMode: 'event' | 'http' = 'event';
  private readonly objects = new Map<string, StoredObject>();
  private readonly history: HistoryEntry[] = [];
  private readonly rvs = new Map<string, number>();
  private readonly watchers = new Set<Watcher>();
  private readonly snapshots = new Map<string, { items: StoredObject[]; rv: string }>();
  private readonly failures: Failure[] = [];
  private readonly partitioned = new Set<string>();
  private readonly salt = Math.random().toString(36).slice(2, 6);
  private counter = 0;
  /** Versions at or below this are compacted: a watch from them gets 410. */
  private floor = 0;

  private constructor(
    private readonly server: http.Server,
    readonly kinds: StandinKind[],
  ) {}

  static async start(kinds: StandinKind[] = STANDIN_KINDS): Promise<KubeApiStandin> {
    const server = http.createServer();
    // A copy: CRDs add kinds to it.
    const standin = new KubeApiStandin(server, [...kinds]);
    server.on('request', (req, res) => standin.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return standin;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The latest resourceVersion the stand-in issued. */
  get currentResourceVersion(): string {
    return this.rvFor(this.counter);
  }

  get activeWatches(): number {
    return this.watchers.size;
  }

  /** Requests that opened a watch. */
  watchRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'GET' && r.query.get('watch') === 'true');
  }

  /** List requests (GET on a collection without watch). */
  listRequests(plural: string): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === 'GET' && r.query.get('watch') !== 'true' && r.path.endsWith(`/${plural}`),
    );
  }

  /** The next `times` requests matching method, path and query parameter fail with `status`. */
  failNext(
    match: { method?: string; pathIncludes?: string; queryHas?: string },
    status: number,
    reason = 'InternalError',
    times = 1,
  ): void {
    this.failures.push({ ...match, status, reason, remaining: times });
  }

  /** Requests with this bearer token get 503 until healed (a client cut off from the server). */
  partition(token: string): void {
    this.partitioned.add(token);
  }

  heal(token: string): void {
    this.partitioned.delete(token);
  }

  /** Writes an object as another client would (sets uid, resourceVersion; emits a watch event). */
  upsert(object: StoredObject): StoredObject {
    const kind = this.kindOf(object.apiVersion, object.kind);
    const key = storeKey(kind.plural, object.metadata.namespace, object.metadata.name);
    const old = this.objects.get(key);
    return this.write(kind, key, structuredClone(object), old);
  }

  /** Deletes an object as another client would. */
  remove(apiVersion: string, kindName: string, name: string, namespace?: string): void {
    const kind = this.kindOf(apiVersion, kindName);
    const key = storeKey(kind.plural, namespace, name);
    const old = this.objects.get(key);
    if (old) this.erase(kind, key, old);
  }

  stored(apiVersion: string, kindName: string, name: string, namespace?: string): StoredObject | undefined {
    const kind = this.kindOf(apiVersion, kindName);
    const object = this.objects.get(storeKey(kind.plural, namespace, name));
    return object && structuredClone(object);
  }

  /** Sends a BOOKMARK at the current version to every watch that asked for bookmarks. */
  bookmark(): string {
    const rv = this.currentResourceVersion;
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      this.send(w, {
        type: 'BOOKMARK',
        object: { apiVersion: w.kind.apiVersion, kind: w.kind.kind, metadata: { resourceVersion: rv } },
      });
    }
    return rv;
  }

  /** Breaks every watch connection mid-stream (a network failure). */
  dropWatches(): void {
    for (const w of [...this.watchers]) {
      this.forgetWatcher(w);
      w.res.socket?.destroy();
    }
  }

  /** Ends every watch cleanly, as the server does when timeoutSeconds passes. */
  endWatches(): void {
    for (const w of [...this.watchers]) {
      this.forgetWatcher(w);
      w.res.end();
    }
  }

  /** Forgets the event history: a watch from any version issued so far gets 410. */
  compact(): void {
    this.floor = this.counter;
    this.history.length = 0;
  }

  /** Continue tokens issued so far stop working (410), as after an etcd compaction. */
  expireContinueTokens(): void {
    this.snapshots.clear();
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const w of [...this.watchers]) {
      this.forgetWatcher(w);
      w.res.destroy();
    }
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- request handling ----

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://standin');
      const body = Buffer.concat(chunks).toString('utf8');
      this.requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
      });
      try {
        this.route(req, res, url, body);
      } catch (error) {
        if (error instanceof StandinError) this.fail(res, error);
        else this.fail(res, new StandinError(500, 'InternalError', String(error)));
      }
    });
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: string): void {
    const method = req.method ?? 'GET';
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token && this.partitioned.has(token)) throw new StandinError(503, 'ServiceUnavailable', 'partitioned');
    const failure = this.failures.find(
      (f) =>
        f.remaining > 0 &&
        (!f.method || f.method === method) &&
        (!f.pathIncludes || url.pathname.includes(f.pathIncludes)) &&
        (!f.queryHas || url.searchParams.has(f.queryHas)),
    );
    if (failure) {
      failure.remaining--;
      throw new StandinError(failure.status, failure.reason, `injected failure ${failure.status}`);
    }
    const discovery = this.discovery(url.pathname);
    if (discovery) return this.json(res, 200, discovery);
    const route = this.parse(url.pathname);
    if (!route)
      throw new StandinError(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const { kind, namespace, name, subresource } = route;
    if (name === undefined) {
      if (method === 'GET' && url.searchParams.get('watch') === 'true')
        return this.watch(res, kind, namespace, url.searchParams);
      if (method === 'GET') return this.json(res, 200, this.list(kind, namespace, url.searchParams));
      if (method === 'POST') return this.json(res, 201, this.create(kind, namespace, parseBody(body)));
      throw new StandinError(405, 'MethodNotAllowed', `${method} on a collection`);
    }
    const key = storeKey(kind.plural, namespace, name);
    const current = this.objects.get(key);
    const notFound = (): StandinError => new StandinError(404, 'NotFound', `${kind.plural} "${name}" not found`, []);
    switch (method) {
      case 'GET':
        if (!current) throw notFound();
        return this.json(res, 200, current);
      case 'PUT': {
        if (!current) throw notFound();
        const incoming = parseBody(body) as StoredObject;
        const rv = incoming.metadata?.resourceVersion;
        if (rv && rv !== current.metadata.resourceVersion) throw conflict(kind, name);
        return this.json(
          res,
          200,
          this.write(kind, key, this.merged(current, incoming, subresource, 'replace'), current),
        );
      }
      case 'PATCH':
        return this.json(
          res,
          200,
          this.patch(kind, key, namespace, name, current, req.headers['content-type'] ?? '', body, subresource),
        );
      case 'DELETE': {
        if (!current) throw notFound();
        const options = body ? (parseBody(body) as { preconditions?: { resourceVersion?: string } }) : {};
        const wantRv = options.preconditions?.resourceVersion;
        if (wantRv && wantRv !== current.metadata.resourceVersion) throw conflict(kind, name);
        if ((current.metadata.finalizers ?? []).length > 0) {
          const marked = structuredClone(current);
          marked.metadata.deletionTimestamp ??= new Date().toISOString();
          return this.json(res, 200, this.write(kind, key, marked, current));
        }
        this.erase(kind, key, current);
        return this.json(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success', metadata: {} });
      }
      default:
        throw new StandinError(405, 'MethodNotAllowed', method);
    }
  }

  private discovery(pathname: string): unknown {
    const apiVersion = pathname === '/api/v1' ? 'v1' : /^\/apis\/([^/]+\/[^/]+)$/.exec(pathname)?.[1];
    if (!apiVersion) return undefined;
    const resources = this.kinds.filter((k) => k.apiVersion === apiVersion);
    if (resources.length === 0) throw new StandinError(404, 'NotFound', `no group version ${apiVersion}`);
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: apiVersion,
      resources: resources.flatMap((k) => [
        {
          name: k.plural,
          kind: k.kind,
          namespaced: k.namespaced,
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
        },
        { name: `${k.plural}/status`, kind: k.kind, namespaced: k.namespaced, verbs: ['get', 'update', 'patch'] },
      ]),
    };
  }

  private parse(pathname: string): Route | undefined {
    const parts = pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    let apiVersion: string;
    let rest: string[];
    if (parts[0] === 'api' && parts[1] === 'v1') {
      apiVersion = 'v1';
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 3) {
      apiVersion = `${parts[1]}/${parts[2]}`;
      rest = parts.slice(3);
    } else {
      return undefined;
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const kind = this.kinds.find((k) => k.apiVersion === apiVersion && k.plural === rest[0]);
    if (!kind) return undefined;
    return { kind, namespace, name: rest[1], subresource: rest[2] };
  }

  private list(kind: StandinKind, namespace: string | undefined, query: URLSearchParams): unknown {
    const limit = Number(query.get('limit') ?? 0);
    const token = query.get('continue');
    let snapshot: { items: StoredObject[]; rv: string };
    let offset = 0;
    if (token) {
      const decoded = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { id: string; offset: number };
      const found = this.snapshots.get(decoded.id);
      if (!found) {
        throw new StandinError(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result.',
        );
      }
      snapshot = found;
      offset = decoded.offset;
    } else {
      const items = [...this.objects.values()]
        .filter((o) => this.matches(kind, namespace, query.get('labelSelector'), query.get('fieldSelector'), o))
        .sort((a, b) =>
          storeKey('', a.metadata.namespace, a.metadata.name).localeCompare(
            storeKey('', b.metadata.namespace, b.metadata.name),
          ),
        )
        .map((o) => structuredClone(o));
      snapshot = { items, rv: this.currentResourceVersion };
    }
    const page = limit > 0 ? snapshot.items.slice(offset, offset + limit) : snapshot.items.slice(offset);
    const metadata: Record<string, unknown> = { resourceVersion: snapshot.rv };
    if (limit > 0 && offset + limit < snapshot.items.length) {
      const id = randomUUID();
      this.snapshots.set(id, snapshot);
      metadata.continue = Buffer.from(JSON.stringify({ id, offset: offset + limit })).toString('base64');
    }
    // Like built-in kinds' lists, items carry no apiVersion/kind.
    const items = page.map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
    return { apiVersion: kind.apiVersion, kind: `${kind.kind}List`, metadata, items };
  }

  private create(kind: StandinKind, namespace: string | undefined, incoming: unknown): StoredObject {
    const object = incoming as StoredObject;
    if (!object?.metadata) throw new StandinError(400, 'BadRequest', 'no metadata');
    if (!object.metadata.name && typeof object.metadata.generateName === 'string') {
      object.metadata.name = object.metadata.generateName + Math.random().toString(36).slice(2, 7);
    }
    if (!object.metadata.name) throw new StandinError(422, 'Invalid', 'metadata.name: Required value');
    if (kind.namespaced) object.metadata.namespace = namespace;
    const key = storeKey(kind.plural, namespace, object.metadata.name);
    if (this.objects.has(key)) {
      throw new StandinError(409, 'AlreadyExists', `${kind.plural} "${object.metadata.name}" already exists`);
    }
    delete object.metadata.resourceVersion;
    return this.write(kind, key, { ...object, apiVersion: kind.apiVersion, kind: kind.kind }, undefined);
  }

  private patch(
    kind: StandinKind,
    key: string,
    namespace: string | undefined,
    name: string,
    current: StoredObject | undefined,
    contentType: string,
    body: string,
    subresource: string | undefined,
  ): StoredObject {
    const type = contentType.split(';')[0].trim();
    if (type === 'application/apply-patch+yaml') {
      const applied = parseBody(body) as StoredObject;
      if (!current) {
        if (subresource) throw new StandinError(404, 'NotFound', `${kind.plural} "${name}" not found`);
        return this.create(kind, namespace, { ...applied, metadata: { ...applied.metadata, name } });
      }
      return this.write(kind, key, this.merged(current, applied, subresource, 'merge'), current);
    }
    if (!current) throw new StandinError(404, 'NotFound', `${kind.plural} "${name}" not found`);
    if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
      return this.write(kind, key, this.merged(current, parseBody(body), subresource, 'merge'), current);
    }
    if (type === 'application/json-patch+json') {
      let patched: unknown;
      try {
        patched = applyJsonPatch(structuredClone(current), parseBody(body) as JsonPatchOp[]);
      } catch (error) {
        // The API server's answer to a JSON patch that does not apply (e.g. a failed `test`).
        throw new StandinError(422, 'Invalid', 'the server rejected our request due to an error in our request', [
          { reason: 'UnexpectedServerResponse', message: (error as Error).message },
        ]);
      }
      return this.write(kind, key, this.merged(current, patched, subresource, 'replace'), current);
    }
    throw new StandinError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
    );
  }

  /** The object after a write: to /status only status changes; to the object everything but status. */
  private merged(
    current: StoredObject,
    incoming: unknown,
    subresource: string | undefined,
    mode: 'merge' | 'replace',
  ): StoredObject {
    const next = (
      mode === 'merge' ? mergePatch(structuredClone(current), incoming) : structuredClone(incoming)
    ) as StoredObject;
    if (subresource === 'status') return { ...structuredClone(current), status: next.status };
    const out: StoredObject = { ...next, metadata: { ...next.metadata, uid: current.metadata.uid } };
    if (current.status === undefined) delete out.status;
    else out.status = structuredClone(current.status);
    return out;
  }

  private write(kind: StandinKind, key: string, object: StoredObject, old: StoredObject | undefined): StoredObject {
    this.counter++;
    const rv = this.rvFor(this.counter);
    object.apiVersion = kind.apiVersion;
    object.kind = kind.kind;
    object.metadata.resourceVersion = rv;
    object.metadata.uid ??= old?.metadata.uid ?? randomUUID();
    object.metadata.creationTimestamp ??=
      (old?.metadata.creationTimestamp as string | undefined) ?? new Date().toISOString();
    this.objects.set(key, object);
    this.record(kind, old ? 'MODIFIED' : 'ADDED', object);
    if (kind.kind === 'CustomResourceDefinition' && !old) this.establishLater(key);
    return structuredClone(object);
  }

  /** Serves a new CRD's kinds and marks it Established, after crdEstablishDelayMs. */
  private establishLater(key: string): void {
    const establish = (): void => {
      const crd = this.objects.get(key);
      if (!crd) return;
      const spec = crd.spec as {
        group: string;
        scope: string;
        names: { kind: string; plural: string };
        versions: { name: string; served?: boolean }[];
      };
      for (const version of spec.versions) {
        const apiVersion = `${spec.group}/${version.name}`;
        if (
          version.served === false ||
          this.kinds.some((k) => k.apiVersion === apiVersion && k.kind === spec.names.kind)
        )
          continue;
        this.kinds.push({
          apiVersion,
          kind: spec.names.kind,
          plural: spec.names.plural,
          namespaced: spec.scope === 'Namespaced',
        });
      }
      const established = structuredClone(crd);
      established.status = { conditions: [{ type: 'Established', status: 'True', reason: 'InitialNamesAccepted' }] };
      this.write(this.kindOf('apiextensions.k8s.io/v1', 'CustomResourceDefinition'), key, established, crd);
    };
    if (this.crdEstablishDelayMs <= 0) return establish();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      establish();
    }, this.crdEstablishDelayMs);
    this.timers.add(timer);
  }

  private erase(kind: StandinKind, key: string, old: StoredObject): void {
    this.objects.delete(key);
    this.counter++;
    const gone = structuredClone(old);
    gone.metadata.resourceVersion = this.rvFor(this.counter);
    this.record(kind, 'DELETED', gone);
  }

  private record(kind: StandinKind, type: HistoryEntry['type'], object: StoredObject): void {
    const entry: HistoryEntry = {
      n: this.counter,
      plural: kind.plural,
      namespace: object.metadata.namespace,
      type,
      object: structuredClone(object),
    };
    this.history.push(entry);
    for (const w of this.watchers) {
      if (w.kind === kind && this.matches(kind, w.namespace, w.labelSelector, w.fieldSelector, object)) {
        this.send(w, { type, object });
      }
    }
  }

  private watch(
    res: http.ServerResponse,
    kind: StandinKind,
    namespace: string | undefined,
    query: URLSearchParams,
  ): void {
    const rv = query.get('resourceVersion');
    const from = rv ? this.rvs.get(rv) : undefined;
    const tooOld = rv !== null && rv !== '' && rv !== '0' && (from === undefined || from < this.floor);
    if (tooOld && this.goneMode === 'http') {
      throw new StandinError(410, 'Expired', `too old resource version: ${rv}`);
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (tooOld) {
      const status = {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${rv}`,
        reason: 'Expired',
        code: 410,
      };
      res.end(JSON.stringify({ type: 'ERROR', object: status }) + '\n');
      return;
    }
    const watcher: Watcher = {
      kind,
      namespace,
      labelSelector: query.get('labelSelector'),
      fieldSelector: query.get('fieldSelector'),
      bookmarks: query.get('allowWatchBookmarks') === 'true',
      res,
    };
    if (from === undefined) {
      // No version: synthetic ADDED for everything that exists, then live events.
      for (const o of this.objects.values()) {
        if (this.matches(kind, namespace, watcher.labelSelector, watcher.fieldSelector, o))
          this.send(watcher, { type: 'ADDED', object: o });
      }
    } else {
      for (const e of this.history) {
        if (
          e.n > from &&
          e.plural === kind.plural &&
          this.matches(kind, namespace, watcher.labelSelector, watcher.fieldSelector, e.object)
        ) {
          this.send(watcher, { type: e.type, object: e.object });
        }
      }
    }
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 0);
    if (timeoutSeconds > 0) {
      watcher.timer = setTimeout(() => {
        this.forgetWatcher(watcher);
        res.end();
      }, timeoutSeconds * 1000);
    }
    this.watchers.add(watcher);
    res.on('close', () => this.forgetWatcher(watcher));
  }

  private forgetWatcher(w: Watcher): void {
    clearTimeout(w.timer);
    this.watchers.delete(w);
  }

  private send(w: Watcher, event: { type: string; object: unknown }): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(JSON.stringify(event) + '\n');
  }

  private matches(
    kind: StandinKind,
    namespace: string | undefined,
    labelSelector: string | null,
    fieldSelector: string | null,
    object: StoredObject,
  ): boolean {
    if (object.kind !== kind.kind || object.apiVersion !== kind.apiVersion) return false;
    if (namespace !== undefined && object.metadata.namespace !== namespace) return false;
    return matchesLabels(labelSelector, object.metadata.labels ?? {}) && matchesFields(fieldSelector, object);
  }

  private kindOf(apiVersion: string, kindName: string): StandinKind {
    const kind = this.kinds.find((k) => k.apiVersion === apiVersion && k.kind === kindName);
    if (!kind) throw new Error(`stand-in serves no ${kindName} in ${apiVersion}`);
    return kind;
  }

  private rvFor(n: number): string {
    // Opaque on purpose: not a number, and not ordered as a string.
    const rv = `${this.salt}${n.toString(36)}${n % 2 === 0 ? 'z' : 'a'}`;
    this.rvs.set(rv, n);
    return rv;
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: http.ServerResponse, error: StandinError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status: Record<string, unknown> = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: error.message,
      reason: error.reason,
      code: error.code,
    };
    if (error.causes.length > 0) status.details = { causes: error.causes };
    this.json(res, error.code, status);
  }
}

function conflict(kind: StandinKind, name: string): StandinError {
  return new StandinError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${kind.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
  );
}

function storeKey(plural: string, namespace: string | undefined, name: string): string {
  return `${plural}|${namespace ?? ''}|${name}`;
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new StandinError(400, 'BadRequest', 'the request body is not JSON');
  }
}

function matchesLabels(selector: string | null, labels: Record<string, string>): boolean {
  if (!selector) return true;
  return selector.split(',').every((raw) => {
    const term = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([^!=]+)!=(.*)$/.exec(term))) return labels[m[1].trim()] !== m[2].trim();
    if ((m = /^([^!=]+)==?(.*)$/.exec(term))) return labels[m[1].trim()] === m[2].trim();
    if (term.startsWith('!')) return !(term.slice(1) in labels);
    return term in labels;
  });
}

function matchesFields(selector: string | null, object: StoredObject): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [field, value] = term.split('=').map((s) => s.trim());
    if (field === 'metadata.name') return object.metadata.name === value;
    if (field === 'metadata.namespace') return object.metadata.namespace === value;
    throw new StandinError(400, 'BadRequest', `field label not supported: ${field}`);
  });
}

/** RFC 7386 merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
}

/** RFC 6902 add/remove/replace/test; throws on anything that does not apply. */
function applyJsonPatch(document: unknown, ops: JsonPatchOp[]): unknown {
  if (!Array.isArray(ops)) throw new Error('a JSON patch must be a list of operations');
  for (const op of ops) {
    const segments = op.path
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = segments.pop();
    if (last === undefined) throw new Error(`unsupported path ${op.path}`);
    let parent: unknown = document;
    for (const s of segments) {
      parent = child(parent, s);
      if (parent === undefined) throw new Error(`${op.op} operation does not apply: doc is missing path: ${op.path}`);
    }
    const container = parent as Record<string, unknown> | unknown[];
    switch (op.op) {
      case 'test': {
        const actual = child(container, last);
        if (JSON.stringify(actual) !== JSON.stringify(op.value)) {
          throw new Error(`testing value ${op.path} failed: test failed`);
        }
        break;
      }
      case 'remove':
        if (Array.isArray(container)) {
          const i = Number(last);
          if (!Number.isInteger(i) || i < 0 || i >= container.length)
            throw new Error(`remove operation does not apply: ${op.path}`);
          container.splice(i, 1);
        } else {
          if (!(last in container)) throw new Error(`remove operation does not apply: doc is missing key: ${op.path}`);
          delete container[last];
        }
        break;
      case 'add':
      case 'replace':
        if (Array.isArray(container)) {
          const i = last === '-' ? container.length : Number(last);
          if (!Number.isInteger(i) || i < 0 || i > container.length)
            throw new Error(`${op.op} operation does not apply: ${op.path}`);
          if (op.op === 'add') container.splice(i, 0, op.value);
          else container[i] = op.value;
        } else {
          if (op.op === 'replace' && !(last in container))
            throw new Error(`replace operation does not apply: ${op.path}`);
          container[last] = op.value;
        }
        break;
      default:
        throw new Error(`unsupported op ${op.op}`);
    }
  }
  return document;
}

function child(parent: unknown, segment: string): unknown {
  if (Array.isArray(parent)) return parent[Number(segment)];
  if (typeof parent === 'object' && parent !== null) return (parent as Record<string, unknown>)[segment];
  return undefined;
}
