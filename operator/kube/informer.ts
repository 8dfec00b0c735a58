// An informer: a local cache of one resource (optionally filtered by selectors), kept current by
// list-then-watch, with handlers called on every change. Its rules, and why:
// - List in pages (limit/continue) so a large cluster does not produce one huge answer.
// - Watch from the list's resourceVersion with bookmarks, so a re-watch resumes where it stopped
//   and no event is missed or replayed.
// - 410 Gone/Expired (the version is too old) → list again; never stop, unlike client-node's
//   informer, which stops on any error other than 410.
// - Any other error, or a stream that ends without having delivered anything → re-watch after an
//   exponential backoff with jitter (bounded); a healthy stream that ends → re-watch at once.
// - Every `resyncMs` list again and emit `update` for every cached object: reconcile is
//   level-triggered, and a periodic full pass repairs whatever an event may have missed.
// - resourceVersions are compared for equality only, never as numbers (API conventions).
import { backoffDelay, sleepUnlessAborted, type BackoffOptions } from './backoff';
import type { KubeClient, WatchEvent } from './client';
import { isGone } from './errors';
import type { Indexer } from './indexers';
import { silentLogger, type Logger } from './log';
import { keyOf, objectKey, type KubeList, type KubeObject } from './object';

/** What the informer needs of a client (a KubeClient, or a fake in tests of other code). */
export type InformerClient = Pick<KubeClient, 'request' | 'watch'>;

export interface InformerOptions<T extends KubeObject> {
  client: InformerClient;
  /** Collection path, e.g. `/api/v1/pods` or `/apis/kubevisor.io/v1alpha1/namespaces/x/virtualmachines`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Name in logs. @default path */
  name?: string;
  /** List page size. @default 500 */
  pageSize?: number;
  /** Full relist period; 0 disables. @default 300000 (5 min) */
  resyncMs?: number;
  /** Server-side watch timeout. @default random in [300, 600) s, like client-go, to spread reconnects */
  watchTimeoutSeconds?: number;
  /** Re-watch backoff. @default { initialMs: 800, maxMs: 30000 } (client-go's reflector) */
  backoff?: BackoffOptions;
  /** A watch that lasted this long counts as healthy even if it delivered nothing. @default 10000 */
  healthyAfterMs?: number;
  indexers?: Record<string, Indexer<T>>;
  /**
   * Applied to every object before it is cached (e.g. drop `metadata.managedFields`, which can be most of a pod's
   * size and which no reconciler reads). Must return an object with the same identity fields.
   */
  transform?: (object: T) => T;
  /** apiVersion/kind for list items, which carry none. @default from the list's apiVersion and kind minus "List" */
  apiVersion?: string;
  kind?: string;
  logger?: Logger;
}

export type AddHandler<T> = (object: T) => void;
export type UpdateHandler<T> = (oldObject: T, newObject: T) => void;
export type DeleteHandler<T> = (object: T) => void;

type WatchOutcome = 'healthy' | 'unhealthy' | 'resync' | 'stopped';

export class Informer<T extends KubeObject> {
  readonly name: string;
  private readonly cache = new Map<string, T>();
  /** index name → value → keys */
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly indexers = new Map<string, Indexer<T>>();
  private readonly addHandlers = new Set<AddHandler<T>>();
  private readonly updateHandlers = new Set<UpdateHandler<T>>();
  private readonly deleteHandlers = new Set<DeleteHandler<T>>();
  private readonly syncWaiters = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  private readonly logger: Logger;
  private readonly stopController = new AbortController();
  private watchController?: AbortController;
  private resyncTimer?: NodeJS.Timeout;
  private resyncDue = false;
  private synced = false;
  private running?: Promise<void>;
  private resourceVersion?: string;

  constructor(private readonly options: InformerOptions<T>) {
    this.name = options.name ?? options.path;
    this.logger = (options.logger ?? silentLogger).child({ informer: this.name });
    for (const [name, indexer] of Object.entries(options.indexers ?? {})) this.addIndexer(name, indexer);
  }

  /** Registers an add handler; returns a function that unregisters it. */
  onAdd(handler: AddHandler<T>): () => void {
    this.addHandlers.add(handler);
    return () => this.addHandlers.delete(handler);
  }

  onUpdate(handler: UpdateHandler<T>): () => void {
    this.updateHandlers.add(handler);
    return () => this.updateHandlers.delete(handler);
  }

  onDelete(handler: DeleteHandler<T>): () => void {
    this.deleteHandlers.add(handler);
    return () => this.deleteHandlers.delete(handler);
  }

  /** Adds an index; objects already cached are filed at once. */
  addIndexer(name: string, indexer: Indexer<T>): void {
    if (this.indexers.has(name)) throw new Error(`informer ${this.name}: index ${name} already exists`);
    this.indexers.set(name, indexer);
    this.indexes.set(name, new Map());
    for (const [key, object] of this.cache) this.fileIn(name, indexer, key, object);
  }

  /** Starts listing and watching (idempotent). */
  start(): void {
    if (this.running || this.stopController.signal.aborted) return;
    this.running = this.run().catch((error: unknown) => {
      // run() handles its own errors; this is a bug guard, not a path.
      this.logger.error('informer loop failed', { error });
    });
  }

  /** Stops watching, ends the loop and rejects pending waitForSync calls. The cache stays readable. */
  async stop(): Promise<void> {
    this.stopController.abort();
    this.watchController?.abort();
    clearTimeout(this.resyncTimer);
    for (const waiter of this.syncWaiters) waiter.reject(new Error(`informer ${this.name} stopped before it synced`));
    this.syncWaiters.clear();
    await this.running;
  }

  /** True once the first full list is in the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once synced; rejects after `timeoutMs` or if the informer stops first. */
  waitForSync(timeoutMs: number): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopController.signal.aborted) return Promise.reject(new Error(`informer ${this.name} is stopped`));
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.syncWaiters.delete(waiter);
        reject(new Error(`informer ${this.name} did not sync within ${timeoutMs} ms`));
      }, timeoutMs);
      this.syncWaiters.add(waiter);
    });
  }

  /** The cached object, or undefined. Treat it as read-only: it is the cache's own copy. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(keyOf(namespace, name));
  }

  /** By `namespace/name` (or `name`) key, as the work queue carries it. */
  getByKey(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** Cached objects filed under `value` in index `indexName`. */
  byIndex(indexName: string, value: string): T[] {
    const index = this.indexes.get(indexName);
    if (!index) throw new Error(`informer ${this.name}: no index ${indexName}`);
    return [...(index.get(value) ?? [])].flatMap((key) => {
      const object = this.cache.get(key);
      return object ? [object] : [];
    });
  }

  /** The version the next watch resumes from (last list, event or bookmark). */
  get lastResourceVersion(): string | undefined {
    return this.resourceVersion;
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    const backoff = this.options.backoff ?? { initialMs: 800, maxMs: 30_000 };
    let needList = true;
    let failures = 0;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.listAndReplace();
          needList = false;
          this.scheduleResync();
        }
        const outcome = await this.watchOnce();
        if (outcome === 'stopped') break;
        if (outcome === 'resync') {
          needList = true;
          continue;
        }
        failures = outcome === 'healthy' ? 0 : failures + 1;
      } catch (error) {
        if (this.stopped) break;
        failures++;
        if (isGone(error)) {
          // The version we hold is too old for the server: only a fresh list can resume.
          this.logger.info('resource version expired; relisting', { resourceVersion: this.resourceVersion });
          needList = true;
        } else {
          this.logger.warn(needList ? 'list failed' : 'watch failed', { error, failures });
        }
      }
      await sleepUnlessAborted(backoffDelay(failures, backoff), this.stopController.signal);
    }
  }

  /** Lists every page and makes the cache equal to the result, emitting the differences. */
  private async listAndReplace(): Promise<void> {
    let list: { items: T[]; resourceVersion?: string };
    try {
      list = await this.listAll(this.options.pageSize ?? 500);
    } catch (error) {
      // A continue token expires with the version it was issued at (etcd compaction): the
      // documented fallback is one unpaginated list, which cannot expire part way.
      if (!isGone(error) || this.stopped) throw error;
      this.logger.info('list continuation expired; listing in one page');
      list = await this.listAll(undefined);
    }
    if (this.stopped) return;
    const previous = new Map(this.cache);
    this.cache.clear();
    for (const index of this.indexes.values()) index.clear();
    for (const object of list.items) {
      const key = objectKey(object);
      this.cache.set(key, object);
      this.fileAll(key, object);
    }
    this.resourceVersion = list.resourceVersion;
    // Handlers run after the whole cache is replaced, so each sees a consistent cache.
    for (const object of list.items) {
      const key = objectKey(object);
      const old = previous.get(key);
      previous.delete(key);
      if (old) this.emitUpdate(old, object);
      else this.emitAdd(object);
    }
    for (const gone of previous.values()) this.emitDelete(gone);
    if (!this.synced) {
      this.synced = true;
      for (const waiter of this.syncWaiters) waiter.resolve();
      this.syncWaiters.clear();
      this.logger.debug('synced', { objects: this.cache.size });
    }
  }

  private async listAll(pageSize: number | undefined): Promise<{ items: T[]; resourceVersion?: string }> {
    const items: T[] = [];
    const transform = this.options.transform ?? ((o: T) => o);
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.options.client.request<KubeList<T>>('GET', this.options.path, {
        query: {
          limit: pageSize,
          continue: continueToken,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
        },
        signal: this.stopController.signal,
      });
      const apiVersion = this.options.apiVersion ?? page.apiVersion;
      const kind = this.options.kind ?? page.kind?.replace(/List$/, '');
      for (const item of page.items ?? []) {
        items.push(transform(apiVersion && kind ? { ...item, apiVersion, kind } : item));
      }
      // Every page carries the version of the snapshot the first page was served from.
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken && !this.stopped);
    return { items, resourceVersion };
  }

  private async watchOnce(): Promise<WatchOutcome> {
    const controller = new AbortController();
    this.watchController = controller;
    if (this.stopped) return 'stopped';
    if (this.resyncDue) return this.takeResync();
    const started = performance.now();
    let delivered = false;
    const timeoutSeconds = this.options.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300);
    await this.options.client.watch<T>(
      this.options.path,
      {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
      },
      (event) => {
        delivered = true;
        this.handle(event);
      },
      controller.signal,
    );
    if (this.stopped) return 'stopped';
    if (this.resyncDue) return this.takeResync();
    const healthy = delivered || performance.now() - started >= (this.options.healthyAfterMs ?? 10_000);
    if (!healthy) this.logger.debug('watch ended without events; backing off');
    return healthy ? 'healthy' : 'unhealthy';
  }

  private takeResync(): WatchOutcome {
    this.resyncDue = false;
    return 'resync';
  }

  private scheduleResync(): void {
    clearTimeout(this.resyncTimer);
    const resyncMs = this.options.resyncMs ?? 300_000;
    if (resyncMs <= 0 || this.stopped) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncDue = true;
      // Ends the current watch; the loop lists again and resumes watching from the new version.
      this.watchController?.abort();
    }, resyncMs);
  }

  private handle(event: WatchEvent<T>): void {
    const object =
      event.type === 'BOOKMARK' || !this.options.transform ? event.object : this.options.transform(event.object);
    const rv = object?.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      // A bookmark carries only a version: "nothing for you up to here". Resume from it.
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (!object?.metadata?.name) return;
    const key = objectKey(object);
    const old = this.cache.get(key);
    if (event.type === 'DELETED') {
      if (old) this.unfileAll(key, old);
      this.cache.delete(key);
      if (rv) this.resourceVersion = rv;
      this.emitDelete(object);
      return;
    }
    // ADDED of a known object (after a re-watch) is an update; MODIFIED of an unknown one an add.
    if (old) this.unfileAll(key, old);
    this.cache.set(key, object);
    this.fileAll(key, object);
    if (rv) this.resourceVersion = rv;
    if (old) this.emitUpdate(old, object);
    else this.emitAdd(object);
  }

  private fileAll(key: string, object: T): void {
    for (const [name, indexer] of this.indexers) this.fileIn(name, indexer, key, object);
  }

  private fileIn(name: string, indexer: Indexer<T>, key: string, object: T): void {
    const index = this.indexes.get(name);
    if (!index) return;
    for (const value of this.indexValues(name, indexer, object)) {
      let keys = index.get(value);
      if (!keys) index.set(value, (keys = new Set()));
      keys.add(key);
    }
  }

  private unfileAll(key: string, object: T): void {
    for (const [name, indexer] of this.indexers) {
      const index = this.indexes.get(name);
      if (!index) continue;
      for (const value of this.indexValues(name, indexer, object)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  }

  private indexValues(name: string, indexer: Indexer<T>, object: T): string[] {
    try {
      return indexer(object);
    } catch (error) {
      this.logger.error('indexer failed', { index: name, key: objectKey(object), error });
      return [];
    }
  }

  // Handlers only enqueue work; one that throws must not stop the informer or the other handlers.
  private emitAdd(object: T): void {
    for (const handler of this.addHandlers) this.call(() => handler(object), 'add', object);
  }

  private emitUpdate(oldObject: T, newObject: T): void {
    for (const handler of this.updateHandlers) this.call(() => handler(oldObject, newObject), 'update', newObject);
  }

  private emitDelete(object: T): void {
    for (const handler of this.deleteHandlers) this.call(() => handler(object), 'delete', object);
  }

  private call(fn: () => void, event: string, object: T): void {
    try {
      fn();
    } catch (error) {
      this.logger.error('event handler failed', { event, key: objectKey(object), error });
    }
  }
}
